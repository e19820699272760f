//! Local development tools: `grants-admin` (operator commands: table, keys, tenants, secrets) and
//! `grants-bridge` (what AWS does around the functions when they run under `cargo lambda watch`:
//! SQS event source mappings and schedules).
pub mod admin;
pub mod http_client;
pub mod local;
