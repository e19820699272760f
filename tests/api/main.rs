//! Integration tests: one binary, every test on its own tenant, against the real DynamoDB Local that
//! `make test` starts.
#![allow(clippy::unwrap_used)]
mod auth;
mod bad_input;
mod capacity;
mod concurrency;
mod contract;
mod entitlements;
mod events;
mod faults;
mod flexprice;
mod fuzz;
mod grants;
mod helpers;
mod ledger;
mod meters;
mod metronome;
mod openapi;
mod portal;
mod purchases;
mod round_trips;
mod routes;
mod security;
mod stripe;
mod svix;
mod webhook_sender;
mod webhooks;
mod wiring;
