//! Records of the `log` crate (rustls writes through it) become tracing events, as
//! tracing-log's `LogTracer` makes them, except that rustls's warnings are lowered to
//! debug.
//!
//! Why: the host uses rustls only as a server, and every `warn!` in rustls 0.23 reports
//! something a client sent (an IP address or an invalid name as SNI, a duplicate SNI, a
//! warning alert, a message out of order, early data with stateless resumption; the
//! key-log warnings are for a feature the host does not use). Any client could write one
//! WARN line per handshake (501 in one test run for IP addresses as SNI, which `openssl
//! s_client` sends); the host already counts failed handshakes per module (the report's
//! TLS line). At debug they stay available (`RUST_LOG=debug`).

use log::{Level, Log, Metadata, Record};
use tracing_log::LogTracer;

/// The crate whose warnings are about peers.
const PEER_WARNING_CRATE: &str = "rustls";

/// Installs the bridge as the `log` crate's logger. Call once, after the tracing
/// subscriber; fails if a logger is already set.
pub fn install() -> Result<(), log::SetLoggerError> {
    log::set_logger(Box::leak(Box::new(Bridge(LogTracer::new()))))?;
    // The tracing subscriber filters; let every record reach it.
    log::set_max_level(log::LevelFilter::Trace);
    Ok(())
}

/// `LogTracer` with rustls's warnings lowered.
struct Bridge(LogTracer);

/// The level a record is logged at: debug for a rustls warning, else its own.
fn level_of(metadata: &Metadata<'_>) -> Level {
    let target = metadata.target();
    let from_rustls = target == PEER_WARNING_CRATE
        || target
            .strip_prefix(PEER_WARNING_CRATE)
            .is_some_and(|rest| rest.starts_with("::"));
    if from_rustls && metadata.level() == Level::Warn {
        Level::Debug
    } else {
        metadata.level()
    }
}

impl Log for Bridge {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        let lowered = Metadata::builder()
            .level(level_of(metadata))
            .target(metadata.target())
            .build();
        self.0.enabled(&lowered)
    }

    fn log(&self, record: &Record<'_>) {
        let level = level_of(record.metadata());
        if level == record.level() {
            return self.0.log(record);
        }
        self.0.log(
            &Record::builder()
                .args(*record.args())
                .level(level)
                .target(record.target())
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .build(),
        );
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(target: &str, level: Level) -> Level {
        level_of(&Metadata::builder().target(target).level(level).build())
    }

    #[test]
    fn rustls_warnings_become_debug() {
        assert_eq!(level("rustls::msgs::handshake", Level::Warn), Level::Debug);
        assert_eq!(level("rustls", Level::Warn), Level::Debug);
    }

    #[test]
    fn other_records_keep_their_level() {
        assert_eq!(level("rustls::conn", Level::Error), Level::Error);
        assert_eq!(level("rustls_pemfile", Level::Warn), Level::Warn);
        assert_eq!(level("mysql_async::conn", Level::Warn), Level::Warn);
        assert_eq!(level("rustls::server", Level::Info), Level::Info);
    }
}
