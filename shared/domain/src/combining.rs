//! Flat combining of usage on a busy entitlement within one process (issue 16, item 2).
//!
//! An execution environment that serves several requests at once (Lambda Managed Instances,
//! `PerExecutionEnvironmentMaxConcurrency`; the local router) keeps one **line** per entitlement.
//! The first request to arrive leads it; requests that arrive while the leader writes wait behind
//! it. When the leader is done, the first waiting request leads next and takes every request then
//! waiting with its own: it writes them together in one transaction
//! ([`crate::usage::record_usage`]) and hands each waiter its record. So under load one transaction
//! applies many events, and writers of one process never race each other's transactions.
//!
//! The line only decides who writes: exactly-once and the grants' versions are still the
//! conditional transaction's. A leader that is cancelled passes the line on (its drop guard), and a
//! waiter whose leader went away without answering writes its event on its own.
use crate::usage::UsageRecord;
use crate::{EntitlementId, TenantId};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::oneshot;

type Key = (TenantId, EntitlementId);
type Lines = HashMap<Key, VecDeque<Waiting>>;

/// This process's lines, one per entitlement with a request in flight; kept beside the store's
/// client (a warm execution environment keeps it between requests). Cloning shares it.
#[derive(Clone, Default)]
pub struct Combiner(Arc<Mutex<Lines>>);

impl std::fmt::Debug for Combiner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Combiner")
            .field("lines_open", &self.lines_open())
            .finish()
    }
}

/// A request waiting behind a line's leader.
pub struct Waiting {
    /// The usage request as it arrived (no deductions yet).
    pub request: UsageRecord,
    reply: oneshot::Sender<Turn>,
}

impl Waiting {
    /// Answers the waiter (ignored when it has gone away).
    pub fn answer(self, turn: Turn) {
        let _ = self.reply.send(turn);
    }

    /// The waiter has gone away (its request was cancelled): nobody would read an answer.
    pub fn gone(&self) -> bool {
        self.reply.is_closed()
    }
}

/// What a request that arrives finds.
pub enum Entry {
    /// Nobody else holds the entitlement's line: this request leads it.
    First(Line),
    /// Another request leads: wait for the turn.
    Behind(oneshot::Receiver<Turn>),
}

/// What a waiting request is told.
pub enum Turn {
    /// Its event was written with the leader's: its record.
    Applied(UsageRecord),
    /// The leader is done: this request leads now.
    Lead(Line),
    /// It could not be written with the others (a replay, no room, the lease not had): it goes on
    /// alone, as if nobody had been in line.
    Alone,
}

/// The lead of one entitlement's line. Dropping it passes the line to the first request still
/// waiting, or closes the line when nobody waits.
pub struct Line {
    key: Key,
    lines: Arc<Mutex<Lines>>,
    /// False once its turn has been handed on (or for a line that was never handed over): its
    /// drop does nothing.
    held: bool,
}

fn lock(lines: &Mutex<Lines>) -> MutexGuard<'_, Lines> {
    lines.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Combiner {
    /// Joins the line of the request's entitlement.
    pub fn enter(&self, request: &UsageRecord) -> Entry {
        let key = (request.tenant.clone(), request.entitlement_id.clone());
        let mut lines = lock(&self.0);
        match lines.get_mut(&key) {
            Some(waiting) => {
                let (reply, turn) = oneshot::channel();
                waiting.push_back(Waiting {
                    request: request.clone(),
                    reply,
                });
                Entry::Behind(turn)
            }
            None => {
                lines.insert(key.clone(), VecDeque::new());
                Entry::First(Line {
                    key,
                    lines: Arc::clone(&self.0),
                    held: true,
                })
            }
        }
    }

    /// How many entitlements have a line (a request in flight) in this process.
    pub fn lines_open(&self) -> usize {
        lock(&self.0).len()
    }
}

impl Line {
    /// Takes every request now waiting behind the leader (in the order they arrived), except those
    /// that have gone away. They are the leader's to answer.
    pub fn take_waiting(&mut self) -> Vec<Waiting> {
        let mut lines = lock(&self.lines);
        lines
            .get_mut(&self.key)
            .map(|w| w.drain(..).filter(|w| !w.gone()).collect())
            .unwrap_or_default()
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        let mut lines = lock(&self.lines);
        let Some(waiting) = lines.get_mut(&self.key) else {
            return;
        };
        while let Some(next) = waiting.pop_front() {
            let line = Line {
                key: self.key.clone(),
                lines: Arc::clone(&self.lines),
                held: true,
            };
            match next.reply.send(Turn::Lead(line)) {
                Ok(()) => return,
                // That waiter has gone: its line is not handed on (the lock is held here), the next
                // waiter's turn comes.
                Err(Turn::Lead(mut unsent)) => unsent.held = false,
                Err(_) => {}
            }
        }
        lines.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::UsageStatus;
    use crate::Timestamp;

    fn request(event: &str) -> UsageRecord {
        let at = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
        UsageRecord {
            rollover: false,
            tenant: TenantId::parse("t1").unwrap(),
            entitlement_id: EntitlementId::parse("ent_1").unwrap(),
            event_id: event.to_owned(),
            amount: rust_decimal::Decimal::ONE,
            occurred_at: at,
            recorded_at: at,
            status: UsageStatus::Committed,
            deductions: Vec::new(),
            overage: rust_decimal::Decimal::ZERO,
            settled_at: None,
            fingerprint: Default::default(),
        }
    }

    #[tokio::test]
    async fn the_line_passes_to_the_first_waiter_and_closes_when_nobody_waits() {
        let combiner = Combiner::default();
        let Entry::First(mut lead) = combiner.enter(&request("a")) else {
            panic!("the first request leads")
        };
        let Entry::Behind(b) = combiner.enter(&request("b")) else {
            panic!("the second waits")
        };
        let Entry::Behind(c) = combiner.enter(&request("c")) else {
            panic!("the third waits")
        };
        assert_eq!(lead.take_waiting().len(), 2);
        // b and c were taken by the leader: dropping their senders tells them nothing was written.
        assert!(b.await.is_err() && c.await.is_err());
        let Entry::Behind(d) = combiner.enter(&request("d")) else {
            panic!("the line is still led")
        };
        drop(lead);
        let Ok(Turn::Lead(next)) = d.await else {
            panic!("d leads next")
        };
        assert_eq!(combiner.lines_open(), 1);
        drop(next);
        assert_eq!(combiner.lines_open(), 0);
    }

    #[tokio::test]
    async fn a_waiter_that_went_away_is_skipped_and_an_unreceived_lead_passes_on() {
        let combiner = Combiner::default();
        let Entry::First(lead) = combiner.enter(&request("a")) else {
            panic!("the first request leads")
        };
        let Entry::Behind(gone) = combiner.enter(&request("gone")) else {
            panic!("waits")
        };
        let Entry::Behind(sleeper) = combiner.enter(&request("sleeper")) else {
            panic!("waits")
        };
        let Entry::Behind(last) = combiner.enter(&request("last")) else {
            panic!("waits")
        };
        drop(gone);
        drop(lead);
        // The sleeper was handed the line but never looked: dropping it unreceived passes it on.
        drop(sleeper);
        let Ok(Turn::Lead(next)) = last.await else {
            panic!("the last waiter leads")
        };
        drop(next);
        assert_eq!(combiner.lines_open(), 0);
    }
}
