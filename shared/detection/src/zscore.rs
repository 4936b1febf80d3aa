//! Streaming z-score per device#metric: a reading is anomalous when it lies more than
//! `threshold` standard deviations from the series' running mean, once the series has
//! seen `warmup` readings. Anomalous readings are kept out of the baseline, so a long
//! episode does not teach the detector that the fault is normal.

use serde::{Deserialize, Serialize};

use crate::{Episode, Hysteresis, Transition, Welford};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZScore {
    /// |z| above this is anomalous.
    pub threshold: f64,
    /// Readings before any verdict.
    pub warmup: u64,
    pub hysteresis: Hysteresis,
}

impl Default for ZScore {
    fn default() -> Self {
        Self {
            threshold: 4.0,
            warmup: 30,
            hysteresis: Hysteresis::default(),
        }
    }
}

/// What the detector keeps per device#metric (stored with a version number for
/// optimistic concurrency).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesState {
    pub baseline: Welford,
    pub episode: Episode,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verdict {
    /// `None` during warm-up or while the series has no spread.
    pub score: Option<f64>,
    pub anomalous: bool,
    pub transition: Transition,
}

impl ZScore {
    pub fn observe(&self, state: &mut SeriesState, value: f64) -> Verdict {
        let score = (state.baseline.count >= self.warmup)
            .then(|| state.baseline.z(value))
            .flatten();
        let anomalous = score.is_some_and(|z| z.abs() > self.threshold);
        if !anomalous {
            state.baseline.push(value);
        }
        let transition = self.hysteresis.step(&mut state.episode, anomalous);
        Verdict {
            score,
            anomalous,
            transition,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn detector() -> ZScore {
        ZScore {
            threshold: 4.0,
            warmup: 20,
            hysteresis: Hysteresis {
                raise_after: 2,
                clear_after: 3,
            },
        }
    }

    /// A signal around 20 with a deterministic wobble of ±1.
    fn normal(i: usize) -> f64 {
        20.0 + ((i * 7919) % 11) as f64 / 5.0 - 1.0
    }

    #[test]
    fn nothing_is_judged_during_warm_up() {
        let d = detector();
        let mut s = SeriesState::default();
        for i in 0..20 {
            let v = d.observe(&mut s, if i == 10 { 1000.0 } else { normal(i) });
            assert_eq!(v.score, None);
            assert!(!v.anomalous);
        }
    }

    #[test]
    fn a_sustained_excursion_is_one_episode() {
        let d = detector();
        let mut s = SeriesState::default();
        let mut transitions = Vec::new();
        for i in 0..200 {
            let value = if (100..110).contains(&i) {
                65.0
            } else {
                normal(i)
            };
            let v = d.observe(&mut s, value);
            if (100..110).contains(&i) {
                assert!(v.anomalous, "point {i}: {v:?}");
                assert!(v.score.unwrap() > 4.0);
            }
            if v.transition != Transition::Stay {
                transitions.push((i, v.transition));
            }
        }
        assert_eq!(
            transitions,
            [(101, Transition::Raised), (112, Transition::Cleared)]
        );
        // The excursion did not move the baseline.
        assert!((s.baseline.mean - 20.0).abs() < 0.5, "{:?}", s.baseline);
        assert_eq!(s.baseline.count, 190);
    }

    #[test]
    fn a_single_spike_raises_nothing() {
        let d = detector();
        let mut s = SeriesState::default();
        for i in 0..100 {
            let value = if i == 50 { 65.0 } else { normal(i) };
            let v = d.observe(&mut s, value);
            assert_eq!(v.anomalous, i == 50);
            assert_eq!(v.transition, Transition::Stay);
        }
    }

    #[test]
    fn low_values_are_anomalous_too() {
        let d = detector();
        let mut s = SeriesState::default();
        for i in 0..50 {
            d.observe(&mut s, normal(i));
        }
        let v = d.observe(&mut s, -10.0);
        assert!(v.anomalous && v.score.unwrap() < -4.0);
    }

    proptest! {
        #[test]
        fn only_normal_readings_enter_the_baseline_and_raises_need_a_run(
            values in prop::collection::vec(prop_oneof![4 => 15.0f64..25.0, 1 => -100.0f64..200.0], 0..300),
        ) {
            let d = detector();
            let mut s = SeriesState::default();
            let (mut normal_seen, mut run) = (0u64, 0u32);
            for v in values {
                let verdict = d.observe(&mut s, v);
                normal_seen += u64::from(!verdict.anomalous);
                run = if verdict.anomalous { run + 1 } else { 0 };
                prop_assert_eq!(s.baseline.count, normal_seen);
                prop_assert!(verdict.score.is_some() || !verdict.anomalous);
                if verdict.transition == Transition::Raised {
                    prop_assert!(run >= d.hysteresis.raise_after);
                }
            }
        }

        #[test]
        fn state_round_trips_through_json(values in prop::collection::vec(-50.0f64..50.0, 0..60)) {
            let d = detector();
            let mut s = SeriesState::default();
            for v in values {
                d.observe(&mut s, v);
            }
            let json = serde_json::to_string(&s).unwrap();
            let back: SeriesState = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back.baseline.count, s.baseline.count);
            prop_assert_eq!(back.episode, s.episode);
        }
    }
}
