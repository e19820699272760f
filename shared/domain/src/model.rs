//! The objects the service keeps. One model serves every vendor surface.
use crate::{CreditAmount, EntitlementId, GrantId, NonNegative, Priority, TenantId, Timestamp};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

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
}

impl Entitlement {
    pub fn is_active(&self) -> bool {
        self.status == EntitlementStatus::Active
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

impl Grant {
    /// True when the grant counts toward the balance at `at`.
    pub fn is_active_at(&self, at: Timestamp) -> bool {
        self.effective_at <= at && self.expires_at.is_none_or(|e| at < e) && self.voided_at.is_none_or(|v| at < v)
    }

    /// Credits that new usage may draw on: neither consumed nor reserved.
    pub fn available(&self) -> Decimal {
        (self.remaining - self.reserved).max(Decimal::ZERO)
    }
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
    pub fn is_valid_at(&self, now: Timestamp) -> bool {
        unexpired(self.expires_at, now)
    }
}

/// Whether something that stops at `expires_at` (None: never) is still valid at `now`.
pub fn unexpired(expires_at: Option<Timestamp>, now: Timestamp) -> bool {
    expires_at.is_none_or(|e| now < e)
}

/// The public id of a key hash (see [`ApiKeyRecord::key_id`]).
pub fn key_id_of(key_hash: &str) -> String {
    format!("key_{}", key_hash.get(..16).unwrap_or(key_hash))
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
    pub fn replayed_id(&self, request: &BTreeMap<String, String>) -> Result<&str, Vec<String>> {
        let differing = self.differing_fields(request);
        if differing.is_empty() {
            Ok(&self.object_id)
        } else {
            Err(differing)
        }
    }

    /// Field names whose values differ between the stored claim and a new request.
    pub fn differing_fields(&self, other: &BTreeMap<String, String>) -> Vec<String> {
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
