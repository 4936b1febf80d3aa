//! Raise after N consecutive anomalous points, clear after M consecutive normal ones, so a
//! value hovering at the limit makes one episode rather than an alert per crossing.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hysteresis {
    /// Consecutive anomalous points that raise an episode (at least 1).
    pub raise_after: u32,
    /// Consecutive normal points that clear it (at least 1).
    pub clear_after: u32,
}

impl Default for Hysteresis {
    fn default() -> Self {
        Self {
            raise_after: 2,
            clear_after: 3,
        }
    }
}

/// Where a series stands between points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Episode {
    pub active: bool,
    /// Length of the current run of anomalous (or normal) points.
    pub anomalous_run: u32,
    pub normal_run: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Nothing changed: still normal, or still in the same episode.
    Stay,
    Raised,
    Cleared,
}

impl Hysteresis {
    pub fn step(&self, episode: &mut Episode, anomalous: bool) -> Transition {
        if anomalous {
            episode.anomalous_run = episode.anomalous_run.saturating_add(1);
            episode.normal_run = 0;
            if !episode.active && episode.anomalous_run >= self.raise_after.max(1) {
                episode.active = true;
                return Transition::Raised;
            }
        } else {
            episode.normal_run = episode.normal_run.saturating_add(1);
            episode.anomalous_run = 0;
            if episode.active && episode.normal_run >= self.clear_after.max(1) {
                episode.active = false;
                return Transition::Cleared;
            }
        }
        Transition::Stay
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(h: Hysteresis, points: &str) -> Vec<Transition> {
        let mut e = Episode::default();
        points.chars().map(|c| h.step(&mut e, c == 'x')).collect()
    }

    #[test]
    fn raises_after_n_and_clears_after_m() {
        let h = Hysteresis {
            raise_after: 2,
            clear_after: 3,
        };
        let t = run(h, "x.xx.x..xx...");
        let raised: Vec<usize> = t
            .iter()
            .enumerate()
            .filter(|(_, t)| **t == Transition::Raised)
            .map(|(i, _)| i)
            .collect();
        let cleared: Vec<usize> = t
            .iter()
            .enumerate()
            .filter(|(_, t)| **t == Transition::Cleared)
            .map(|(i, _)| i)
            .collect();
        // One isolated spike raises nothing; the first pair raises; flapping with fewer
        // than three normal points keeps the same episode; three normal points clear it.
        assert_eq!(raised, [3]);
        assert_eq!(cleared, [12]);
    }

    #[test]
    fn one_and_one_follows_every_change() {
        let h = Hysteresis {
            raise_after: 1,
            clear_after: 1,
        };
        assert_eq!(
            run(h, "x.x"),
            [Transition::Raised, Transition::Cleared, Transition::Raised]
        );
    }

    proptest! {
        #[test]
        fn raises_and_clears_alternate_and_respect_the_runs(
            points in prop::collection::vec(any::<bool>(), 0..300),
            n in 1u32..6, m in 1u32..6,
        ) {
            let h = Hysteresis { raise_after: n, clear_after: m };
            let mut e = Episode::default();
            let mut active = false;
            let (mut anomalous_run, mut normal_run) = (0u32, 0u32);
            for p in points {
                if p { anomalous_run += 1; normal_run = 0 } else { normal_run += 1; anomalous_run = 0 }
                match h.step(&mut e, p) {
                    Transition::Raised => {
                        prop_assert!(!active, "raised twice without a clear");
                        prop_assert!(p && anomalous_run >= n);
                        active = true;
                    }
                    Transition::Cleared => {
                        prop_assert!(active, "cleared without a raise");
                        prop_assert!(!p && normal_run >= m);
                        active = false;
                    }
                    Transition::Stay => {
                        // Staying put is right only when the run is not (yet) long enough.
                        if active {
                            prop_assert!(p || normal_run < m);
                        } else {
                            prop_assert!(!p || anomalous_run < n);
                        }
                    }
                }
                prop_assert_eq!(e.active, active);
            }
        }
    }
}
