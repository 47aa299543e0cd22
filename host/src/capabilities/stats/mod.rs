//! `serverkit:module/stats`: the status report for a module that shows it (vtstats). The
//! report is rendered above this layer; it reaches the module through [`ReportSource`],
//! handed to the module's holdings when serving starts, never through a global.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use wasmtime::component::HasData;

use crate::contract::bindings::stats::Host;
use crate::text::truncate;

/// Longest report handed to a module: what it defends is the module's memory (and the
/// copy into it) should the report ever grow large.
pub const MAX_REPORT_BYTES: usize = 1 << 20;

/// Something that renders the status report.
pub trait ReportSource: Send + Sync {
    /// The report now.
    fn render(&self) -> Pin<Box<dyn Future<Output = String> + Send + '_>>;
}

/// What the stats interface reaches: the report, once serving has started.
pub struct StatsView<'a> {
    /// The report's source.
    pub report: Option<&'a Arc<dyn ReportSource>>,
}

/// The stats interface, for `add_to_linker`.
pub struct Stats;

impl HasData for Stats {
    type Data<'a> = StatsView<'a>;
}

impl Host for StatsView<'_> {
    async fn report(&mut self) -> wasmtime::Result<String> {
        Ok(match self.report {
            Some(source) => {
                let mut text = source.render().await;
                text.truncate(truncate(&text, MAX_REPORT_BYTES).len());
                text
            }
            None => "the status report is available once serving has started\n".into(),
        })
    }
}
