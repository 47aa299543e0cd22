//! The status report's figures for Prometheus: OpenMetrics or Prometheus text at
//! `GET /metrics`, on the address and port of the top-level `metrics { ... }` section (no
//! endpoint without one).
//!
//! Served by the host, not by a module: a module would need a new privileged part of the
//! contract to read every other module's figures, and the endpoint must keep answering
//! while modules are swapped, broken or removed. Its listener is bound at startup before
//! the privilege drop (any port), like the modules' listeners, and it is served on the host
//! runtime, apart from every module's pool.
//!
//! - `family`: metric families and their two text encodings.
//! - `figures`: the families, read from what the report reads.
//! - `http`: the HTTP/1.1 responder for that one path.

pub mod family;
pub mod figures;
pub mod http;

use std::net::IpAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use serverkit_c11n::{Config, OptionSpec, OptionType, SectionSpec, Value};

use crate::capabilities::listen::BoundListener;
use crate::capabilities::listen::bind::bind;
use crate::options::vocabulary::METRICS_SECTION;
use crate::report::Reporter;

/// Listen backlog of the endpoint: a few scrapers at most.
const BACKLOG: u32 = 16;

/// The `metrics` section of the core vocabulary.
pub fn section_spec() -> SectionSpec {
    SectionSpec::new(
        METRICS_SECTION,
        "Serves the status report's figures for Prometheus at GET /metrics on this address and port.",
    )
    .option(
        OptionSpec::new(
            "address",
            OptionType::Address,
            "Address of the metrics endpoint; loopback unless set, since the figures are for the operator.",
        )
        .with_default(Value::Str("127.0.0.1".into())),
    )
    .option(OptionSpec::new("port", OptionType::Port, "Port of the metrics endpoint.").required())
}

/// Binds the endpoint the `metrics` section asks for, while still root (step 7); `None`
/// without a section.
pub fn bind_endpoint(config: &Config) -> Result<Option<BoundListener>> {
    let Some(section) = config.section(METRICS_SECTION) else {
        return Ok(None);
    };
    // c11n checked both: a port is required, and the address has a default.
    let port = section.int("port").unwrap_or_default() as u16;
    let address: IpAddr = section
        .str("address")
        .unwrap_or("127.0.0.1")
        .parse()
        .context("the metrics address was checked as an IP address")?;
    let listener = bind(address, port, BACKLOG).context("failed to open the metrics endpoint")?;
    Ok(Some(listener))
}

/// Starts answering scrapes on `runtime` (the host runtime) until it stops.
pub fn serve(
    listener: BoundListener,
    reporter: Arc<Reporter>,
    runtime: &tokio::runtime::Handle,
) -> Result<()> {
    let _entered = runtime.enter();
    let socket = tokio::net::TcpListener::from_std(listener.socket).with_context(|| {
        format!(
            "failed to register the metrics endpoint {} with the host runtime",
            listener.local_addr
        )
    })?;
    runtime.spawn(http::serve(socket, reporter));
    tracing::info!(address = %listener.local_addr, "metrics at GET /metrics");
    Ok(())
}
