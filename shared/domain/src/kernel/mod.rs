//! What the aggregates share: listing pages, idempotent creation (keys, claims, the
//! claim-then-replay sequence and its outcome), client labels, and the storage ports' error.
mod idempotency;
mod label;
mod storage;

pub(crate) use idempotency::{claimed_id, insert_claimed, Claimed};
pub use idempotency::{Claim, IdempotencyKey, IdempotencyKeyError, InsertOutcome};
pub use label::{Label, LabelError};
pub use storage::StoreError;

/// Whether an idempotent create made something new or found what an earlier identical request made.
#[derive(Debug, Clone)]
pub enum Created<T> {
    New(T),
    Replayed(T),
}

impl<T> Created<T> {
    pub fn into_inner(self) -> T {
        match self {
            Created::New(t) | Created::Replayed(t) => t,
        }
    }
}

/// A page of an offset-paginated listing with its exact total.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: usize,
    pub limit: usize,
    pub offset: usize,
}

impl<T> Page<T> {
    pub(crate) fn slice(all: Vec<T>, limit: usize, offset: usize) -> Self {
        let total = all.len();
        let items = all.into_iter().skip(offset).take(limit).collect();
        Page {
            items,
            total,
            limit,
            offset,
        }
    }
}
