//! `serverkit:module/stats`: the status report for a module that shows it (vtstats).

use crate::contract::bindings::stats::Host;
use crate::guest_host::state::InstanceState;
use crate::report;

impl Host for InstanceState {
    async fn report(&mut self) -> wasmtime::Result<String> {
        Ok(match report::reporter() {
            Some(reporter) => reporter.render().await,
            None => "the status report is available once serving has started\n".into(),
        })
    }
}
