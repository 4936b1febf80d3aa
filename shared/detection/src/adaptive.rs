//! A streaming detector per series that forgets, learns daily cycles and notices level
//! shifts, in a state of about 0.6 KB. Three views of each reading:
//!
//! - **level**: an exponentially weighted mean and variance (half-life in readings), so
//!   old behaviour fades. Updates are clipped at `clip` standard deviations rather than
//!   skipped: an outlier moves the baseline a little, a new regime moves it all the way.
//! - **seasonal**: a mean per hour of day (UTC), weekdays and weekends apart, and the spread of
//!   the readings around it. It judges a reading only when it explains the series much
//!   better than the level does (its residual variance under `seasonal_share` of the
//!   level's), so a series without a cycle is never judged against one.
//! - **shift**: a two-sided CUSUM of the (bounded) scores; when it crosses `cusum_h` the
//!   series has moved, the reading counts as anomalous once, and the level re-learns from
//!   it instead of alarming for as long as the old baseline lingers.
//!
//! An episode that has lasted `relearn_after` readings is taken as the series' new
//! normal: from then on updates are neither clipped nor slow, so spread and hourly means
//! catch up too and the episode ends instead of lasting as long as clipped updates of a
//! long half-life would need.
//!
//! The verdicts go through the same hysteresis as every detection, which is what makes
//! one episode (and one alert) of a run of anomalous readings.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Deserialize, Serialize};

use hub_events::AnomalyModel;

use crate::{Episode, Hysteresis, Transition};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveConfig {
    /// Readings after which a reading's weight in the level has halved.
    pub half_life: f64,
    /// Readings after which a reading's weight in its hour's mean has halved.
    pub season_half_life: f64,
    /// |score| above this is anomalous.
    pub threshold: f64,
    /// Updates are clipped at this many standard deviations.
    pub clip: f64,
    /// Readings before any verdict.
    pub warmup: u64,
    /// The seasonal view judges when its residual variance is under this share of the
    /// level's.
    pub seasonal_share: f64,
    /// CUSUM slack (in standard deviations per reading) and decision limit.
    pub cusum_k: f64,
    pub cusum_h: f64,
    /// Readings of one episode after which its readings are learned unclipped and fast.
    pub relearn_after: u32,
    pub hysteresis: Hysteresis,
}

impl Default for AdaptiveConfig {
    /// Tuned on NAB's realKnownCause and realAWSCloudwatch categories (see
    /// `hub-detection-report --nab`).
    fn default() -> Self {
        Self {
            half_life: 1000.0,
            season_half_life: 30.0,
            threshold: 3.0,
            clip: 3.0,
            warmup: 100,
            seasonal_share: 0.3,
            cusum_k: 1.5,
            cusum_h: 12.0,
            relearn_after: 200,
            hysteresis: Hysteresis {
                raise_after: 2,
                clear_after: 50,
            },
        }
    }
}

/// An exponentially weighted mean and variance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ewm {
    pub count: u64,
    pub mean: f64,
    pub variance: f64,
}

impl Ewm {
    pub fn stddev(&self) -> f64 {
        self.variance.max(0.0).sqrt()
    }

    /// Adds `x` with weight `alpha` (at least 1/count, so until the half-life has been
    /// lived the readings weigh as in a plain mean), its distance from the mean clipped at
    /// `clip` standard deviations once warm.
    fn push(&mut self, x: f64, alpha: f64, clip: f64, warmup: u64) {
        self.count += 1;
        if self.count == 1 {
            self.mean = x;
            return;
        }
        let warming = self.count <= warmup;
        // A young series learns as fast as its readings allow, not at the pace of a
        // half-life it has not lived yet.
        let alpha = alpha.max(1.0 / self.count as f64);
        let sd = self.stddev();
        let delta = x - self.mean;
        let delta = if warming || sd == 0.0 {
            delta
        } else {
            delta.clamp(-clip * sd, clip * sd)
        };
        self.mean += alpha * delta;
        self.variance = (1.0 - alpha) * (self.variance + alpha * delta * delta);
    }
}

/// The mean of one hour's readings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SlotMean {
    pub count: u64,
    pub mean: f64,
}

/// Hours of a day, weekdays and weekends apart.
const SEASON_SLOTS: usize = 48;

fn slot(ts: DateTime<Utc>) -> usize {
    let weekend = ts.weekday().number_from_monday() >= 6;
    ts.hour() as usize + if weekend { 24 } else { 0 }
}

/// What the detector keeps per series.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveState {
    pub readings: u64,
    pub level: Ewm,
    /// Mean per slot of [`slot`] (empty until the first reading).
    #[serde(default)]
    pub season: Vec<SlotMean>,
    /// Spread of readings around their slot's mean (its mean is kept at zero).
    pub residual: Ewm,
    pub cusum_up: f64,
    pub cusum_down: f64,
    pub episode: Episode,
    /// Readings since the episode was raised.
    #[serde(default)]
    pub episode_readings: u32,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaptiveVerdict {
    pub model: AnomalyModel,
    /// Standard deviations from the baseline; `None` during warm-up.
    pub score: Option<f64>,
    /// What the model expected.
    pub baseline: f64,
    pub anomalous: bool,
    pub transition: Transition,
}

fn weight(half_life: f64) -> f64 {
    1.0 - 0.5f64.powf(1.0 / half_life.max(1.0))
}

impl AdaptiveConfig {
    pub fn observe(
        &self,
        state: &mut AdaptiveState,
        ts: DateTime<Utc>,
        value: f64,
    ) -> AdaptiveVerdict {
        if !value.is_finite() {
            // Not a reading (the normalizer refuses them): it must not poison the state.
            return AdaptiveVerdict {
                model: AnomalyModel::Level,
                score: None,
                baseline: state.level.mean,
                anomalous: false,
                transition: Transition::Stay,
            };
        }
        if state.season.len() != SEASON_SLOTS {
            state.season = vec![SlotMean::default(); SEASON_SLOTS];
        }
        state.readings += 1;
        let warm = state.readings > self.warmup;
        // A spread this small against the mean is rounding, not signal.
        let floor = 1e-9 * state.level.mean.abs().max(1.0);
        let level = state.level;
        let level_score = {
            let sd = level.stddev();
            let off = value - level.mean;
            if level.count < 2 || (sd <= floor && off.abs() <= floor) {
                0.0
            } else if sd <= floor {
                f64::INFINITY.copysign(off)
            } else {
                off / sd
            }
        };
        let at = slot(ts);
        let hour = state.season[at];
        let residual = value - hour.mean;
        let seasonal = (hour.count >= 3
            && state.residual.count > self.warmup
            && state.residual.stddev() > floor
            && state.residual.variance < level.variance * self.seasonal_share)
            .then(|| residual / state.residual.stddev());
        let (mut model, score, baseline) = match seasonal {
            Some(z) => (AnomalyModel::Seasonal, z, hour.mean),
            None => (AnomalyModel::Level, level_score, level.mean),
        };

        let mut shifted = false;
        if warm {
            let bounded = score.clamp(-self.threshold, self.threshold);
            state.cusum_up = (state.cusum_up + bounded - self.cusum_k).max(0.0);
            state.cusum_down = (state.cusum_down - bounded - self.cusum_k).max(0.0);
            if state.cusum_up > self.cusum_h || state.cusum_down > self.cusum_h {
                shifted = true;
                model = AnomalyModel::Shift;
                state.cusum_up = 0.0;
                state.cusum_down = 0.0;
                // The series has moved: learn the level from here.
                state.level.mean = value;
            }
        }
        let anomalous = warm && (score.abs() > self.threshold || shifted);

        // An episode this long is the series' new normal: learn it whole, and fast.
        if state.episode.active {
            state.episode_readings = state.episode_readings.saturating_add(1);
        } else {
            state.episode_readings = 0;
        }
        let relearning = state.episode_readings >= self.relearn_after;
        let (clip, alpha) = if relearning {
            let fast = 1.0 / f64::from(self.relearn_after.max(1));
            (f64::INFINITY, weight(self.half_life).max(fast))
        } else {
            (self.clip, weight(self.half_life))
        };
        state.level.push(value, alpha, clip, self.warmup);
        if hour.count >= 1 {
            state.residual.push(residual, alpha, clip, self.warmup);
            state.residual.mean = 0.0;
        }
        let spread = state.residual.stddev();
        let residual = if state.residual.count > self.warmup && spread > 0.0 {
            residual.clamp(-clip * spread, clip * spread)
        } else {
            residual
        };
        let slot_mean = &mut state.season[at];
        slot_mean.count += 1;
        if slot_mean.count == 1 {
            slot_mean.mean = value;
        } else {
            let alpha = weight(self.season_half_life).max(1.0 / slot_mean.count as f64);
            slot_mean.mean += alpha * residual;
        }

        let transition = self.hysteresis.step(&mut state.episode, anomalous);
        AdaptiveVerdict {
            model,
            score: warm.then_some(score).filter(|s| s.is_finite()),
            baseline,
            anomalous,
            transition,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    /// Deterministic noise in [-1, 1).
    fn noise(i: u64) -> f64 {
        ((i.wrapping_mul(2_654_435_761) % 1000) as f64 / 500.0) - 1.0
    }

    fn at(i: u64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-02T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + Duration::minutes(5 * i as i64)
    }

    fn run(values: impl Iterator<Item = f64>) -> Vec<(u64, AdaptiveVerdict)> {
        let config = AdaptiveConfig::default();
        let mut state = AdaptiveState::default();
        values
            .enumerate()
            .map(|(i, v)| (i as u64, config.observe(&mut state, at(i as u64), v)))
            .collect()
    }

    fn raises(verdicts: &[(u64, AdaptiveVerdict)]) -> Vec<u64> {
        verdicts
            .iter()
            .filter(|(_, v)| v.transition == Transition::Raised)
            .map(|(i, _)| *i)
            .collect()
    }

    #[test]
    fn a_spike_in_noise_raises_once_and_the_noise_alone_never() {
        let quiet = run((0..3000).map(|i| 20.0 + noise(i)));
        assert_eq!(raises(&quiet), Vec::<u64>::new());
        let spiked =
            run((0..3000)
                .map(|i| 20.0 + noise(i) + if (2000..2003).contains(&i) { 30.0 } else { 0.0 }));
        assert_eq!(raises(&spiked), vec![2001]);
    }

    #[test]
    fn a_level_shift_raises_once_then_the_new_level_is_normal() {
        let verdicts = run((0..4000).map(|i| 20.0 + noise(i) + if i >= 2000 { 5.0 } else { 0.0 }));
        let raised = raises(&verdicts);
        assert_eq!(raised.len(), 1, "{raised:?}");
        assert!((2000..2010).contains(&raised[0]), "{raised:?}");
        // Long after the shift the series is normal again at its new level.
        let late = &verdicts[3500].1;
        assert!(!late.anomalous, "{late:?}");
        assert!((late.baseline - 25.0).abs() < 1.0, "{late:?}");
    }

    #[test]
    fn a_daily_cycle_is_learned_and_a_break_in_it_is_caught_by_the_seasonal_view() {
        // 5-minute readings, a ±10 daily swing; at day 20, one night stays at noon's level.
        let day = 288;
        let swing =
            |i: u64| 10.0 * (2.0 * std::f64::consts::PI * (i % day) as f64 / day as f64).sin();
        // Before a whole cycle has been seen the swing is news; after, it is normal.
        let learned = |verdicts: &[(u64, AdaptiveVerdict)]| -> Vec<u64> {
            raises(verdicts)
                .into_iter()
                .filter(|&i| i >= 2 * day)
                .collect()
        };
        let normal = run((0..day * 30).map(|i| 50.0 + swing(i) + noise(i)));
        assert_eq!(learned(&normal), Vec::<u64>::new());
        let broken_at = day * 20 + day * 3 / 4; // where the cycle is at its lowest
        let broken = run((0..day * 30).map(|i| {
            let v = 50.0 + swing(i) + noise(i);
            if (broken_at..broken_at + 12).contains(&i) {
                60.0 + noise(i)
            } else {
                v
            }
        }));
        let raised = learned(&broken);
        assert_eq!(raised.len(), 1, "{raised:?}");
        assert!(
            (broken_at..broken_at + 12).contains(&raised[0]),
            "{raised:?}"
        );
        assert_eq!(broken[raised[0] as usize].1.model, AnomalyModel::Seasonal);
    }

    #[test]
    fn after_a_long_flat_spell_returning_noise_is_one_bounded_episode() {
        // Flat for long enough that the spread has all but gone, then noise again.
        let verdicts = run((0..16000).map(|i| if i < 12000 { 20.0 } else { 20.0 + noise(i) }));
        let raised = raises(&verdicts);
        assert_eq!(raised.len(), 1, "{raised:?}");
        let cleared = verdicts
            .iter()
            .find(|(i, v)| *i > raised[0] && v.transition == Transition::Cleared)
            .map(|(i, _)| *i);
        // Without re-learning, clipped updates of the long half-life keep it open ~1,400.
        assert!(cleared.is_some_and(|c| c < 12000 + 1000), "{cleared:?}");
    }

    #[test]
    fn a_reading_that_is_not_a_number_changes_nothing() {
        let config = AdaptiveConfig::default();
        let mut state = AdaptiveState::default();
        for i in 0..500 {
            config.observe(&mut state, at(i), 20.0 + noise(i));
        }
        let before = state.clone();
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let verdict = config.observe(&mut state, at(500), bad);
            assert!(!verdict.anomalous);
        }
        assert_eq!(state, before);
        let verdict = config.observe(&mut state, at(500), 60.0);
        assert!(verdict.anomalous, "{verdict:?}");
    }

    #[test]
    fn the_state_round_trips_and_stays_small() {
        let config = AdaptiveConfig::default();
        let mut state = AdaptiveState::default();
        for i in 0..5000 {
            config.observe(&mut state, at(i), 20.0 + noise(i));
        }
        let bytes = postcard::to_allocvec(&state).unwrap();
        assert_eq!(
            postcard::from_bytes::<AdaptiveState>(&bytes).unwrap(),
            state
        );
        assert!(bytes.len() < 700, "{} bytes", bytes.len());
    }
}
