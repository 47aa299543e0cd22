//! The metrics endpoint's HTTP/1.1: one request per connection, `GET /metrics` only (404
//! for another path, 405 for another method on it), the request head bounded in size and
//! read within a timeout, the answer, then close. Written by hand on `httparse`: one path
//! and one method need no server framework, and every bound is ours to name.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::family::{Family, Format, Kind, encode};
use super::figures::families;
use crate::report::Reporter;

/// Longest request head read: what it defends is host memory against a client sending an
/// endless head (Prometheus sends about 300 bytes).
pub const MAX_REQUEST_HEAD_BYTES: usize = 8 << 10;

/// Most header fields in a request head, for the same reason.
const MAX_HEADERS: usize = 32;

/// Longest time for a whole exchange, from accept to the last byte written: what it
/// defends is a connection slot held by a client that sends or reads nothing.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait for the request head: Prometheus sends its ~300 bytes at once, so a
/// client still silent after this holds a slot for nothing (the slowloris of 16
/// connections renewed every `EXCHANGE_TIMEOUT` kept every scrape out).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(2);

/// Connections served at once; more wait in the listen backlog. What it defends is the
/// host runtime, which also carries every database query, against a flood of scrapes.
pub const MAX_CONNECTIONS: usize = 16;

/// Pause after an accept error such as EMFILE, so a full descriptor table does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Scrapes answered, by format: the endpoint's own figures.
#[derive(Debug, Default)]
struct Scrapes {
    openmetrics: AtomicU64,
    text: AtomicU64,
}

impl Scrapes {
    /// Counts one scrape in `format`.
    fn count(&self, format: Format) {
        let counter = match format {
            Format::OpenMetrics => &self.openmetrics,
            Format::Text => &self.text,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn family(&self) -> Family {
        let mut family = Family::new(
            "serverkit_metrics_scrapes",
            Kind::Counter,
            "Scrapes of this endpoint answered, by exposition format",
        );
        for (format, counter) in [("openmetrics", &self.openmetrics), ("text", &self.text)] {
            family.add(
                vec![("format", format.into())],
                counter.load(Ordering::Relaxed),
            );
        }
        family
    }

    /// The exposition in `format`, this scrape counted.
    fn render(&self, reporter: &Reporter, format: Format) -> String {
        self.count(format);
        let mut all = families(reporter);
        all.push(self.family());
        encode(&all, format)
    }
}

/// Accepts and answers scrapes until the runtime stops.
pub async fn serve(listener: TcpListener, reporter: Arc<Reporter>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let scrapes = Arc::new(Scrapes::default());
    loop {
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("metrics: accept failed: {e}");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let (reporter, scrapes) = (reporter.clone(), scrapes.clone());
        tokio::spawn(async move {
            let exchange = exchange(stream, &reporter, &scrapes);
            match tokio::time::timeout(EXCHANGE_TIMEOUT, exchange).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%peer, "metrics: exchange failed: {e}"),
                Err(_) => {
                    tracing::debug!(%peer, "metrics: no whole exchange within {EXCHANGE_TIMEOUT:?}")
                }
            }
            drop(slot);
        });
    }
}

async fn exchange(
    mut stream: TcpStream,
    reporter: &Reporter,
    scrapes: &Scrapes,
) -> std::io::Result<()> {
    let head = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no request head"))?;
    let response = match head? {
        Some(head) => answer(&head, |format| scrapes.render(reporter, format)),
        None => Response::plain(
            431,
            "Request Header Fields Too Large",
            "request head too long\n",
        ),
    };
    stream.write_all(&response.bytes()).await?;
    stream.shutdown().await?;
    linger(&mut stream).await;
    Ok(())
}

/// Most bytes read and thrown away after the answer, and for how long.
const LINGER: (usize, Duration) = (64 << 10, Duration::from_secs(1));

/// Reads what the client still sends until it closes (bounded by [`LINGER`]): closing with
/// unread bytes would send a reset, which can make the client lose the answer (a 431 to a
/// head still arriving). nginx's `lingering_close`, in small.
async fn linger(stream: &mut TcpStream) {
    let (mut left, limit) = LINGER;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(limit, async {
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// Reads up to the end of the request head; `None` when it outgrows
/// [`MAX_REQUEST_HEAD_BYTES`]. Bytes after the head (a body, a pipelined request) are
/// left unread: the connection closes after one answer.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            head.truncate(end + 4);
            return Ok(Some(head));
        }
        if head.len() > MAX_REQUEST_HEAD_BYTES {
            return Ok(None);
        }
    }
}

/// A response, written whole, then the connection closes.
#[derive(Debug, PartialEq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    reason: &'static str,
    content_type: &'static str,
    allow: bool,
    /// The body.
    pub body: String,
}

impl Response {
    fn plain(status: u16, reason: &'static str, body: &str) -> Self {
        Response {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            allow: false,
            body: body.into(),
        }
    }

    /// Its bytes on the wire.
    pub fn bytes(&self) -> Vec<u8> {
        let allow = if self.allow { "Allow: GET\r\n" } else { "" };
        let head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{allow}Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len()
        );
        [head.as_bytes(), self.body.as_bytes()].concat()
    }
}

/// The answer to a complete request head; `render` gives the exposition in a format.
pub fn answer(head: &[u8], render: impl FnOnce(Format) -> String) -> Response {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => {
            return Response::plain(
                431,
                "Request Header Fields Too Large",
                "too many header fields\n",
            );
        }
        _ => return Response::plain(400, "Bad Request", "malformed request\n"),
    }
    let path = request.path.unwrap_or_default();
    if path.split('?').next() != Some("/metrics") {
        return Response::plain(404, "Not Found", "only /metrics is served here\n");
    }
    if request.method != Some("GET") {
        let mut refused = Response::plain(405, "Method Not Allowed", "only GET is served\n");
        refused.allow = true;
        return refused;
    }
    let accept = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("accept"))
        .and_then(|h| std::str::from_utf8(h.value).ok());
    let format = Format::negotiate(accept);
    Response {
        status: 200,
        reason: "OK",
        content_type: format.content_type(),
        allow: false,
        body: render(format),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn respond(head: &str) -> Response {
        answer(head.as_bytes(), |format| format!("{format:?}\n"))
    }

    #[test]
    fn get_metrics_is_answered_in_the_format_asked() {
        let r = respond("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!((r.status, r.body.as_str()), (200, "Text\n"));
        let r = respond(
            "GET /metrics?x=1 HTTP/1.1\r\naccept: application/openmetrics-text;version=1.0.0\r\n\r\n",
        );
        assert_eq!((r.status, r.body.as_str()), (200, "OpenMetrics\n"));
        let wire = String::from_utf8(r.bytes()).unwrap();
        assert!(wire.starts_with("HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: 12\r\n"), "{wire}");
        assert!(
            wire.ends_with("Connection: close\r\n\r\nOpenMetrics\n"),
            "{wire}"
        );
    }

    #[test]
    fn anything_else_is_refused() {
        assert_eq!(respond("GET / HTTP/1.1\r\n\r\n").status, 404);
        assert_eq!(respond("GET /metricsx HTTP/1.1\r\n\r\n").status, 404);
        assert_eq!(respond("GET /metrics/../x HTTP/1.1\r\n\r\n").status, 404);
        let post = respond("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(post.status, 405);
        assert!(
            String::from_utf8(post.bytes())
                .unwrap()
                .contains("\r\nAllow: GET\r\n")
        );
        assert_eq!(respond("HEAD /metrics HTTP/1.1\r\n\r\n").status, 405);
        assert_eq!(
            respond("GET /metrics HTTP/1.1\r\nBad Header\r\n\r\n").status,
            400
        );
        assert_eq!(respond("\x16\x03\x01\r\n\r\n").status, 400);
        let many: String = (0..40).map(|i| format!("X-{i}: y\r\n")).collect();
        let head = format!("GET /metrics HTTP/1.1\r\n{many}\r\n");
        assert_eq!(respond(&head).status, 431);
    }
}
