//! The text of an event as both sinks show it: the message, then the other fields as
//! `key=value` (string values quoted), escaped by [`super::escape`].

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;

/// The escaped text of `fields` (an event's or a span's): one line, whatever they hold.
pub fn render(fields: impl RecordFields) -> String {
    let mut text = EventText::default();
    fields.record(&mut text);
    super::escape(text.0.trim_start()).into_owned()
}

/// Collects fields, the message first whatever its place among them.
#[derive(Default)]
struct EventText(String);

impl EventText {
    fn message(&mut self, message: std::fmt::Arguments<'_>) {
        let fields = std::mem::take(&mut self.0);
        let _ = self.0.write_fmt(message);
        self.0.push_str(&fields);
    }
}

/// Fields the log bridge adds to every record from the `log` crate (`log.target`,
/// `log.file`, ...): where the line was written, not what it says.
fn is_log_metadata(field: &Field) -> bool {
    field.name().starts_with("log.")
}

impl Visit for EventText {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message(format_args!("{value:?}"));
        } else if !is_log_metadata(field) {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    /// Strings are quoted, `"` and `\` inside escaped, so a value cannot pass for the
    /// end of its field; control characters are left to [`super::escape`], like the
    /// message's, so each is written the same way wherever it appears.
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message(format_args!("{value}"));
        } else if !is_log_metadata(field) {
            let _ = write!(self.0, " {}=\"", field.name());
            for c in value.chars() {
                if matches!(c, '"' | '\\') {
                    self.0.push('\\');
                }
                self.0.push(c);
            }
            self.0.push('"');
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

    use super::*;

    /// Renders every event it sees.
    struct Capture(Arc<Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber> Layer<S> for Capture {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            self.0.lock().unwrap().push(render(event));
        }
    }

    fn rendered(emit: impl FnOnce()) -> String {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Capture(lines.clone()));
        tracing::subscriber::with_default(subscriber, emit);
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 1, "{lines:?}");
        lines[0].clone()
    }

    #[test]
    fn the_message_comes_first_then_fields() {
        let peer: std::net::SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let text = rendered(|| tracing::info!(module = "echo", %peer, count = 3, "hello"));
        assert_eq!(text, "hello module=\"echo\" peer=127.0.0.1:4000 count=3");
    }

    #[test]
    fn control_characters_anywhere_are_escaped_the_same_way() {
        let message = "one\ntwo\x1b[2J";
        let text = rendered(|| tracing::warn!(module = "a\nb\"c", "{message}"));
        assert_eq!(text, "one\\x0atwo\\x1b[2J module=\"a\\x0ab\\\"c\"");
    }

    #[test]
    fn fields_without_a_message_have_no_leading_space() {
        assert_eq!(rendered(|| tracing::info!(n = 1)), "n=1");
    }
}
