//! Idempotent creation: an object is written together with a claim of its idempotency key, and a
//! request that finds the claim taken either replays what the first request made (same
//! parameters) or is refused (different ones).
use super::{Created, StoreError};
use std::collections::BTreeMap;
use std::future::Future;

/// A client's idempotency key: 1..=255 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyKeyError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 255 characters")]
    TooLong,
}

impl IdempotencyKey {
    pub fn parse(s: &str) -> Result<Self, IdempotencyKeyError> {
        if s.is_empty() {
            return Err(IdempotencyKeyError::Empty);
        }
        if s.chars().count() > 255 {
            return Err(IdempotencyKeyError::TooLong);
        }
        Ok(Self(s.to_owned()))
    }
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// An idempotency claim: proof that `key` in `scope` already created `object_id`, with the
/// parameters it was created from (field name -> canonical value) so that a replay can be compared.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub scope: String,
    pub key: String,
    pub object_id: String,
    pub fingerprint: BTreeMap<String, String>,
}

impl Claim {
    /// The id of the object this claim created, when a new request matches it; otherwise the
    /// names of the fields that differ (a 409).
    fn replayed_id(&self, request: &BTreeMap<String, String>) -> Result<&str, Vec<String>> {
        let differing = self.differing_fields(request);
        if differing.is_empty() {
            Ok(&self.object_id)
        } else {
            Err(differing)
        }
    }

    /// Field names whose values differ between the stored claim and a new request.
    fn differing_fields(&self, other: &BTreeMap<String, String>) -> Vec<String> {
        let mut names: Vec<String> = self
            .fingerprint
            .keys()
            .chain(other.keys())
            .filter(|k| self.fingerprint.get(*k) != other.get(*k))
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// What happened to an attempt to create an object guarded by an idempotency claim.
#[derive(Debug)]
pub enum InsertOutcome {
    /// The object and its claim were written together.
    Inserted,
    /// The claim already existed: nothing was written. The stored claim is returned.
    ClaimExists(Claim),
    /// The parent (entitlement) is missing or not active: nothing was written.
    ParentUnavailable,
}

/// What an idempotent create's insert came to, once a claim that already existed was checked.
#[derive(Debug)]
pub(crate) enum Claimed<T> {
    /// The object and its claim were written now.
    Inserted,
    /// An earlier request with the same key and the same parameters created this object: nothing
    /// was written.
    Replayed(T),
    /// The parent (entitlement) is missing or not active: nothing was written.
    ParentUnavailable,
}

/// The one claim-then-replay sequence of every idempotent create. Awaits `insert` (the object
/// written with its claim, conditional on the claim being new). When the claim already existed,
/// compares the request's `fingerprint` with it: the same parameters read the object the claim
/// points at (`original`, given its id; `what` names it if it is missing), different ones are
/// `mismatch(the differing field names)`, a 409 on every surface.
pub(crate) async fn insert_claimed<T, E, F>(
    what: &str,
    insert: impl Future<Output = Result<InsertOutcome, StoreError>>,
    fingerprint: &BTreeMap<String, String>,
    original: impl FnOnce(String) -> F,
    mismatch: impl FnOnce(Vec<String>) -> E,
) -> Result<Claimed<T>, E>
where
    F: Future<Output = Result<Option<T>, StoreError>>,
    E: From<StoreError>,
{
    match insert.await? {
        InsertOutcome::Inserted => Ok(Claimed::Inserted),
        InsertOutcome::ParentUnavailable => Ok(Claimed::ParentUnavailable),
        InsertOutcome::ClaimExists(existing) => {
            let id = existing.replayed_id(fingerprint).map_err(mismatch)?.to_owned();
            match original(id.clone()).await? {
                Some(object) => Ok(Claimed::Replayed(object)),
                None => Err(StoreError::Corrupt(format!("claimed {what} {id} is missing")).into()),
            }
        }
    }
}

/// The id a stored claim points at, parsed (`parse`: the id type's own); an id that does not
/// parse is a corrupt claim.
pub(crate) fn claimed_id<I, X>(parse: impl FnOnce(&str) -> Result<I, X>, id: &str) -> Result<I, StoreError> {
    parse(id).map_err(|_| StoreError::Corrupt(format!("claim points at {id}")))
}

impl<T> Claimed<T> {
    /// What the create made: `new` when it was inserted now, the original when replayed; None when
    /// the parent was unavailable.
    pub(crate) fn into_created(self, new: T) -> Option<Created<T>> {
        match self {
            Claimed::Inserted => Some(Created::New(new)),
            Claimed::Replayed(original) => Some(Created::Replayed(original)),
            Claimed::ParentUnavailable => None,
        }
    }
}
