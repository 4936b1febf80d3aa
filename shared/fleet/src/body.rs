//! Rules for request-body fields that serde's defaults do not state: an optional field is
//! absent or has a value, never `null` (the API document does not allow it, and a PATCH
//! would read it as "unchanged"); an integer may be written as a whole number with a
//! fraction (`30.0`), since JSON and JSON Schema count it as that integer.

use serde::{de::Error as _, de::Unexpected, Deserialize, Deserializer};

/// For `#[serde(default, deserialize_with = "given")]` on an `Option` field.
pub fn given<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// For a required integer field.
pub fn integer<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    let number = serde_json::Number::deserialize(deserializer)?;
    // Past 2^53 a float no longer holds every integer exactly.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    let whole = number.as_i64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() <= EXACT)
            .map(|f| f as i64)
    });
    let Some(value) = whole else {
        let unexpected = match number.as_f64() {
            Some(f) => Unexpected::Float(f),
            None => Unexpected::Other("a number out of range"),
        };
        return Err(D::Error::invalid_value(unexpected, &"an integer"));
    };
    T::try_from(value)
        .map_err(|_| D::Error::invalid_value(Unexpected::Signed(value), &"an integer in range"))
}

/// For `#[serde(default, deserialize_with = "given_integer")]` on an optional integer.
pub fn given_integer<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    integer(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Body {
        #[serde(default, deserialize_with = "given")]
        name: Option<String>,
        #[serde(default, deserialize_with = "given_integer")]
        count: Option<u32>,
    }

    fn parse(text: &str) -> Result<Body, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn absent_and_given_fields_are_read_and_null_is_refused() {
        let empty = Body {
            name: None,
            count: None,
        };
        assert_eq!(parse("{}").unwrap(), empty);
        assert_eq!(
            parse(r#"{"name":"a","count":3}"#).unwrap().name.as_deref(),
            Some("a")
        );
        assert!(parse(r#"{"name":null}"#).unwrap_err().contains("null"));
        assert!(parse(r#"{"count":null}"#).is_err());
    }

    #[test]
    fn whole_numbers_are_integers_whatever_their_form() {
        assert_eq!(parse(r#"{"count":30.0}"#).unwrap().count, Some(30));
        assert_eq!(parse(r#"{"count":3e1}"#).unwrap().count, Some(30));
        assert!(parse(r#"{"count":30.5}"#).is_err());
        assert!(parse(r#"{"count":-1}"#).is_err(), "out of the type's range");
        assert!(parse(r#"{"count":1e300}"#).is_err());
        assert!(parse(r#"{"count":"30"}"#).is_err());
    }
}
