//! Metric names and units: devices say `Temperature`, `temp_f`, `batteryVoltage` or
//! `power_kw`; the hub stores snake_case names in one canonical unit per quantity, and
//! refuses values no sensor of that quantity can produce.

/// Canonical name, unit, plausible range, and how to convert from the device's unit.
struct Known {
    canonical: &'static str,
    unit: &'static str,
    min: f64,
    max: f64,
}

const TEMPERATURE: Known = Known {
    canonical: "temperature",
    unit: "celsius",
    min: -100.0,
    max: 250.0,
};
const VOLTAGE: Known = Known {
    canonical: "voltage",
    unit: "volt",
    min: -1000.0,
    max: 1000.0,
};
const CURRENT: Known = Known {
    canonical: "current",
    unit: "ampere",
    min: -1000.0,
    max: 1000.0,
};
const POWER: Known = Known {
    canonical: "power",
    unit: "watt",
    min: -1.0e7,
    max: 1.0e7,
};
const ENERGY: Known = Known {
    canonical: "energy",
    unit: "kilowatt_hour",
    min: 0.0,
    max: 1.0e9,
};
const HUMIDITY: Known = Known {
    canonical: "humidity",
    unit: "percent",
    min: 0.0,
    max: 100.0,
};
const FREQUENCY: Known = Known {
    canonical: "frequency",
    unit: "hertz",
    min: 0.0,
    max: 1000.0,
};
const POWER_FACTOR: Known = Known {
    canonical: "power_factor",
    unit: "ratio",
    min: -1.0,
    max: 1.0,
};
const BATTERY: Known = Known {
    canonical: "battery",
    unit: "percent",
    min: 0.0,
    max: 100.0,
};
const PRESSURE: Known = Known {
    canonical: "pressure",
    unit: "hectopascal",
    min: 0.0,
    max: 2000.0,
};

/// Any other metric: kept under its snake_case name, bounded only by sanity.
const GENERIC_LIMIT: f64 = 1.0e12;
/// Smallest non-zero magnitude accepted.
pub const MIN_MAGNITUDE: f64 = 1.0e-100;

/// A conversion from what a device sends to the canonical unit.
enum Conversion {
    None,
    Multiply(f64),
    /// Dividing (not multiplying by 1e-3) keeps 3300 mV exactly 3.3 V.
    Divide(f64),
    FahrenheitToCelsius,
    KelvinToCelsius,
}

/// Device-side names (after snake_casing) that map onto a canonical metric.
fn lookup(name: &str) -> Option<(&'static Known, Conversion)> {
    Some(match name {
        "temperature" | "temp" | "temperature_c" | "temp_c" => (&TEMPERATURE, Conversion::None),
        "temperature_f" | "temp_f" => (&TEMPERATURE, Conversion::FahrenheitToCelsius),
        "temperature_k" | "temp_k" => (&TEMPERATURE, Conversion::KelvinToCelsius),
        "voltage" | "volt" | "volts" | "voltage_v" => (&VOLTAGE, Conversion::None),
        "voltage_mv" => (&VOLTAGE, Conversion::Divide(1e3)),
        "current" | "current_a" | "amps" => (&CURRENT, Conversion::None),
        "current_ma" => (&CURRENT, Conversion::Divide(1e3)),
        "power" | "power_w" | "watts" => (&POWER, Conversion::None),
        "power_kw" => (&POWER, Conversion::Multiply(1e3)),
        "energy" | "energy_kwh" => (&ENERGY, Conversion::None),
        "energy_wh" => (&ENERGY, Conversion::Divide(1e3)),
        "humidity" | "rh" | "relative_humidity" => (&HUMIDITY, Conversion::None),
        "frequency" | "freq" | "frequency_hz" => (&FREQUENCY, Conversion::None),
        "power_factor" | "pf" => (&POWER_FACTOR, Conversion::None),
        "battery" | "battery_pct" | "battery_level" => (&BATTERY, Conversion::None),
        "pressure" | "pressure_hpa" => (&PRESSURE, Conversion::None),
        "pressure_pa" => (&PRESSURE, Conversion::Divide(1e2)),
        _ => return None,
    })
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricError {
    #[error(
        "metric name {0:?} must be 1-64 letters, digits or underscores, starting with a letter"
    )]
    BadName(String),
    #[error("metric `{0}` is not a finite number")]
    NotFinite(String),
    #[error("metric `{name}` = {value:e} is too close to zero to be a reading (|value| < {MIN_MAGNITUDE:e})")]
    TooSmall { name: String, value: f64 },
    #[error("metric `{name}` = {value} is outside {min}..={max} {unit}")]
    OutOfRange {
        name: String,
        value: f64,
        min: f64,
        max: f64,
        unit: &'static str,
    },
}

impl MetricError {
    pub fn code(&self) -> &'static str {
        match self {
            MetricError::BadName(_) => "bad_metric_name",
            MetricError::NotFinite(_) => "not_finite",
            MetricError::TooSmall { .. } => "out_of_range",
            MetricError::OutOfRange { .. } => "out_of_range",
        }
    }
}

/// `batteryVoltage` -> `battery_voltage`, `Temperature` -> `temperature`, `power-kW` ->
/// `power_kw`. Refuses names that are empty, too long, or contain anything else.
pub fn canonical_name(name: &str) -> Result<String, MetricError> {
    let bad = || MetricError::BadName(name.chars().take(64).collect());
    if name.is_empty() || name.len() > 64 {
        return Err(bad());
    }
    let mut out = String::with_capacity(name.len() + 4);
    let mut previous_lower = false;
    for c in name.chars() {
        match c {
            'A'..='Z' => {
                if previous_lower {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
                previous_lower = false;
            }
            'a'..='z' | '0'..='9' => {
                out.push(c);
                previous_lower = true;
            }
            '_' | '-' | '.' => {
                if !out.ends_with('_') {
                    out.push('_');
                }
                previous_lower = false;
            }
            _ => return Err(bad()),
        }
    }
    let out = out.trim_matches('_').to_owned();
    // Underscores added at case changes can push a 64-byte name past the limit.
    if out.len() > 64 || !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(bad());
    }
    Ok(out)
}

/// The canonical unit of a canonical metric name (`""` for metrics the hub does not know).
pub fn unit_of(canonical: &str) -> &'static str {
    lookup(canonical).map(|(known, _)| known.unit).unwrap_or("")
}

/// Canonical name and value in the canonical unit, or why the reading is refused.
pub fn normalize(name: &str, value: f64) -> Result<(String, f64), MetricError> {
    let snake = canonical_name(name)?;
    if !value.is_finite() {
        return Err(MetricError::NotFinite(snake));
    }
    // No sensor reports 1e-100 of anything, and stores cannot hold it (DynamoDB's
    // smallest number is 1e-130): refused here rather than failing a batch downstream.
    if value != 0.0 && value.abs() < MIN_MAGNITUDE {
        return Err(MetricError::TooSmall { name: snake, value });
    }
    let Some((known, conversion)) = lookup(&snake) else {
        if value.abs() > GENERIC_LIMIT {
            return Err(MetricError::OutOfRange {
                name: snake,
                value,
                min: -GENERIC_LIMIT,
                max: GENERIC_LIMIT,
                unit: "",
            });
        }
        return Ok((snake, value));
    };
    let converted = match conversion {
        Conversion::None => value,
        Conversion::Multiply(factor) => value * factor,
        Conversion::Divide(divisor) => value / divisor,
        Conversion::FahrenheitToCelsius => (value - 32.0) * 5.0 / 9.0,
        Conversion::KelvinToCelsius => value - 273.15,
    };
    if !(known.min..=known.max).contains(&converted) {
        return Err(MetricError::OutOfRange {
            name: known.canonical.to_owned(),
            value: converted,
            min: known.min,
            max: known.max,
            unit: known.unit,
        });
    }
    Ok((known.canonical.to_owned(), converted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(canonical_name("batteryVoltage").unwrap(), "battery_voltage");
        assert_eq!(canonical_name("Temperature").unwrap(), "temperature");
        assert_eq!(canonical_name("power-kW").unwrap(), "power_k_w");
        assert_eq!(canonical_name("power_kw").unwrap(), "power_kw");
        assert_eq!(canonical_name("rssi.dbm").unwrap(), "rssi_dbm");
        for bad in ["", "9lives", "_", "a b", "x;drop", &"a".repeat(65)] {
            assert!(canonical_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn units_are_converted() {
        assert_eq!(
            normalize("temp_f", 212.0).unwrap(),
            ("temperature".into(), 100.0)
        );
        assert_eq!(
            normalize("temperature_k", 273.15).unwrap(),
            ("temperature".into(), 0.0)
        );
        assert_eq!(
            normalize("power_kw", 1.5).unwrap(),
            ("power".into(), 1500.0)
        );
        assert_eq!(
            normalize("voltage_mv", 3300.0).unwrap(),
            ("voltage".into(), 3.3)
        );
        assert_eq!(normalize("rssi", -70.0).unwrap(), ("rssi".into(), -70.0));
        assert_eq!(unit_of("temperature"), "celsius");
        assert_eq!(unit_of("rssi"), "");
    }

    #[test]
    fn implausible_values_are_refused() {
        assert_eq!(
            normalize("humidity", 101.0).unwrap_err().code(),
            "out_of_range"
        );
        assert_eq!(
            normalize("temperature", -300.0).unwrap_err().code(),
            "out_of_range"
        );
        assert_eq!(
            normalize("temperature", f64::NAN).unwrap_err().code(),
            "not_finite"
        );
        assert_eq!(
            normalize("x", f64::INFINITY).unwrap_err().code(),
            "not_finite"
        );
        assert_eq!(normalize("x", 1e13).unwrap_err().code(), "out_of_range");
    }
}
