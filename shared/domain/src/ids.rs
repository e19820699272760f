//! Opaque identifiers: a type prefix and a ULID, so that string order is creation order.
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a valid {kind} id")]
pub struct IdError {
    kind: &'static str,
}

/// True for the characters an id (or tenant slug) may contain.
fn id_chars_ok(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id, sortable by creation time.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, ulid::Ulid::generate()))
            }

            /// Accepts an id of this kind as a client sent it (a path segment, a JSON field).
            pub fn parse(s: &str) -> Result<Self, IdError> {
                let rest = s.strip_prefix($prefix).ok_or(IdError { kind: $kind })?;
                if rest.is_empty() || s.len() > 64 || !id_chars_ok(rest) {
                    return Err(IdError { kind: $kind });
                }
                Ok(Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// A grant (`grt_`).
    GrantId, "grt_", "grant"
);
prefixed_id!(
    /// An entitlement (`ent_`).
    EntitlementId, "ent_", "entitlement"
);

prefixed_id!(
    /// An invoice for a grant purchase (`inv_`).
    InvoiceId, "inv_", "invoice"
);
impl InvoiceId {
    /// The invoice of a purchase, the same for every retry of it: derived from the tenant, the
    /// entitlement and the purchase's idempotency key (SHA-256, shown as a ULID's 26 characters),
    /// so that what a payment provider is asked for on a retry is byte for byte the same.
    pub fn for_purchase(tenant: &str, entitlement: &str, idempotency_key: &str) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(tenant)
            .chain_update([0])
            .chain_update(entitlement)
            .chain_update([0])
            .chain_update(idempotency_key)
            .finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self(format!("{}{}", Self::PREFIX, ulid::Ulid::from_bytes(bytes)))
    }
}

prefixed_id!(
    /// A payment session: one checkout attempt for an invoice (`ps_`).
    SessionId, "ps_", "payment session"
);
prefixed_id!(
    /// An event the service publishes (`evt_`).
    EventId, "evt_", "event"
);

prefixed_id!(
    /// A tenant's webhook application (`app_`): what its endpoints belong to.
    ApplicationId, "app_", "webhook application"
);
prefixed_id!(
    /// A webhook endpoint (`ep_`).
    EndpointId, "ep_", "webhook endpoint"
);

prefixed_id!(
    /// A webhook message (`msg_`): one event as it is sent to every endpoint that takes it; its
    /// `webhook-id` header.
    MessageId, "msg_", "webhook message"
);
prefixed_id!(
    /// One delivery attempt of a message to an endpoint (`atmpt_`).
    AttemptId, "atmpt_", "message attempt"
);

prefixed_id!(
    /// A capacity grant (`cap_`), the `grant_fid` of `/v2/grants`.
    CapacityGrantId, "cap_", "capacity grant"
);

/// A tenant: the company that owns API keys, entitlements and grants. Chosen by the operator
/// (`grants-admin`), so a slug rather than a generated id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.is_empty() || s.len() > 64 || !id_chars_ok(s) {
            return Err(IdError { kind: "tenant" });
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_sort_by_time() {
        let a = GrantId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = GrantId::generate();
        assert!(a < b);
        assert_eq!(GrantId::parse(a.as_str()).unwrap(), a);
    }

    #[test]
    fn rejects_wrong_prefix_and_characters() {
        assert!(GrantId::parse("ent_01ABC").is_err());
        assert!(GrantId::parse("grt_").is_err());
        assert!(GrantId::parse("grt_a/b").is_err());
        assert!(EntitlementId::parse(&format!("ent_{}", "x".repeat(80))).is_err());
        assert!(TenantId::parse("acme-co").is_ok());
        assert!(TenantId::parse("acme co").is_err());
    }
}
