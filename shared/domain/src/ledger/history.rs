//! Committed usage up to an instant without reading all of history: the entitlement's log and its
//! checkpoints.
//!
//! Every committed effect on an entitlement's grants (usage committed when recorded, a pending
//! event's commit, a rollover adjustment) is a [`LogEntry`], numbered in the order it was written.
//! Every so many entries a [`Checkpoint`] sums the entries up to it: per grant what they drew, and
//! the overage they carried. A checkpoint's instant is the latest `occurred_at` among the entries it
//! sums (never earlier than the one before it), so every entry it sums occurred at or before it, and
//! usage written in the order it occurred is never late.
//!
//! What the entries that occurred by `t` sum to is then read from a bounded part of the log:
//! - `t` at or after the last checkpoint's instant: that checkpoint plus the entries after it (the
//!   tail since the last checkpoint) that occurred by `t`.
//! - otherwise, with `K` the first checkpoint made after `t`: `K`, less the entries of `K`'s own
//!   window (after the checkpoint before it) that occurred after `t` (the entries before the window
//!   all occurred by the previous checkpoint's instant, which is at or before `t`), plus the entries
//!   written after `K` that occurred by `t`. Those last ones occurred before a checkpoint that already
//!   existed when they were written ("late": backdated usage, or a late commit of a pending event),
//!   so the store also indexes late entries by when they occurred.
//!
//! So a read costs one checkpoint, at most one window of entries, and the late entries that occurred
//! by `t`: bounded by the checkpoint spacing and the backdated traffic, not by the length of history.
use super::Deduction;
use crate::model::Grant;
use crate::{GrantId, Timestamp};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// A checkpoint is written with every this many log entries: a read for a past instant reads at
/// most this many entries of one window (plus the late ones, see the module docs).
pub const CHECKPOINT_EVERY: u64 = 64;

/// Where an entitlement's log stands, kept on the entitlement and advanced (conditionally) by
/// every write that appends to the log.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogHead {
    /// The last entry written (0: none).
    pub seq: u64,
    /// The last checkpoint's sequence number and instant (none yet: 0 and the epoch).
    pub checkpoint_seq: u64,
    pub checkpoint_at: Option<Timestamp>,
    /// Every committed overage ever logged (the entitlement's period counter restarts; this does
    /// not): a checkpoint's overage total.
    pub overage_total: Decimal,
    /// How many late entries were written (none: a read skips looking for them).
    pub late_entries: u64,
    /// The latest `occurred_at` of the entries written: a checkpoint's instant, so that entries
    /// arriving in the order they occurred are never late.
    pub latest_occurred: Option<Timestamp>,
}

/// What one write adds to an entitlement's log, built by [`LogAppend::push`] (one entry per
/// committed effect): the store writes it in the same transaction as the usage it records,
/// conditional on the log still being at `read_seq`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogAppend {
    /// The log head as read: the write is refused when another write moved it.
    pub read_seq: u64,
    /// The entries, in order, each with whether it is late: written before the last checkpoint's
    /// instant, so also indexed by when it occurred.
    pub entries: Vec<(LogEntry, bool)>,
    /// When the entries cross a multiple of [`CHECKPOINT_EVERY`]: the totals up to that entry.
    /// (A write appends fewer than that many entries, so at most one.)
    pub checkpoint: Option<Checkpoint>,
    /// The head after the write.
    pub head: LogHead,
}

impl LogAppend {
    /// Nothing appended yet to a log at `head`.
    pub fn at(head: &LogHead) -> Self {
        LogAppend {
            read_seq: head.seq,
            entries: Vec::new(),
            checkpoint: None,
            head: head.clone(),
        }
    }

    /// Appends one committed effect on the entitlement's grants: `drawn` from the grants and
    /// `overage`, for usage that occurred at `occurred_at`. `grants_after` are
    /// all the entitlement's grants with this effect (and the ones before it) applied: their
    /// remainders are a checkpoint's totals (`amount - remaining` is what the log has drawn from
    /// each; only logged writes lower `remaining`).
    pub fn push(&mut self, grants_after: &[Grant], occurred_at: Timestamp, drawn: Vec<Deduction>, overage: Decimal) {
        let head = &mut self.head;
        let entry = LogEntry {
            seq: head.seq + 1,
            occurred_at,
            drawn,
            overage,
        };
        let late = head.checkpoint_at.is_some_and(|at| occurred_at < at);
        head.seq = entry.seq;
        head.overage_total += overage;
        head.late_entries += u64::from(late);
        head.latest_occurred = head.latest_occurred.max(Some(occurred_at));
        if entry.seq.is_multiple_of(CHECKPOINT_EVERY) {
            debug_assert!(self.checkpoint.is_none(), "two checkpoints in one write");
            let checkpoint = Checkpoint {
                seq: entry.seq,
                previous_seq: head.checkpoint_seq,
                at: head
                    .latest_occurred
                    .unwrap_or(occurred_at)
                    .max(head.checkpoint_at.unwrap_or(Timestamp::EPOCH)),
                totals: Totals::from_remainders(grants_after, head.overage_total),
            };
            head.checkpoint_seq = checkpoint.seq;
            head.checkpoint_at = Some(checkpoint.at);
            self.checkpoint = Some(checkpoint);
        }
        self.entries.push((entry, late));
    }
}

impl LogAppend {
    /// The entries as the store groups them into items: one group, or two when a checkpoint falls
    /// inside (the entries up to it, then the rest), so that no item holds entries of two
    /// checkpoint windows and a window is read by the sequence numbers of its items' first entries.
    pub fn groups(&self) -> Vec<&[(LogEntry, bool)]> {
        let split = self.checkpoint.as_ref().and_then(|c| {
            self.entries
                .iter()
                .position(|(e, _)| e.seq == c.seq)
                .map(|i| i + 1)
                .filter(|i| *i < self.entries.len())
        });
        match split {
            Some(i) => vec![&self.entries[..i], &self.entries[i..]],
            None if self.entries.is_empty() => Vec::new(),
            None => vec![&self.entries[..]],
        }
    }
}

/// The log append of one committed effect (see [`LogAppend::push`]).
pub fn append(
    head: &LogHead,
    grants_after: &[Grant],
    occurred_at: Timestamp,
    drawn: Vec<Deduction>,
    overage: Decimal,
) -> LogAppend {
    let mut log = LogAppend::at(head);
    log.push(grants_after, occurred_at, drawn, overage);
    log
}

/// One committed effect on an entitlement's grants, as written to its log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// The entry's place in the entitlement's log: 1, 2, 3, ... in the order written.
    pub seq: u64,
    pub occurred_at: Timestamp,
    /// What it drew from each grant (a rollover adjustment may add: negative amounts).
    pub drawn: Vec<Deduction>,
    /// Committed usage no grant covered.
    pub overage: Decimal,
}

/// What the entries up to `seq` sum to.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The last entry summed.
    pub seq: u64,
    /// The checkpoint before this one (0: none); the entries after it up to `seq` are this
    /// checkpoint's window.
    pub previous_seq: u64,
    /// When it was made: every entry up to `seq` occurred at or before it.
    pub at: Timestamp,
    pub totals: Totals,
}

impl Checkpoint {
    /// Where every log starts: nothing summed.
    pub fn origin() -> Self {
        Checkpoint {
            seq: 0,
            previous_seq: 0,
            at: Timestamp::EPOCH,
            totals: Totals::default(),
        }
    }
}

/// Committed usage summed: per grant, and the overage.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Totals {
    pub drawn: BTreeMap<GrantId, Decimal>,
    pub overage: Decimal,
}

impl Totals {
    /// Adds (`sign` 1) or takes away (`sign` -1) one entry.
    fn add(&mut self, entry: &LogEntry, sign: Decimal) {
        for d in &entry.drawn {
            *self.drawn.entry(d.grant_id.clone()).or_default() += sign * d.amount;
        }
        self.overage += sign * entry.overage;
    }

    /// Everything the log has drawn from each grant (`amount - remaining`), and `overage_total`:
    /// the totals of the whole log, read off the grants instead of summing it.
    pub fn from_remainders(grants: &[Grant], overage_total: Decimal) -> Totals {
        Totals {
            drawn: grants
                .iter()
                .map(|g| (g.id.clone(), g.amount.value() - g.remaining))
                .filter(|(_, d)| !d.is_zero())
                .collect(),
            overage: overage_total,
        }
    }

    /// What the entries summed drew from `grant`.
    pub fn drawn_from(&self, grant: &GrantId) -> Decimal {
        self.drawn.get(grant).copied().unwrap_or_default()
    }

    /// These totals with `entries` added: the next checkpoint's, from this one's and its window.
    pub fn plus<'a>(&self, entries: impl IntoIterator<Item = &'a LogEntry>) -> Totals {
        let mut next = self.clone();
        for e in entries {
            next.add(e, Decimal::ONE);
        }
        next
    }
}

/// Which entries count: those that occurred by an instant, or strictly before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Through(Timestamp),
    Before(Timestamp),
}

impl Bound {
    pub fn admits(self, occurred_at: Timestamp) -> bool {
        match self {
            Bound::Through(t) => occurred_at <= t,
            Bound::Before(t) => occurred_at < t,
        }
    }
}

/// Where a read for a bound starts, as the store found it (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// The last checkpoint, made at or before the bound (or none yet: [`Checkpoint::origin`]).
    /// `later` then holds the log's tail after it.
    Last(Checkpoint),
    /// The first checkpoint made after the bound, with its window's entries. `later` then holds the
    /// late entries written after it that the bound admits.
    After {
        checkpoint: Checkpoint,
        window: Vec<LogEntry>,
    },
}

impl Start {
    /// The sequence number the `later` entries come after.
    pub fn seq(&self) -> u64 {
        match self {
            Start::Last(c) | Start::After { checkpoint: c, .. } => c.seq,
        }
    }
}

/// The committed usage that occurred within `bound`: the start's totals, corrected by its window,
/// plus the later entries the bound admits. `later` may hold entries the bound does not admit, or
/// entries at or before the start (both are skipped), so the store can pass what its read returned.
pub fn totals_within(bound: Bound, start: &Start, later: &[LogEntry]) -> Totals {
    let mut totals = match start {
        Start::Last(c) => c.totals.clone(),
        Start::After { checkpoint, window } => {
            let mut t = checkpoint.totals.clone();
            for e in window.iter().filter(|e| !bound.admits(e.occurred_at)) {
                t.add(e, Decimal::NEGATIVE_ONE);
            }
            t
        }
    };
    let after = start.seq();
    for e in later.iter().filter(|e| e.seq > after && bound.admits(e.occurred_at)) {
        totals.add(e, Decimal::ONE);
    }
    totals
}

/// True when an entry written now is late: it occurred before the last checkpoint's instant, so a
/// read for an instant before that checkpoint must find it by when it occurred.
pub fn is_late(entry_occurred_at: Timestamp, last_checkpoint: Option<&Checkpoint>) -> bool {
    last_checkpoint.is_some_and(|c| entry_occurred_at < c.at)
}

/// The start of a read for `bound`, chosen from every checkpoint (oldest first) and the log (the
/// in-memory store's read, and the reference the tests hold the DynamoDB reads to).
pub fn start_for(bound: Bound, checkpoints: &[Checkpoint], log: &[LogEntry]) -> Start {
    let made_by = |c: &Checkpoint| match bound {
        Bound::Through(t) => c.at <= t,
        Bound::Before(t) => c.at < t,
    };
    match checkpoints.iter().find(|c| !made_by(c)) {
        None => Start::Last(checkpoints.last().cloned().unwrap_or_else(Checkpoint::origin)),
        Some(c) => Start::After {
            checkpoint: c.clone(),
            window: log
                .iter()
                .filter(|e| e.seq > c.previous_seq && e.seq <= c.seq)
                .cloned()
                .collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::parse("2026-01-01T00:00:00Z")
            .unwrap()
            .plus_seconds(secs)
            .unwrap()
    }

    fn grant_id(n: u8) -> GrantId {
        GrantId::parse(&format!("grt_{n:026}")).unwrap()
    }

    /// One write: (seconds after the start it was written, seconds it is backdated, grant, amount,
    /// overage).
    type Write = (i64, i64, u8, i64, i64);

    /// The log and checkpoints the writes make, a checkpoint every `every` entries.
    fn history(writes: &[Write], every: u64) -> (Vec<LogEntry>, Vec<Checkpoint>) {
        let mut log: Vec<LogEntry> = Vec::new();
        let mut checkpoints: Vec<Checkpoint> = Vec::new();
        let mut written_at = 0;
        for (n, (gap, back, grant, amount, overage)) in writes.iter().enumerate() {
            written_at += gap;
            let entry = LogEntry {
                seq: n as u64 + 1,
                occurred_at: t(written_at - back),
                drawn: vec![Deduction {
                    grant_id: grant_id(*grant),
                    amount: Decimal::from(*amount),
                }],
                overage: Decimal::from(*overage),
            };
            log.push(entry);
            if (log.len() as u64).is_multiple_of(every) {
                let previous = checkpoints.last().cloned().unwrap_or_else(Checkpoint::origin);
                let window = log.iter().filter(|e| e.seq > previous.seq);
                checkpoints.push(Checkpoint {
                    seq: log.len() as u64,
                    previous_seq: previous.seq,
                    at: t(written_at).max(previous.at),
                    totals: previous.totals.plus(window),
                });
            }
        }
        (log, checkpoints)
    }

    /// What the store reads after the start: the tail after the last checkpoint, or the late
    /// entries (written after a checkpoint whose instant they occurred before) the bound admits.
    fn later(bound: Bound, start: &Start, log: &[LogEntry], checkpoints: &[Checkpoint]) -> Vec<LogEntry> {
        match start {
            Start::Last(c) => log.iter().filter(|e| e.seq > c.seq).cloned().collect(),
            Start::After { .. } => log
                .iter()
                .filter(|e| {
                    let last_before = checkpoints.iter().rfind(|c| c.seq < e.seq);
                    is_late(e.occurred_at, last_before) && bound.admits(e.occurred_at)
                })
                .cloned()
                .collect(),
        }
    }

    fn brute_force(bound: Bound, log: &[LogEntry]) -> Totals {
        Totals::default().plus(log.iter().filter(|e| bound.admits(e.occurred_at)))
    }

    fn without_zeros(mut t: Totals) -> Totals {
        t.drawn.retain(|_, v| !v.is_zero());
        t
    }

    proptest! {
        #[test]
        fn totals_from_checkpoints_equal_summing_all_of_history(
            writes in proptest::collection::vec((0i64..5, prop_oneof![4 => Just(0i64), 1 => 0i64..30], 0u8..4, -3i64..20, 0i64..3), 0..60),
            every in 1u64..6,
            probe in -5i64..200,
            before in any::<bool>(),
        ) {
            let (log, checkpoints) = history(&writes, every);
            let bound = if before { Bound::Before(t(probe)) } else { Bound::Through(t(probe)) };
            let start = start_for(bound, &checkpoints, &log);
            let later = later(bound, &start, &log, &checkpoints);
            prop_assert_eq!(
                without_zeros(totals_within(bound, &start, &later)),
                without_zeros(brute_force(bound, &log))
            );
        }
    }

    #[test]
    fn a_window_is_bounded_by_the_spacing_and_the_tail_by_it_too() {
        let writes: Vec<Write> = (0..1000).map(|_| (1, 0, 0, 1, 0)).collect();
        let (log, checkpoints) = history(&writes, 100);
        for probe in [0, 1, 150, 500, 999, 1000, 5000] {
            let bound = Bound::Through(t(probe));
            let start = start_for(bound, &checkpoints, &log);
            let later = later(bound, &start, &log, &checkpoints);
            let window = match &start {
                Start::After { window, .. } => window.len(),
                Start::Last(_) => 0,
            };
            assert!(
                window <= 100 && later.len() <= 100,
                "probe {probe}: {window} + {}",
                later.len()
            );
            assert_eq!(
                without_zeros(totals_within(bound, &start, &later)),
                brute_force(bound, &log)
            );
        }
    }
}
