//! What the aggregates share: listing pages, and idempotent creation (keys, claims, the
//! claim-then-replay sequence and its outcome).
pub mod idempotency;

pub use idempotency::{claimed_id, insert_claimed, Claim, Claimed, IdempotencyKey, IdempotencyKeyError};

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
    pub fn slice(all: Vec<T>, limit: usize, offset: usize) -> Self {
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
