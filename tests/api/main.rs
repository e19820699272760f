//! Integration tests: one binary, every test on its own tenant, against the real DynamoDB Local that
//! `make test` starts.
#![allow(clippy::unwrap_used)]
mod auth;
mod capacity;
mod bad_input;
mod concurrency;
mod entitlements;
mod events;
mod faults;
mod fuzz;
mod flexprice;
mod grants;
mod helpers;
mod ledger;
mod metronome;
mod purchases;
mod round_trips;
mod security;
mod routes;
