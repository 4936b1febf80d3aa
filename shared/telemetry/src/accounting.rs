//! Where every record went. A run balances when
//! `received = stored + deduplicated + dead_lettered + dropped`.

use std::{borrow::Cow, collections::BTreeMap};

use serde::Serialize;

/// The fate of one raw record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Emitted as a normalized event (and so stored downstream).
    Stored,
    /// Same device and seq as a record already processed.
    Deduplicated,
    /// Written to the dead-letter store with this reason code.
    DeadLettered(&'static str),
    /// Deliberately not stored, for this reason: `quarantined`, `heartbeat`.
    Dropped(&'static str),
}

/// What happened to the records of a batch, or of many (summed with [`Tally::merge`]).
/// Reasons are the normalizer's own codes, or as read back from its metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub received: u64,
    pub stored: u64,
    pub deduplicated: u64,
    pub dead_lettered: BTreeMap<Cow<'static, str>, u64>,
    pub dropped: BTreeMap<Cow<'static, str>, u64>,
    /// Readings whose time was corrected for clock skew (also counted as stored).
    pub clock_skew_corrected: u64,
    /// Sequence numbers skipped by devices (a gap of 3 counts 3).
    pub sequence_gaps: u64,
    /// Devices seen restarting their sequence counter.
    pub sequence_resets: u64,
}

impl Tally {
    pub fn record(&mut self, outcome: &Outcome) {
        self.received += 1;
        match outcome {
            Outcome::Stored => self.stored += 1,
            Outcome::Deduplicated => self.deduplicated += 1,
            Outcome::DeadLettered(reason) => {
                *self.dead_lettered.entry(Cow::Borrowed(reason)).or_default() += 1
            }
            Outcome::Dropped(reason) => {
                *self.dropped.entry(Cow::Borrowed(reason)).or_default() += 1
            }
        }
    }

    pub fn dead_lettered_total(&self) -> u64 {
        self.dead_lettered.values().sum()
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    pub fn balances(&self) -> bool {
        self.received
            == self.stored + self.deduplicated + self.dead_lettered_total() + self.dropped_total()
    }

    pub fn merge(&mut self, other: &Tally) {
        self.received += other.received;
        self.stored += other.stored;
        self.deduplicated += other.deduplicated;
        self.clock_skew_corrected += other.clock_skew_corrected;
        self.sequence_gaps += other.sequence_gaps;
        self.sequence_resets += other.sequence_resets;
        for (reason, n) in &other.dead_lettered {
            *self.dead_lettered.entry(reason.clone()).or_default() += n;
        }
        for (reason, n) in &other.dropped {
            *self.dropped.entry(reason.clone()).or_default() += n;
        }
    }

    /// What happened between `earlier` and `self` (both running totals).
    pub fn since(&self, earlier: &Tally) -> Tally {
        let diff = |now: &BTreeMap<Cow<'static, str>, u64>,
                    then: &BTreeMap<Cow<'static, str>, u64>| {
            now.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.saturating_sub(then.get(k).copied().unwrap_or(0)),
                    )
                })
                .filter(|(_, v)| *v > 0)
                .collect()
        };
        Tally {
            received: self.received.saturating_sub(earlier.received),
            stored: self.stored.saturating_sub(earlier.stored),
            deduplicated: self.deduplicated.saturating_sub(earlier.deduplicated),
            dead_lettered: diff(&self.dead_lettered, &earlier.dead_lettered),
            dropped: diff(&self.dropped, &earlier.dropped),
            clock_skew_corrected: self
                .clock_skew_corrected
                .saturating_sub(earlier.clock_skew_corrected),
            sequence_gaps: self.sequence_gaps.saturating_sub(earlier.sequence_gaps),
            sequence_resets: self.sequence_resets.saturating_sub(earlier.sequence_resets),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_is_counted_once() {
        let mut tally = Tally::default();
        for outcome in [
            Outcome::Stored,
            Outcome::Stored,
            Outcome::Deduplicated,
            Outcome::DeadLettered("malformed_json"),
            Outcome::DeadLettered("rate_limited"),
            Outcome::Dropped("quarantined"),
        ] {
            tally.record(&outcome);
        }
        assert_eq!(tally.received, 6);
        assert!(tally.balances());
        let mut total = Tally::default();
        total.merge(&tally);
        total.merge(&tally);
        assert_eq!(total.received, 12);
        assert_eq!(total.dead_lettered["rate_limited"], 2);
        assert!(total.balances());
    }
}
