//! The objects the service keeps. One model serves every vendor surface.
use crate::{CreditAmount, EntitlementId, GrantId, NonNegative, Priority, TenantId, Timestamp};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// Defined with the idempotent-create sequence that uses it; kept here too (the in-memory stores and the
/// contract suite use this path).
pub(crate) use crate::kernel::Claim;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntitlementStatus {
    Active,
    Canceled,
    Expired,
}

impl EntitlementStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            EntitlementStatus::Active => "active",
            EntitlementStatus::Canceled => "canceled",
            EntitlementStatus::Expired => "expired",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "canceled" => Some(Self::Canceled),
            "expired" => Some(Self::Expired),
            _ => None,
        }
    }
}

/// A customer's metered entitlement to a feature: the account that grants credit and usage debits.
/// Metronome's "customer" is `customer_id`; Flexprice's subscription and plan scopes find entitlements
/// through `subscription_id` and `plan_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Entitlement {
    pub id: EntitlementId,
    pub tenant: TenantId,
    pub customer_id: String,
    pub feature_id: String,
    pub feature_key: String,
    pub product_id: String,
    pub subscription_id: Option<String>,
    pub plan_id: Option<String>,
    pub status: EntitlementStatus,
    pub active_from: Timestamp,
    pub active_to: Option<Timestamp>,
    pub metadata: BTreeMap<String, String>,
    pub is_soft_limit: bool,
    pub pricing_unit_id: Option<String>,
    pub current_period_start: Timestamp,
    pub current_period_end: Timestamp,
    /// Where the period schedule is counted from (the first period's start), so that month ends
    /// do not drift: Jan 31, Feb 28, Mar 31, ...
    pub period_anchor: Timestamp,
    /// The period's length in calendar months, when it is whole months; otherwise periods repeat
    /// the first period's exact length.
    pub period_months: Option<u32>,
    /// Usage recorded in the current period (the ledger keeps it).
    pub usage_in_period: Decimal,
    /// Usage in the current period that no grant covered.
    pub overage: Decimal,
    pub created_at: Timestamp,
    /// Where its log stands ([`crate::ledger::LogHead`]). None for an entitlement created before the
    /// log existed: its balances at past instants are read from every usage record, as before.
    pub log: Option<crate::ledger::LogHead>,
    /// Until when a writer holds the group-commit lease on it ([`crate::group_commit`]), if one
    /// does: usage then joins the queue without trying a transaction of its own. Read, never
    /// written with the entitlement.
    pub lease_until: Option<Timestamp>,
    /// The usage event whose application over several transactions is under way, if one is
    /// ([`crate::group_commit::Application`]). Read, never written with the entitlement.
    pub applying: Option<String>,
}

impl Entitlement {
    pub(crate) fn is_active(&self) -> bool {
        self.status == EntitlementStatus::Active
    }

    /// The period counters' invariant: never negative (they start at zero, usage only adds to
    /// them, a period reset zeroes them). Asserted in debug builds where they are written and read.
    pub fn counters_hold(&self) -> bool {
        self.usage_in_period >= Decimal::ZERO && self.overage >= Decimal::ZERO
    }
}

/// Credits added to an entitlement.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub id: GrantId,
    pub tenant: TenantId,
    pub entitlement_id: EntitlementId,
    /// Denormalised from the entitlement so that customer-wide listings need no join.
    pub customer_id: String,
    pub amount: CreditAmount,
    /// Credits not yet consumed. Starts at `amount`; only the ledger lowers it.
    pub remaining: Decimal,
    pub effective_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub voided_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub priority: Option<Priority>,
    pub reset_max_rollover: Option<NonNegative>,
    pub reset_min_rollover: Option<NonNegative>,
    pub recurrence_period: Option<String>,
    pub idempotency_key: Option<String>,
    /// Credits held by pending usage: not consumed yet, but not available to other usage.
    /// Never above `remaining`.
    pub reserved: Decimal,
    /// The latest `occurredAt` of usage that drew on (or holds) this grant: its expiry may not be
    /// moved to or before it.
    pub last_used_at: Option<Timestamp>,
    /// Bumped by every ledger write, void and edit. Ledger transactions are conditional on it,
    /// so two writers can never both spend the same credits.
    pub version: u64,
    /// The credit type of `amount` (the entitlement's pricing unit); None is the tenant's default
    /// credit type, "USD (cents)".
    pub credit_type_id: Option<String>,
    /// Descriptive fields that only some surfaces show (Metronome's name, reason, ...).
    pub details: GrantDetails,
}

/// What a grant says about itself beyond its credits. Every field is optional.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GrantDetails {
    pub name: Option<String>,
    pub reason: Option<String>,
    pub credit_grant_type: Option<String>,
    pub custom_fields: BTreeMap<String, String>,
    /// What was paid for the grant, in `paid_credit_type_id` (None: the default credit type).
    pub paid_amount: Option<Decimal>,
    pub paid_credit_type_id: Option<String>,
    pub product_ids: Vec<String>,
    /// Metronome's `uniqueness_key`, while it is held.
    pub uniqueness_key: Option<String>,
    /// The purchase invoice the grant fulfilled.
    pub invoice_id: Option<String>,
}

/// What every new grant must be given; [`Grant::new`] defaults the rest.
#[derive(Debug, Clone)]
pub struct NewGrantFields {
    pub tenant: TenantId,
    pub entitlement_id: EntitlementId,
    /// The entitlement's customer (denormalised onto the grant).
    pub customer_id: String,
    pub amount: CreditAmount,
    pub effective_at: Timestamp,
    pub created_at: Timestamp,
    /// The entitlement's credit type (its pricing unit); None is the default credit type.
    pub credit_type_id: Option<String>,
}

impl Grant {
    /// A grant about to be created: a new id, and nothing consumed, held or ended yet.
    ///
    /// Invariants of a new grant: `remaining == amount`, `reserved == 0`, `version == 0`, not
    /// voided, never used. Optional fields (expiry, priority, rollover bounds, recurrence,
    /// idempotency key, details) start empty and are set by the chained `with_*` methods, whose
    /// own checks (expiry after `effective_at`, rollover bounds as
    /// `check_rollover_bounds` has them) are the callers' validation, asserted in
    /// debug builds. Every grant, new or stored, keeps `0 <= reserved <= remaining <= amount`
    /// ([`Grant::holds_invariants`]).
    pub fn new(fields: NewGrantFields) -> Self {
        let NewGrantFields {
            tenant,
            entitlement_id,
            customer_id,
            amount,
            effective_at,
            created_at,
            credit_type_id,
        } = fields;
        let grant = Grant {
            id: GrantId::generate(),
            tenant,
            entitlement_id,
            customer_id,
            amount,
            remaining: amount.value(),
            effective_at,
            expires_at: None,
            voided_at: None,
            created_at,
            priority: None,
            reset_max_rollover: None,
            reset_min_rollover: None,
            recurrence_period: None,
            idempotency_key: None,
            reserved: Decimal::ZERO,
            last_used_at: None,
            version: 0,
            credit_type_id,
            details: GrantDetails::default(),
        };
        debug_assert!(grant.holds_invariants());
        grant
    }

    /// Expires at `expires_at` (None: never). It must be after `effective_at`.
    pub fn with_expiry(mut self, expires_at: Option<Timestamp>) -> Self {
        debug_assert!(
            expires_at.is_none_or(|e| e > self.effective_at),
            "a grant's expiry must be after its effective time"
        );
        self.expires_at = expires_at;
        self
    }

    pub fn with_priority(mut self, priority: Option<Priority>) -> Self {
        self.priority = priority;
        self
    }

    /// The bounds a period reset clamps the rest to; validated by
    /// [`check_rollover_bounds`].
    pub(crate) fn with_rollover_bounds(mut self, min: Option<NonNegative>, max: Option<NonNegative>) -> Self {
        debug_assert!(
            check_rollover_bounds(self.amount, min, max).is_ok(),
            "unchecked rollover bounds"
        );
        self.reset_min_rollover = min;
        self.reset_max_rollover = max;
        self
    }

    /// The ISO 8601 period of the schedule that created the grant (a credit plan's).
    pub(crate) fn with_recurrence_period(mut self, period: Option<String>) -> Self {
        self.recurrence_period = period;
        self
    }

    pub fn with_idempotency_key(mut self, key: Option<String>) -> Self {
        self.idempotency_key = key;
        self
    }

    pub(crate) fn with_details(mut self, details: GrantDetails) -> Self {
        self.details = details;
        self
    }

    /// The ledger's invariant on a grant's counters: `0 <= reserved <= remaining <= amount`.
    /// Every write keeps it (usage draws at most what is available, a reset keeps at least what
    /// is held and at most the amount); debug builds assert it where grants are built, changed,
    /// written and read.
    pub fn holds_invariants(&self) -> bool {
        Decimal::ZERO <= self.reserved && self.reserved <= self.remaining && self.remaining <= self.amount.value()
    }

    /// True when the grant counts toward the balance at `at`.
    pub(crate) fn is_active_at(&self, at: Timestamp) -> bool {
        self.effective_at <= at && self.expires_at.is_none_or(|e| at < e) && self.voided_at.is_none_or(|v| at < v)
    }

    /// Credits that new usage may draw on: neither consumed nor reserved. Never negative while
    /// [`Grant::holds_invariants`]; no clamp hides a broken one in release builds either (usage
    /// takes only positive amounts from a grant, so a negative one would be skipped like zero).
    pub(crate) fn available(&self) -> Decimal {
        debug_assert!(
            self.holds_invariants(),
            "grant {} breaks 0 <= reserved <= remaining <= amount",
            self.id
        );
        self.remaining - self.reserved
    }
}

/// Why a grant's rollover bounds are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RolloverBoundsError {
    #[error("resetMinRollover must not exceed resetMaxRollover")]
    Inverted,
    #[error("resetMinRollover must not exceed the grant's amount")]
    AboveAmount,
}

/// The one rule for rollover bounds, on every surface that accepts them: `resetMinRollover <=
/// resetMaxRollover` and `resetMinRollover <= amount`, so that a period reset, which tops a grant
/// up to its minimum, can never leave more than was granted (the invariant *remaining <= amount*;
/// security review finding 2: a paid grant grew past what was paid for).
pub(crate) fn check_rollover_bounds(
    amount: CreditAmount,
    min: Option<NonNegative>,
    max: Option<NonNegative>,
) -> Result<(), RolloverBoundsError> {
    if let (Some(min), Some(max)) = (min, max) {
        if min > max {
            return Err(RolloverBoundsError::Inverted);
        }
    }
    if min.is_some_and(|m| m.value() > amount.value()) {
        return Err(RolloverBoundsError::AboveAmount);
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

/// An API key as stored: only its hash, never the key.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    /// Hex SHA-256 of the key.
    pub key_hash: String,
    pub tenant: TenantId,
    pub role: Role,
    pub created_at: Timestamp,
    /// The key's first characters (`gk_1a2b`), so an operator can tell keys apart; empty for keys
    /// created before it was kept.
    pub display_prefix: String,
    /// The key stops working at this instant (revoked, or rotated with an overlap). None: never.
    pub expires_at: Option<Timestamp>,
    /// When the key last authenticated a request, to the hour (see [`crate::auth`]).
    pub last_used_at: Option<Timestamp>,
}

impl ApiKeyRecord {
    /// The key's public id (`key_` + the first 16 hex characters of its hash): what logs and the
    /// operator CLI show instead of anything secret. Derived, so keys stored before ids existed
    /// have one too.
    pub fn key_id(&self) -> String {
        key_id_of(&self.key_hash)
    }
    pub(crate) fn is_valid_at(&self, now: Timestamp) -> bool {
        unexpired(self.expires_at, now)
    }
}

/// Whether something that stops at `expires_at` (None: never) is still valid at `now`.
pub(crate) fn unexpired(expires_at: Option<Timestamp>, now: Timestamp) -> bool {
    expires_at.is_none_or(|e| now < e)
}

/// The public id of a key hash (see [`ApiKeyRecord::key_id`]).
pub(crate) fn key_id_of(key_hash: &str) -> String {
    format!("key_{}", key_hash.get(..16).unwrap_or(key_hash))
}
