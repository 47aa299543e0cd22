//! Metric families and their two text encodings: OpenMetrics 1.0 (`# EOF` at the end,
//! counters typed by their family name) and Prometheus' text format 0.0.4 (counters typed
//! by their `_total` name), chosen by the scraper's `Accept` header. Written here rather
//! than with `prometheus-client`, whose encoder writes OpenMetrics only: serving a
//! scraper that does not ask for it (`curl`, `promtool`, older Prometheus) needs 0.0.4
//! too, and the families are built afresh from live counters at each scrape anyway.

use std::fmt::Write as _;

/// How a family's samples behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (until the process restarts); its samples are named `<family>_total`.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Always 1: its labels carry the facts; its samples are named `<family>_info`.
    Info,
}

/// One labelled value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Label names and values.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: u64,
}

/// A family: one name, help and kind, and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The family name: `serverkit_` and snake case, without `_total` or `_info`.
    pub name: &'static str,
    /// What it measures, one line.
    pub help: &'static str,
    /// Its kind.
    pub kind: Kind,
    /// Its samples, each with distinct labels.
    pub samples: Vec<Sample>,
}

impl Family {
    /// An empty family.
    pub fn new(name: &'static str, kind: Kind, help: &'static str) -> Self {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    /// Adds a sample.
    pub fn add(&mut self, labels: Vec<(&'static str, String)>, value: impl TryInto<u64>) {
        // Figures are counts and sizes; one past u64 cannot happen on this hardware.
        let value = value.try_into().unwrap_or(u64::MAX);
        self.samples.push(Sample { labels, value });
    }

    /// The name its samples carry.
    fn sample_name(&self) -> String {
        match self.kind {
            Kind::Counter => format!("{}_total", self.name),
            Kind::Info => format!("{}_info", self.name),
            Kind::Gauge => self.name.to_string(),
        }
    }
}

/// The exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0.0.
    OpenMetrics,
    /// Prometheus text format 0.0.4.
    Text,
}

impl Format {
    /// Its `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }

    /// What an `Accept` header asks for: OpenMetrics when it names it with a weight at
    /// least that of plain text (Prometheus names both, OpenMetrics first), else text.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let (mut openmetrics, mut text) = (0.0f32, 0.0f32);
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()))
                .next()
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => openmetrics = openmetrics.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics >= text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// The families as text; families without samples are left out.
pub fn encode(families: &[Family], format: Format) -> String {
    let mut out = String::new();
    for family in families.iter().filter(|f| !f.samples.is_empty()) {
        let sample_name = family.sample_name();
        let (described, kind) = match (format, family.kind) {
            (Format::OpenMetrics, Kind::Counter) => (family.name.to_string(), "counter"),
            (Format::OpenMetrics, Kind::Info) => (family.name.to_string(), "info"),
            (Format::Text, Kind::Counter) => (sample_name.clone(), "counter"),
            (_, Kind::Gauge | Kind::Info) => (sample_name.clone(), "gauge"),
        };
        let _ = writeln!(out, "# HELP {described} {}", escape_help(family.help));
        let _ = writeln!(out, "# TYPE {described} {kind}");
        for sample in &family.samples {
            out.push_str(&sample_name);
            if !sample.labels.is_empty() {
                let labels: Vec<String> = sample
                    .labels
                    .iter()
                    .map(|(name, value)| format!("{name}=\"{}\"", escape_label(value)))
                    .collect();
                let _ = write!(out, "{{{}}}", labels.join(","));
            }
            let _ = writeln!(out, " {}", sample.value);
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

/// A label value as both formats escape it.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A help text as both formats escape it (quotes stay).
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn families() -> Vec<Family> {
        let mut started = Family::new(
            "serverkit_sessions_started",
            Kind::Counter,
            "Sessions started",
        );
        started.add(vec![("module", "echo".into())], 5u64);
        let mut live = Family::new("serverkit_sessions_live", Kind::Gauge, "Live sessions");
        live.add(vec![("module", "a\"b\\c\nd".into())], 2usize);
        let mut info = Family::new("serverkit_module", Kind::Info, "Module versions");
        info.add(
            vec![("module", "echo".into()), ("version", "1.0.0".into())],
            1u64,
        );
        let empty = Family::new("serverkit_nothing", Kind::Gauge, "Never shown");
        vec![started, live, info, empty]
    }

    #[test]
    fn text_names_counters_by_their_samples() {
        assert_eq!(
            encode(&families(), Format::Text),
            "# HELP serverkit_sessions_started_total Sessions started\n\
             # TYPE serverkit_sessions_started_total counter\n\
             serverkit_sessions_started_total{module=\"echo\"} 5\n\
             # HELP serverkit_sessions_live Live sessions\n\
             # TYPE serverkit_sessions_live gauge\n\
             serverkit_sessions_live{module=\"a\\\"b\\\\c\\nd\"} 2\n\
             # HELP serverkit_module_info Module versions\n\
             # TYPE serverkit_module_info gauge\n\
             serverkit_module_info{module=\"echo\",version=\"1.0.0\"} 1\n"
        );
    }

    #[test]
    fn openmetrics_names_families_and_ends_with_eof() {
        let text = encode(&families(), Format::OpenMetrics);
        assert!(text.starts_with(
            "# HELP serverkit_sessions_started Sessions started\n\
             # TYPE serverkit_sessions_started counter\n\
             serverkit_sessions_started_total{module=\"echo\"} 5\n"
        ));
        assert!(text.contains(
            "# TYPE serverkit_module info\nserverkit_module_info{module=\"echo\",version=\"1.0.0\"} 1\n"
        ));
        assert!(text.ends_with("\n# EOF\n"), "{text}");
        assert!(!text.contains("serverkit_nothing"));
    }

    #[test]
    fn the_accept_header_decides_the_format() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(
            Format::negotiate(Some("text/plain, application/openmetrics-text;q=0.5")),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some("Application/OpenMetrics-Text; q=0")),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text; version=1.0.0")),
            Format::OpenMetrics
        );
    }
}
