//! The metrics endpoint: Prometheus text that `promtool check metrics` passes, OpenMetrics
//! that the reference Python parser reads, figures that follow the sessions, hot swap
//! outcomes, refusals of anything but `GET /metrics`, and a real Prometheus server
//! scraping it every second and answering a query with a live value.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::harness::{Server, TestPersonality, echo_c11n, free_port};
use crate::http::{Raw, Response, fetch, python};

/// `Accept` as Prometheus 2 sends it.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// The exposition at `addr`, in the format `accept` asks for (plain text without one).
pub fn scrape(addr: SocketAddr, accept: Option<&str>) -> Response {
    let extra = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    let response = fetch(addr, "/metrics", &extra);
    assert_eq!(response.status, 200, "{response:?}");
    response
}

/// The value of the sample written exactly `sample` (name and labels) in `text`.
pub fn sample(text: &str, sample: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
        .map(|value| value.parse().unwrap())
}

/// Scrapes `addr` until `sample` reads `want`; panics with the last exposition after 20 s.
pub fn wait_for_sample(addr: SocketAddr, name: &str, want: u64) -> String {
    let start = Instant::now();
    loop {
        let body = String::from_utf8(scrape(addr, None).body).unwrap();
        if sample(&body, name) == Some(want) {
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{name} never read {want}:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An echo personality with a metrics endpoint on `metrics_port`.
fn echo_with_metrics(port: u16, metrics_port: u16) -> String {
    format!(
        "{}metrics {{\n  port = {metrics_port}\n}}\n",
        echo_c11n(port, "greeting = hi")
    )
}

/// One echo session that says `line` (`!trap` makes the module trap) and ends.
fn echo_session(server: &Server, line: &str) {
    let mut client = server.client();
    assert_eq!(client.line().as_deref(), Some("hi"));
    client.send(line);
    if line != "!trap" {
        assert_eq!(client.line().as_deref(), Some(line));
    }
}

#[test]
fn the_exposition_passes_promtool_and_the_openmetrics_parser_and_follows_the_sessions() {
    let (port, metrics_port) = (free_port(), free_port());
    let personality = TestPersonality::new(&echo_with_metrics(port, metrics_port));
    let server = Server::start(personality, port);
    let metrics = SocketAddr::from(([127, 0, 0, 1], metrics_port));
    for line in ["one", "two", "!trap"] {
        echo_session(&server, line);
    }
    wait_for_sample(
        metrics,
        "serverkit_sessions_ended_total{module=\"echo\",outcome=\"trap\"}",
        1,
    );
    // Counters only grow: the trap is still counted in this later scrape.
    let text = wait_for_sample(
        metrics,
        "serverkit_sessions_ended_total{module=\"echo\",outcome=\"ok\"}",
        2,
    );
    for (name, want) in [
        ("serverkit_sessions_started_total{module=\"echo\"}", 3),
        ("serverkit_sessions_live{module=\"echo\"}", 0),
        ("serverkit_module_generation{module=\"echo\"}", 1),
        ("serverkit_worker_threads_min{module=\"echo\"}", 1),
        ("serverkit_heap_units_in_use{heap=\"echo_sessions\"}", 0),
        // The accept loop holds the next client's descriptor before it accepts.
        ("serverkit_descriptors_in_use{module=\"echo\"}", 1),
        (
            "serverkit_module_info{module=\"echo\",version=\"1.0.0\"}",
            1,
        ),
        (
            "serverkit_sessions_ended_total{module=\"echo\",outcome=\"trap\"}",
            1,
        ),
        ("serverkit_metrics_scrapes_total{format=\"openmetrics\"}", 0),
    ] {
        assert_eq!(sample(&text, name), Some(want), "{name} in:\n{text}");
    }
    assert!(text.contains("\n# TYPE serverkit_sessions_started_total counter\n"));
    assert!(!text.contains("# EOF"));

    // promtool reads Prometheus text only, and lints names, units, help and _total.
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool (Debian package prometheus, tools/test-packages.txt)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&[out.stdout, out.stderr].concat()).into_owned();
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}"
    );

    // OpenMetrics when asked as Prometheus asks, read by the reference parser.
    let om = scrape(metrics, Some(PROMETHEUS_ACCEPT));
    assert_eq!(
        om.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let om = String::from_utf8(om.body).unwrap();
    assert!(om.ends_with("\n# EOF\n"), "{om}");
    assert!(om.contains("\n# TYPE serverkit_sessions_started counter\nserverkit_sessions_started_total{module=\"echo\"} 3\n"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("om.txt"), &om).unwrap();
    let parsed = Command::new(python())
        .arg("-c")
        .arg(
            "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as read\n\
             families = {f.name: f for f in read(open(sys.argv[1]).read())}\n\
             s = families['serverkit_sessions_started'].samples[0]\n\
             print(len(families), families['serverkit_module'].type, s.name, s.labels['module'], int(s.value))",
        )
        .arg(dir.path().join("om.txt"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&parsed.stdout);
    assert!(
        parsed.status.success(),
        "the OpenMetrics parser refused it: {}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let words: Vec<&str> = said.split_whitespace().collect();
    assert_eq!(
        words[1..],
        ["info", "serverkit_sessions_started_total", "echo", "3"]
    );
    assert!(words[0].parse::<usize>().unwrap() > 25, "{said}");
}

#[test]
fn anything_but_get_metrics_is_refused_and_a_bad_client_costs_only_itself() {
    let (port, metrics_port) = (free_port(), free_port());
    let personality = TestPersonality::new(&echo_with_metrics(port, metrics_port));
    let _server = Server::start(personality, port);
    let metrics = SocketAddr::from(([127, 0, 0, 1], metrics_port));
    assert_eq!(fetch(metrics, "/", "").status, 404);
    assert_eq!(fetch(metrics, "/metrics/x", "").status, 404);
    let mut post = Raw::connect(metrics);
    post.send(b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    let post = post.response(false).unwrap();
    assert_eq!((post.status, post.header("allow")), (405, Some("GET")));
    let mut garbage = Raw::connect(metrics);
    garbage.send(b"\x16\x03\x01\x00\x05hello\r\n\r\n");
    assert_eq!(garbage.response(false).unwrap().status, 400);
    let mut endless = Raw::connect(metrics);
    endless.send(b"GET /metrics HTTP/1.1\r\n");
    for _ in 0..200 {
        endless.send(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
    }
    assert_eq!(endless.response(false).unwrap().status, 431);
    // A client that sends half a head and waits holds one slot; scrapes go on beside it.
    let mut silent = TcpStream::connect(metrics).unwrap();
    silent.write_all(b"GET /met").unwrap();
    for _ in 0..5 {
        scrape(metrics, None);
    }
    drop(silent);
    // Silent clients on every slot are closed after the head timeout (2 s), not the
    // exchange's 10 s: a scrape waits in the backlog that long at most.
    let silent: Vec<TcpStream> = (0..16)
        .map(|_| {
            let mut s = TcpStream::connect(metrics).unwrap();
            s.write_all(b"GET /met").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    scrape(metrics, None);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(6),
        "a scrape waited {waited:?} behind 16 silent clients"
    );
    drop(silent);
}

#[test]
fn swap_outcomes_and_generations_are_exposed_and_the_endpoint_needs_a_restart_to_move() {
    let (port, metrics_port) = (free_port(), free_port());
    let personality = TestPersonality::new(&echo_with_metrics(port, metrics_port));
    let c11n = personality.path().join("c11n");
    let mut server = Server::start(personality, port);
    let metrics = SocketAddr::from(([127, 0, 0, 1], metrics_port));
    let body = String::from_utf8(scrape(metrics, None).body).unwrap();
    assert_eq!(
        sample(&body, "serverkit_swap_last_succeeded{module=\"echo\"}"),
        None
    );

    // A changed greeting is a new configuration: generation 2.
    let changed = std::fs::read_to_string(&c11n)
        .unwrap()
        .replace("greeting = hi", "greeting = hello");
    std::fs::write(&c11n, &changed).unwrap();
    server.signal(Signal::SIGHUP);
    let body = wait_for_sample(metrics, "serverkit_swap_last_succeeded{module=\"echo\"}", 1);
    assert_eq!(
        sample(&body, "serverkit_module_generation{module=\"echo\"}"),
        Some(2)
    );
    let at = sample(
        &body,
        "serverkit_swap_last_timestamp_seconds{module=\"echo\"}",
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(at) < 60, "{at} against {now}");

    // Moving the endpoint is refused; the old one keeps answering.
    let moved = changed.replace(
        &format!("port = {metrics_port}"),
        &format!("port = {}", free_port()),
    );
    std::fs::write(&c11n, moved).unwrap();
    server.signal(Signal::SIGHUP);
    server.wait_for_log(
        "the metrics section changed: restart needed",
        Duration::from_secs(20),
    );
    let body = wait_for_sample(metrics, "serverkit_swap_last_succeeded{module=\"echo\"}", 0);
    assert_eq!(
        sample(&body, "serverkit_module_generation{module=\"echo\"}"),
        Some(2)
    );
}

/// A Prometheus server scraping `target` every second, with its data in a temporary
/// directory; killed on drop.
struct Prometheus {
    child: Child,
    api: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: serverkit\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let api = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={api}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run prometheus (Debian package prometheus, tools/test-packages.txt)");
        Prometheus {
            child,
            api,
            _dir: dir,
        }
    }

    /// The JSON answer to an instant query, once the API answers.
    fn query(&self, promql: &str) -> Option<String> {
        TcpStream::connect(self.api).ok()?;
        let encoded: String = promql
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let response = fetch(self.api, &format!("/api/v1/query?query={encoded}"), "");
        (response.status == 200).then(|| String::from_utf8(response.body).unwrap())
    }

    /// Queries until the single result's value is `want`; panics after `limit`.
    fn wait_for(&self, promql: &str, want: &str, limit: Duration) -> String {
        let start = Instant::now();
        let mut last = None;
        while start.elapsed() < limit {
            if let Some(answer) = self.query(promql) {
                if answer.contains(&format!(",\"{want}\"]")) {
                    return answer;
                }
                last = Some(answer);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("{promql} did not reach {want} within {limit:?}; last answer: {last:?}");
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_real_prometheus_scrapes_the_endpoint_and_answers_with_a_live_value() {
    let (port, metrics_port) = (free_port(), free_port());
    let personality = TestPersonality::new(&echo_with_metrics(port, metrics_port));
    let server = Server::start(personality, port);
    let metrics = SocketAddr::from(([127, 0, 0, 1], metrics_port));
    let prometheus = Prometheus::start(metrics);
    let up = prometheus.wait_for("up{job=\"serverkit\"}", "1", Duration::from_secs(60));
    assert!(up.contains("\"status\":\"success\""), "{up}");
    let started = "serverkit_sessions_started_total{module=\"echo\"}";
    prometheus.wait_for(started, "0", Duration::from_secs(30));
    for line in ["a", "b", "c", "d"] {
        echo_session(&server, line);
    }
    let answer = prometheus.wait_for(started, "4", Duration::from_secs(30));
    assert!(answer.contains("\"module\":\"echo\""), "{answer}");
    // Prometheus asks for OpenMetrics (it prefers it) and reads its info family.
    prometheus.wait_for(
        "serverkit_module_info{module=\"echo\",version=\"1.0.0\"}",
        "1",
        Duration::from_secs(30),
    );
    let text = String::from_utf8(scrape(metrics, None).body).unwrap();
    let openmetrics = "serverkit_metrics_scrapes_total{format=\"openmetrics\"}";
    // One scrape before the sessions, one after them at least.
    assert!(sample(&text, openmetrics).unwrap() >= 2, "{text}");
}
