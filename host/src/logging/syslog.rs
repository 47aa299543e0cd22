//! The remote syslog bypass, as ServerKit's `bypass_libc_syslog`: every log event becomes
//! one syslog datagram (RFC 5424 by default, or RFC 3164) sent over UDP to
//! `libc_syslog_bypass_address`, with the identity as the app name.
//!
//! Logging never blocks serving: an event is formatted into a unit of the
//! `log_entry_heap` (at most [`QUEUE_UNITS`]) and queued; a sender thread, started after the
//! privilege drop, sends the queue. When the heap is full, or a send fails (no listener,
//! network down), the entry is dropped and counted. A module's entries may hold at most
//! [`QUEUE_UNITS_PER_OWNER`] of the queue, and all modules' [`QUEUE_UNITS_ALL_OWNERS`]
//! (`super::owner`).
//!
//! A collector that is down makes the kernel answer with an ICMP port unreachable, which
//! the connected socket reports on the *next* send as `ECONNREFUSED`, and that send does
//! not happen. So a refusal means two things: an earlier datagram was lost (it moves from
//! `sent` to `dropped`), and the datagram at hand is sent once more; otherwise the first
//! datagram after the collector comes back would be lost too. The kernel keeps one pending
//! error per socket, not one per datagram, so `dropped` is a lower bound while the
//! collector is down.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use arc_swap::ArcSwapOption;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, Layer};

use super::owner::{self, LogShare, OwnerLimits};
use crate::heaps::{Heap, HeapOptions, HeapRegistry, HeapSpec, Unit};

/// Most log entries waiting to be sent; beyond it new entries are dropped and counted.
pub const QUEUE_UNITS: usize = 1000;

/// Most entries of one owner (a module) waiting: a quarter of the queue.
pub const QUEUE_UNITS_PER_OWNER: usize = QUEUE_UNITS / 4;

/// Most entries of all owners waiting: the last quarter is the host's own.
pub const QUEUE_UNITS_ALL_OWNERS: usize = QUEUE_UNITS / 4 * 3;

/// Longest message sent, once escaped; what it defends is the datagram size (and the
/// collector).
const MAX_MESSAGE_BYTES: usize = 2048;

/// The RFC 5424 MSGID of the status report's lines, so a collector can tell them from
/// events (`-`, none, for events).
const REPORT_MSGID: &str = "report";

/// A datagram waiting for the sender, and whose share it holds.
type Entry = (Unit<String>, Option<Arc<LogShare>>);

/// The syslog port when the address names none.
const DEFAULT_PORT: u16 = 514;

/// The two syslog formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 5424: `<PRI>1 TIMESTAMP HOST APP PID - - MSG`.
    Rfc5424,
    /// RFC 3164 (BSD): `<PRI>Mmm dd hh:mm:ss HOST APP[PID]: MSG`.
    Rfc3164,
}

impl Format {
    /// Parses the `syslog_format` option.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "rfc5424" => Ok(Format::Rfc5424),
            "rfc3164" => Ok(Format::Rfc3164),
            other => bail!("`syslog_format` must be `rfc5424` or `rfc3164`, found `{other}`"),
        }
    }
}

/// A configured syslog destination with its queue.
pub struct Syslog {
    socket: UdpSocket,
    format: Format,
    app: String,
    hostname: String,
    queue: Arc<Heap<String>>,
    sender: Sender<Entry>,
    receiver: Mutex<Option<Receiver<Entry>>>,
    owners: OwnerLimits,
    sent: AtomicU64,
    dropped: AtomicU64,
}

impl Syslog {
    /// A destination `host[:port]` (default port 514); the queue heap is listed in `heaps`.
    pub fn new(
        address: &str,
        format: Format,
        app: &str,
        heaps: &HeapRegistry,
    ) -> Result<Arc<Self>> {
        let target = with_default_port(address);
        let socket =
            UdpSocket::bind(("0.0.0.0", 0)).context("failed to open a UDP socket for syslog")?;
        socket
            .connect(&target)
            .with_context(|| format!("failed to resolve the syslog address `{address}`"))?;
        let queue = Heap::new(HeapSpec {
            label: "log_entry_heap".into(),
            units_per_chunk: 10,
            max_units: QUEUE_UNITS,
            options: HeapOptions {
                grow_exponentially: true,
                shrink: true,
                unlimited: false,
            },
        });
        heaps.register(&queue);
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "-".into());
        let (sender, receiver) = channel();
        Ok(Arc::new(Syslog {
            socket,
            format,
            app: app.to_string(),
            hostname,
            queue,
            sender,
            receiver: Mutex::new(Some(receiver)),
            owners: OwnerLimits::new(QUEUE_UNITS_PER_OWNER, QUEUE_UNITS_ALL_OWNERS, |share| {
                &share.syslog_entries
            }),
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }))
    }

    /// Starts sending the queue. Call after the privilege drop: the thread inherits it.
    pub fn start_sender(self: &Arc<Self>) -> Result<()> {
        let Some(receiver) = self
            .receiver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            return Ok(());
        };
        let syslog = self.clone();
        std::thread::Builder::new()
            .name("syslog-sender".into())
            .spawn(move || {
                for (entry, owner) in receiver {
                    let sent = entry.with(|datagram| syslog.send(datagram.as_bytes()));
                    drop(entry);
                    if let Some(share) = owner {
                        syslog.owners.give_back(&share, 1);
                    }
                    let counter = if sent { &syslog.sent } else { &syslog.dropped };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
            .context("failed to start the syslog sender thread")?;
        Ok(())
    }

    /// Sends one datagram, once more after a refusal reported for an earlier one (see the
    /// module doc). Whether it left.
    fn send(&self, datagram: &[u8]) -> bool {
        match self.socket.send(datagram) {
            Ok(_) => true,
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                let _ = self
                    .sent
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
                self.dropped.fetch_add(1, Ordering::Relaxed);
                self.socket.send(datagram).is_ok()
            }
            Err(_) => false,
        }
    }

    /// Queues the status report, one datagram per non-empty line, with MSGID `report`
    /// (RFC 5424). One per line because collectors take a datagram as one message: a
    /// multi-line one is stored as a single record with its newlines escaped (rsyslog's
    /// `#012`) or cut, and a whole report can outgrow what RFC 5426 asks receivers to
    /// accept (480 bytes over IPv4, 2048 advised), while a line stays far below it.
    pub fn report(&self, text: &str) {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            self.enqueue_as(&Level::INFO, REPORT_MSGID, line);
        }
    }

    /// Datagrams sent and entries dropped so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }

    fn enqueue(&self, level: &Level, message: &str) {
        self.enqueue_as(level, "-", message);
    }

    fn enqueue_as(&self, level: &Level, msgid: &str, message: &str) {
        let owner = owner::current();
        if let Some(share) = &owner
            && !self.owners.take(share, 1)
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let datagram = self.datagram(level, msgid, message, OffsetDateTime::now_utc());
        let unit = self.queue.alloc(datagram);
        let refused = match unit {
            Ok(unit) => self.sender.send((unit, owner)).err().map(|e| e.0.1),
            Err(_) => Some(owner),
        };
        if let Some(owner) = refused {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            if let Some(share) = owner {
                self.owners.give_back(&share, 1);
                share.count_dropped();
            }
        }
    }

    /// One datagram: facility daemon (3), severity from the level, the message escaped
    /// (`super::escape`) and cut to [`MAX_MESSAGE_BYTES`].
    fn datagram(&self, level: &Level, msgid: &str, message: &str, now: OffsetDateTime) -> String {
        let severity = match *level {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            Level::DEBUG | Level::TRACE => 7,
        };
        let pri = 3 * 8 + severity;
        let pid = std::process::id();
        let escaped = super::escape(message);
        let message = crate::text::truncate(&escaped, MAX_MESSAGE_BYTES);
        match self.format {
            Format::Rfc5424 => {
                let ts = now.format(&Rfc3339).unwrap_or_else(|_| "-".into());
                format!(
                    "<{pri}>1 {ts} {} {} {pid} {msgid} - {message}",
                    self.hostname, self.app
                )
            }
            Format::Rfc3164 => {
                let ts = now
                    .format(time::macros::format_description!(
                        "[month repr:short] [day padding:space] [hour]:[minute]:[second]"
                    ))
                    .unwrap_or_default();
                format!(
                    "<{pri}>{ts} {} {}[{pid}]: {message}",
                    self.hostname, self.app
                )
            }
        }
    }
}

/// `address` with the syslog port added when it names none: `host`, `host:port`, an IPv4
/// or IPv6 literal, `[v6]:port`.
fn with_default_port(address: &str) -> String {
    if address.parse::<SocketAddr>().is_ok() {
        return address.to_string();
    }
    if let Ok(ip) = address.parse::<IpAddr>() {
        return SocketAddr::new(ip, DEFAULT_PORT).to_string();
    }
    match address.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.parse::<u16>().is_ok() => {
            address.to_string()
        }
        _ => format!("{address}:{DEFAULT_PORT}"),
    }
}

/// The tracing layer that feeds the syslog queue once one is configured.
pub struct SyslogLayer {
    target: Arc<ArcSwapOption<Syslog>>,
}

impl SyslogLayer {
    /// A layer sending to whatever `target` holds (nothing until configured).
    pub fn new(target: Arc<ArcSwapOption<Syslog>>) -> Self {
        SyslogLayer { target }
    }
}

impl<S: Subscriber> Layer<S> for SyslogLayer {
    fn on_event(&self, event: &Event<'_>, _: LayerContext<'_, S>) {
        let target = self.target.load();
        let Some(syslog) = target.as_ref() else {
            return;
        };
        let text = super::event_text::render(event);
        syslog.enqueue(event.metadata().level(), &text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syslog(format: Format) -> (Arc<Syslog>, UdpSocket) {
        let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
        let address = collector.local_addr().unwrap().to_string();
        (
            Syslog::new(&address, format, "server.pop", &HeapRegistry::default()).unwrap(),
            collector,
        )
    }

    #[test]
    fn rfc5424_datagrams() {
        let (s, _collector) = syslog(Format::Rfc5424);
        let now = time::macros::datetime!(2026-11-22 04:05:06 UTC);
        let d = s.datagram(&Level::WARN, "-", "disk full", now);
        assert_eq!(
            d,
            format!(
                "<28>1 2026-11-22T04:05:06Z {} server.pop {} - - disk full",
                s.hostname,
                std::process::id()
            )
        );
    }

    #[test]
    fn rfc3164_datagrams() {
        let (s, _collector) = syslog(Format::Rfc3164);
        let now = time::macros::datetime!(2026-11-02 04:05:06 UTC);
        let d = s.datagram(&Level::INFO, "-", "hello", now);
        assert_eq!(
            d,
            format!(
                "<30>Nov  2 04:05:06 {} server.pop[{}]: hello",
                s.hostname,
                std::process::id()
            )
        );
    }

    #[test]
    fn control_characters_are_escaped_before_the_cut() {
        let (s, _collector) = syslog(Format::Rfc5424);
        let now = time::macros::datetime!(2026-11-22 04:05:06 UTC);
        let d = s.datagram(&Level::INFO, "-", "a\nb\x1b[2J", now);
        assert!(d.ends_with(" - - a\\x0ab\\x1b[2J"), "{d}");
        let long = "\n".repeat(MAX_MESSAGE_BYTES);
        let d = s.datagram(&Level::INFO, "-", &long, now);
        assert!(!d.contains('\n'), "{d}");
        assert!(
            d.len() < MAX_MESSAGE_BYTES + 200,
            "cut after escaping: {}",
            d.len()
        );
    }

    /// The next datagram at `collector`, as text.
    fn received(collector: &UdpSocket) -> String {
        let mut buf = [0u8; 4096];
        collector
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let n = collector.recv(&mut buf).expect("a datagram within 5 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn the_report_goes_one_line_per_datagram_with_its_msgid() {
        let (s, collector) = syslog(Format::Rfc5424);
        s.start_sender().unwrap();
        s.report("ServerKit status report\n\nModule echo\n  evil\x1b[2J line\n");
        let lines: Vec<String> = (0..3).map(|_| received(&collector)).collect();
        let pid = std::process::id();
        assert!(lines[0].ends_with(&format!(" {pid} report - ServerKit status report")));
        assert!(lines[1].ends_with(" report - Module echo"), "{lines:?}");
        assert!(
            lines[2].ends_with(" report -   evil\\x1b[2J line"),
            "{lines:?}"
        );
        assert!(lines[0].starts_with("<30>1 "), "daemon.info: {lines:?}");
    }

    #[test]
    fn after_a_refusal_the_datagram_at_hand_is_sent_again() {
        // A collector that was there, then is not: its port refuses what is sent.
        let gone = UdpSocket::bind("127.0.0.1:0").unwrap();
        let address = gone.local_addr().unwrap();
        drop(gone);
        let s = Syslog::new(
            &address.to_string(),
            Format::Rfc5424,
            "server.pop",
            &HeapRegistry::default(),
        )
        .unwrap();
        s.start_sender().unwrap();
        s.enqueue(&Level::INFO, "lost while the collector is down");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while s.counts() == (0, 0) {
            assert!(std::time::Instant::now() < deadline, "never sent");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // Let the port-unreachable come back and wait on the socket as an error.
        std::thread::sleep(std::time::Duration::from_millis(100));
        let collector = UdpSocket::bind(address).expect("the collector's port again");
        s.enqueue(&Level::INFO, "first after the collector is back");
        assert!(
            received(&collector).ends_with(" - - first after the collector is back"),
            "the first datagram after the refusal arrives"
        );
        // The sender counts right after its send: wait for it.
        while s.counts() != (1, 1) {
            assert!(
                std::time::Instant::now() < deadline,
                "the lost one counted as dropped, the resent one as sent: {:?}",
                s.counts()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn queued_entries_wait_for_the_sender_then_arrive() {
        let (s, collector) = syslog(Format::Rfc5424);
        s.enqueue(&Level::INFO, "before the drop");
        assert_eq!(
            s.queue.stats().allocated,
            1,
            "queued in the heap until the sender starts"
        );
        s.start_sender().unwrap();
        let mut buf = [0u8; 2048];
        collector
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let n = collector.recv(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).ends_with(" - - before the drop"));
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let (s, _collector) = syslog(Format::Rfc5424);
        for _ in 0..QUEUE_UNITS + 5 {
            s.enqueue(&Level::INFO, "x");
        }
        assert_eq!(s.counts(), (0, 5));
    }

    #[test]
    fn a_module_flooding_the_queue_fills_only_its_share() {
        let (s, collector) = syslog(Format::Rfc5424);
        let flooder = Arc::new(LogShare::default());
        owner::as_owner(&flooder, || {
            for _ in 0..QUEUE_UNITS {
                s.enqueue(&Level::INFO, "flood");
            }
        });
        let over = (QUEUE_UNITS - QUEUE_UNITS_PER_OWNER) as u64;
        assert_eq!((s.counts(), flooder.dropped()), ((0, over), over));
        s.enqueue(&Level::WARN, "the host's own");
        assert_eq!(s.counts(), (0, over), "the host's entry was queued");
        s.start_sender().unwrap();
        collector
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 2048];
        for _ in 0..QUEUE_UNITS_PER_OWNER {
            collector.recv(&mut buf).unwrap();
        }
        let n = collector.recv(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).ends_with("the host's own"));
        let started = std::time::Instant::now();
        while flooder.syslog_entries.load(Ordering::Relaxed) > 0 {
            assert!(started.elapsed().as_secs() < 5, "its share was given back");
            std::thread::yield_now();
        }
    }

    #[test]
    fn addresses_take_the_default_port() {
        assert_eq!(with_default_port("192.168.2.100"), "192.168.2.100:514");
        assert_eq!(
            with_default_port("192.168.2.100:1514"),
            "192.168.2.100:1514"
        );
        assert_eq!(with_default_port("::1"), "[::1]:514");
        assert_eq!(with_default_port("[::1]:1514"), "[::1]:1514");
        assert_eq!(with_default_port("logs.example"), "logs.example:514");
        assert_eq!(with_default_port("logs.example:1514"), "logs.example:1514");
        assert!(Format::parse("rfc9999").is_err());
    }
}
