//! The stderr sink: tracing-subscriber's line format (time, level, message, fields), with
//! the fields written by [`EscapedFields`], so a line ends only where the event does and
//! the only escape sequences on a terminal are the formatter's own colours.

use std::fmt;

use tracing::Subscriber;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// Writes an event's or a span's fields as [`super::event_text::render`] does: the same
/// text as syslog, control characters escaped.
pub struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        writer.write_str(&super::event_text::render(fields))
    }
}

/// One event per line to `make_writer`; colours (level, dimmed time) only with `ansi`,
/// which the caller sets when stderr is a terminal.
pub fn layer<S, W>(make_writer: W, ansi: bool) -> impl tracing_subscriber::Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .fmt_fields(EscapedFields)
        .with_writer(make_writer)
        .with_ansi(ansi)
        .with_target(false)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// What the layer wrote, as one string.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn written(ansi: bool, emit: impl FnOnce()) -> String {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::registry().with(layer(move || sink.clone(), ansi));
        tracing::subscriber::with_default(subscriber, emit);
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    const FORGERY: &str = "x\n2026-01-01T00:00:00.000000Z  INFO serving\r\x1b[2J\u{9b}31m\x7f";

    #[test]
    fn an_event_is_one_line_whatever_its_message_and_fields_hold() {
        let out = written(false, || {
            tracing::warn!(module = "m\nINFO fake", peer = %"p\r", "{FORGERY}");
        });
        assert_eq!(out.matches('\n').count(), 1, "{out:?}");
        assert!(out.ends_with('\n'), "{out:?}");
        assert!(
            !out.trim_end_matches('\n').chars().any(char::is_control),
            "{out:?}"
        );
        assert!(
            out.contains(
                "WARN x\\x0a2026-01-01T00:00:00.000000Z  INFO serving\\x0d\\x1b[2J\\x9b31m\\x7f module=\"m\\x0aINFO fake\" peer=p\\x0d"
            ),
            "{out:?}"
        );
    }

    #[test]
    fn on_a_terminal_only_the_formatters_own_colours_remain() {
        let out = written(true, || tracing::warn!("\x1b[31mred"));
        assert!(
            out.contains("\\x1b[31mred"),
            "the event's ESC is escaped: {out:?}"
        );
        // The level is coloured, so ESC appears, but never the event's own sequence.
        assert!(out.contains('\x1b'), "{out:?}");
        assert!(!out.contains("\x1b[31mred"), "{out:?}");
        assert_eq!(out.matches('\n').count(), 1, "{out:?}");
    }

    #[test]
    fn without_a_terminal_there_is_no_escape_sequence_at_all() {
        let out = written(false, || tracing::error!("\x1b[31mred"));
        assert!(!out.contains('\x1b'), "{out:?}");
    }
}
