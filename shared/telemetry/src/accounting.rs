//! Where every record went. A run balances when
//! `received = stored + deduplicated + dead_lettered + dropped`.

use std::collections::BTreeMap;

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

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub received: u64,
    pub stored: u64,
    pub deduplicated: u64,
    pub dead_lettered: BTreeMap<&'static str, u64>,
    pub dropped: BTreeMap<&'static str, u64>,
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
            Outcome::DeadLettered(reason) => *self.dead_lettered.entry(reason).or_default() += 1,
            Outcome::Dropped(reason) => *self.dropped.entry(reason).or_default() += 1,
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
            *self.dead_lettered.entry(reason).or_default() += n;
        }
        for (reason, n) in &other.dropped {
            *self.dropped.entry(reason).or_default() += n;
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
