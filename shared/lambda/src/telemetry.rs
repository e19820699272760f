//! Structured JSON logs through `tracing`. `RUST_LOG` sets the filter (default `info`), in
//! `tracing_subscriber`'s `Targets` syntax: a level (`debug`) and/or `target=level` pairs
//! (`info,grants_domain=debug`); a value that does not parse means `info`.
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the JSON subscriber once; later calls are no-ops.
pub fn init() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::io::stderr);
    let _ = tracing_subscriber::registry().with(json).with(filter).try_init();
}
