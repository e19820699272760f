//! The single-table layout: every key builder lives here, and nowhere else.
//!
//! | item          | PK                      | SK                    | GSI1 (tenant collections)    | GSI2 (by customer)        |
//! |---------------|-------------------------|-----------------------|------------------------------|---------------------------|
//! | API key       | `APIKEY#<sha256>`       | `APIKEY`              |                              |                           |
//! | entitlement   | `T#<t>#E#<ent>`         | `E`                   | `T#<t>#ENTS` / `<ent>`       | `T#<t>#C#<cust>` / `E#<ent>` |
//! | grant         | `T#<t>#E#<ent>`         | `G#<grt>`             | `T#<t>#GRANTS` / `<grt>`     | `T#<t>#C#<cust>` / `G#<grt>` |
//! | usage event   | `T#<t>#E#<ent>`         | `U#<sha256(event id)>` |                             |                           |
//! | pending hold  | `T#<t>#E#<ent>`         | `H#<sha256(event id)>` (a pending usage record's copy, while pending) | |       |
//! | log entry     | `T#<t>#E#<ent>`         | `L#<seq, 20 digits>`  |                              |                           |
//! | late entry    | `T#<t>#E#<ent>`         | `LATE#<occurred>#<seq>` (a log entry's copy, when late) |  |                    |
//! | checkpoint    | `T#<t>#E#<ent>`         | `K#<at>#<seq>`        |                              |                           |
//! | usage day     | `T#<t>#E#<ent>`         | `D#<yyyy-mm-dd>` (and `#<part>` past 150 grants) |                              |                           |
//! | application   | `T#<t>#E#<ent>`         | `A#<sha256(event id)>` (while an event over many grants is applied) | |      |
//! | queued usage  | `T#<t>#E#<ent>`         | `Q#<queued at>#<sha256(event id)>` (until a batch applies it) |  |            |
//! | claim         | `T#<t>#E#<ent>`         | `IDEM#<scope>#<sha256(key)>` |                       |                           |
//! | tenant        | `TENANT#<t>`            | `TENANT`              |                              |                           |
//! | credit type   | `TENANT#<t>`            | `CT#<id>` (+ `CTNAME#<sha256(lower name)>`) |          |                           |
//! | billable metric | `TENANT#<t>`          | `BM#<id>` (+ `BMTYPE#<sha256(event type)>`) |          |                           |
//! | webhook configuration | `TENANT#<t>`    | `WEBHOOKS`            |                              |                           |
//! | webhook endpoint | `TENANT#<t>`         | `WEP#<ep>`            |                              |                           |
//! | ingested event | `T#<t>#EV#<sha256(key:<idempotency key> or id:<id>)>` | `EV` | `T#<t>#EVENTS_NOT_METERED` / `<received>#<id>`, only when nothing metered it | |
//! | invoice       | `T#<t>#INV#<inv>`       | `INV`                 | `OPEN_INVOICES` / `<session expiry>#<t>#<inv>`, only while open | |
//! | capacity grant | `T#<t>#CAP#<fid>`      | `CAP`                 | `T#<t>#CAPS` / `<fid>`       |                           |
//! | credit plan   | `T#<t>#CGP#<id>`        | `CGP`                 | `T#<t>#CGPS` / `<id>`        | `ACTIVE_CREDIT_PLANS` / `<t>#<id>`, only while published |
//! | plan progress | `T#<t>#E#<ent>`         | `PLAN#<plan id>`      |                              |                           |
//! | pay session   | `PS#<ps>`               | `PS`                  |                              |                           |
//! | webhook message (outbox) | `T#<t>#MSG#<msg>` | `MSG` (`ttl`: 90 days) |                        |                           |
//! | message attempt | `T#<t>#ATT#<ep>`      | `<atmpt id>` (`ttl`: 90 days) |                      |                           |
//! | portal link   | `PORTAL#<sha256(token)>` | `PORTAL` (`ttl`: its expiry) |                       |                           |
//!
//! GSI5 (`PERIOD_ENDS` / `<current period end>#<t>#<ent>`) is a sparse index of active entitlements,
//! for the period-reset run.
//! GSI3 (`T#<t>#SUB#<subscription>`) and GSI4 (`T#<t>#PLAN#<plan>`) are sparse indexes of entitlements
//! for the subscription- and plan-scoped credit grants. An entitlement and its grants share one
//! partition, so one strongly consistent Query reads an entitlement with all its grants.
use sha2::{Digest, Sha256};

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI2: &str = "GSI2";

pub fn api_key_pk(hash: &str) -> String {
    format!("APIKEY#{hash}")
}
pub const API_KEY_SK: &str = "APIKEY";
/// GSI1 partition of a tenant's API keys (sort key: the key id).
pub fn tenant_keys(tenant: &str) -> String {
    format!("T#{tenant}#KEYS")
}

pub fn entitlement_pk(tenant: &str, entitlement: &str) -> String {
    format!("T#{tenant}#E#{entitlement}")
}
pub const ENTITLEMENT_SK: &str = "E";

pub fn grant_sk(grant: &str) -> String {
    format!("G#{grant}")
}
pub const GRANT_SK_PREFIX: &str = "G#";
/// Upper bound of the sort keys an entitlement partition's "entitlement + grants" read covers.
/// Ids use only ASCII alphanumerics and `_`, all below `~`.
pub const GRANT_SK_MAX: &str = "G#~";

/// Upper bound of the sort keys of the ledger as it is now: the entitlement, its grants and its
/// pending holds (`E` < `G#...` < `H#...`, and nothing else sorts between them).
pub const HOLD_SK_MAX: &str = "H#~";

/// A pending usage record's hold: a copy of the record while it is pending.
pub fn hold_sk(event_id: &str) -> String {
    format!("H#{}", hex::encode(Sha256::digest(event_id.as_bytes())))
}

/// A usage request queued for group commit, in the order queued.
pub fn queue_sk(queued_at_storage: &str, event_id: &str) -> String {
    format!(
        "Q#{queued_at_storage}#{}",
        hex::encode(Sha256::digest(event_id.as_bytes()))
    )
}
pub const QUEUE_SK_PREFIX: &str = "Q#";
/// The group-commit lease, on the entitlement's item.
pub const LEASE_OWNER: &str = "lease_owner";
pub const LEASE_UNTIL: &str = "lease_until";
/// The event whose application over several transactions is under way, on the entitlement's item.
pub const APPLYING: &str = "applying";
/// A usage event's application over several transactions: the allocated record and how many of
/// its steps are done, while it is under way.
pub fn application_sk(event_id: &str) -> String {
    format!("A#{}", hex::encode(Sha256::digest(event_id.as_bytes())))
}

/// The entitlement's log head, on its item.
pub const LOG_SEQ: &str = "log_seq";
pub const LOG_CHECKPOINT_SEQ: &str = "log_checkpoint_seq";
pub const LOG_CHECKPOINT_AT: &str = "log_checkpoint_at";
pub const LOG_OVERAGE: &str = "log_overage";
pub const LOG_LATE: &str = "log_late";
pub const LOG_LATEST: &str = "log_latest";

/// A log entry, by its sequence number (fixed width: string order is number order).
pub fn log_sk(seq: u64) -> String {
    format!("L#{seq:020}")
}
pub const LOG_SK_MAX: &str = "L#~";
/// A late log entry's copy, by when it occurred.
pub fn late_sk(occurred_storage: &str, seq: u64) -> String {
    format!("LATE#{occurred_storage}#{seq:020}")
}
pub const LATE_SK_PREFIX: &str = "LATE#";
/// A checkpoint, by its instant then sequence number (both grow together).
pub fn checkpoint_sk(at_storage: &str, seq: u64) -> String {
    format!("K#{at_storage}#{seq:020}")
}
pub const CHECKPOINT_SK_PREFIX: &str = "K#";
/// An entitlement's usage on one UTC day (`yyyy-mm-dd`).
pub fn day_sk(day_storage: &str) -> String {
    format!("D#{}", &day_storage[..day_storage.len().min(10)])
}
/// The `part`th item of a day whose sums take several (`D#<yyyy-mm-dd>#<part>`; part 0 is
/// [`day_sk`]).
pub fn day_part_sk(day_storage: &str, part: usize) -> String {
    match part {
        0 => day_sk(day_storage),
        p => format!("{}#{p}", day_sk(day_storage)),
    }
}
pub const DAY_SK_PREFIX: &str = "D#";

pub fn claim_sk(scope: &str, key: &str) -> String {
    format!("IDEM#{scope}#{}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// A usage event's record, keyed by its client event id.
pub fn usage_sk(event_id: &str) -> String {
    format!("U#{}", hex::encode(Sha256::digest(event_id.as_bytes())))
}

pub fn tenant_entitlements(tenant: &str) -> String {
    format!("T#{tenant}#ENTS")
}
pub fn tenant_grants(tenant: &str) -> String {
    format!("T#{tenant}#GRANTS")
}
pub fn customer_key(tenant: &str, customer: &str) -> String {
    format!("T#{tenant}#C#{customer}")
}
pub fn subscription_key(tenant: &str, subscription: &str) -> String {
    format!("T#{tenant}#SUB#{subscription}")
}
pub fn plan_key(tenant: &str, plan: &str) -> String {
    format!("T#{tenant}#PLAN#{plan}")
}

/// A tenant's credit type, in the tenant's partition; its name is held unique by a second item.
pub fn credit_type_sk(id: &str) -> String {
    format!("CT#{id}")
}
pub const CREDIT_TYPE_SK_PREFIX: &str = "CT#";
pub fn credit_type_name_sk(name: &str) -> String {
    format!("CTNAME#{}", hex::encode(Sha256::digest(name.to_lowercase().as_bytes())))
}

/// A tenant's billable metric, in the tenant's partition; its event type is held unique by a second item.
pub fn metric_sk(id: &str) -> String {
    format!("BM#{id}")
}
pub const METRIC_SK_PREFIX: &str = "BM#";
pub fn metric_type_sk(event_type: &str) -> String {
    format!("BMTYPE#{}", hex::encode(Sha256::digest(event_type.as_bytes())))
}

/// An ingested usage event, in a partition of its own, keyed by what deduplicates it.
pub fn ingested_event_pk(tenant: &str, dedup_key: &str) -> String {
    format!("T#{tenant}#EV#{}", hex::encode(Sha256::digest(dedup_key.as_bytes())))
}
pub const INGESTED_EVENT_SK: &str = "EV";
/// GSI1 partition of a tenant's ingested events that nothing metered (sorted by receipt).
pub fn events_not_metered(tenant: &str) -> String {
    format!("T#{tenant}#EVENTS_NOT_METERED")
}

pub fn capacity_pk(tenant: &str, fid: &str) -> String {
    format!("T#{tenant}#CAP#{fid}")
}
pub const CAPACITY_SK: &str = "CAP";
pub fn tenant_capacity(tenant: &str) -> String {
    format!("T#{tenant}#CAPS")
}

pub fn credit_plan_pk(tenant: &str, id: &str) -> String {
    format!("T#{tenant}#CGP#{id}")
}
pub const CREDIT_PLAN_SK: &str = "CGP";
pub fn tenant_credit_plans(tenant: &str) -> String {
    format!("T#{tenant}#CGPS")
}
/// GSI2 partition of every published credit plan of every tenant: what the scheduler walks.
pub const ACTIVE_CREDIT_PLANS: &str = "ACTIVE_CREDIT_PLANS";
/// A plan's progress on one entitlement, in the entitlement's partition.
pub fn plan_progress_sk(plan: &str) -> String {
    format!("PLAN#{plan}")
}

/// GSI5 partition of every active entitlement, sorted by current period end (the reset run's index).
pub const PERIOD_ENDS: &str = "PERIOD_ENDS";
pub const GSI5: &str = "GSI5";
pub fn period_end_sk(end_storage: &str, tenant: &str, entitlement: &str) -> String {
    format!("{end_storage}#{tenant}#{entitlement}")
}

pub fn tenant_pk(tenant: &str) -> String {
    format!("TENANT#{tenant}")
}
pub const TENANT_SK: &str = "TENANT";
/// A tenant's webhook configuration, in the tenant's partition.
pub const WEBHOOKS_SK: &str = "WEBHOOKS";
/// A tenant's webhook endpoint, in the tenant's partition.
pub fn endpoint_sk(id: &str) -> String {
    format!("WEP#{id}")
}
pub const ENDPOINT_SK_PREFIX: &str = "WEP#";

/// A webhook message (the outbox): its own partition, written in the transaction of the change
/// it reports; the table's stream carries it to the dispatcher.
pub fn message_pk(tenant: &str, message: &str) -> String {
    format!("T#{tenant}#MSG#{message}")
}
pub const MESSAGE_SK: &str = "MSG";
/// The `type` attribute of message items: the stream's filter selects on it.
pub const MESSAGE_TYPE: &str = "webhook_message";
/// The attempts to one endpoint, sorted by attempt id (time order).
pub fn attempts_pk(tenant: &str, endpoint: &str) -> String {
    format!("T#{tenant}#ATT#{endpoint}")
}
/// The table's time-to-live attribute (Unix seconds): messages and attempts are kept 90 days,
/// portal links until they expire.
pub const TTL: &str = "ttl";
pub const MESSAGE_RETENTION_SECONDS: i64 = 90 * 86_400;

/// A portal link, by the SHA-256 of its token.
pub fn portal_pk(token_hash: &str) -> String {
    format!("PORTAL#{token_hash}")
}
pub const PORTAL_SK: &str = "PORTAL";

pub fn invoice_pk(tenant: &str, invoice: &str) -> String {
    format!("T#{tenant}#INV#{invoice}")
}
pub const INVOICE_SK: &str = "INV";
/// GSI1 partition of every open invoice, sorted by session expiry (the expiry sweep's index).
pub const OPEN_INVOICES: &str = "OPEN_INVOICES";
pub fn open_invoice_sk(expires_storage: &str, tenant: &str, invoice: &str) -> String {
    format!("{expires_storage}#{tenant}#{invoice}")
}

pub fn session_pk(session: &str) -> String {
    format!("PS#{session}")
}
pub const SESSION_SK: &str = "PS";
