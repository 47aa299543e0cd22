//! What carries a connection's bytes: the plain socket, or a rustls server connection
//! driven by the host over that socket in the same non-blocking style (ciphertext moves with
//! `try_read`/`try_write`; the guest's streams see plaintext only).

use std::io::{self, BufRead, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::BytesMut;
use rustls::{ServerConfig, ServerConnection};
use tokio::net::TcpStream;

/// The socket of a connection, and its TLS state when TLS is on.
pub struct Transport {
    /// The accepted socket.
    pub socket: Arc<TcpStream>,
    /// Set once, when TLS starts: at accept (a TLS listener) or by `start-tls`. Boxed: a
    /// rustls connection is about 1 KiB, which every plain session would otherwise carry.
    tls: OnceLock<Box<Mutex<ServerConnection>>>,
    /// Whether the TLS offers HTTP/1.1: a client that sends plain HTTP instead of a
    /// handshake then gets a readable `400` rather than a TLS alert, as nginx answers.
    speaks_http: std::sync::atomic::AtomicBool,
    /// Set when TLS failed (a record that was no TLS, a bad handshake): rustls keeps its
    /// error, so readiness stays set, and a read that waited for more bytes would loop
    /// on the worker forever. Every later read returns the failure at once instead.
    tls_failed: std::sync::atomic::AtomicBool,
}

/// What a client that sends plain HTTP to an HTTPS port gets.
const PLAIN_HTTP_TO_HTTPS: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 47\r\nConnection: close\r\n\r\nThe plain HTTP request was sent to HTTPS port.\n";

/// `io::Read`/`io::Write` over the non-blocking tokio socket, for rustls' `read_tls` and
/// `write_tls` (a `WouldBlock` clears tokio's readiness as it should).
struct Raw<'a>(&'a TcpStream);

impl Read for Raw<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for Raw<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport {
    /// A plain transport over `socket`.
    pub fn plain(socket: TcpStream) -> Self {
        Transport {
            socket: Arc::new(socket),
            tls: OnceLock::new(),
            speaks_http: std::sync::atomic::AtomicBool::new(false),
            tls_failed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A TLS transport over `socket`; the handshake happens as the guest reads and writes.
    pub fn tls(socket: TcpStream, config: Arc<ServerConfig>) -> io::Result<Self> {
        let transport = Transport::plain(socket);
        transport.start_tls(config)?;
        Ok(transport)
    }

    /// Whether TLS is on.
    pub fn is_tls(&self) -> bool {
        self.tls.get().is_some()
    }

    /// Reads and throws away what the peer sent that is still in the socket (STARTTLS:
    /// nothing sent before the handshake may be taken as sent under TLS).
    pub fn discard_input(&self) -> io::Result<()> {
        let mut sink = [0u8; 4096];
        loop {
            match self.socket.try_read(&mut sink) {
                Ok(0) => return Ok(()),
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Turns TLS on in place; errors if TLS is on already.
    pub fn start_tls(&self, config: Arc<ServerConfig>) -> io::Result<()> {
        let speaks_http = config.alpn_protocols.iter().any(|p| p == b"http/1.1");
        self.speaks_http
            .store(speaks_http, std::sync::atomic::Ordering::Relaxed);
        let conn = ServerConnection::new(config).map_err(io::Error::other)?;
        self.tls
            .set(Box::new(Mutex::new(conn)))
            .map_err(|_| io::Error::other("TLS is already active"))
    }

    fn lock(tls: &Mutex<ServerConnection>) -> MutexGuard<'_, ServerConnection> {
        // A poisoned lock means a panic elsewhere; rustls keeps its own state consistent.
        tls.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends plaintext to `buf` (up to its spare capacity): `Ok(0)` at the end,
    /// `WouldBlock` when none is there yet. Over TLS the bytes are copied from rustls's
    /// buffer as they are, with no zeroed scratch space in between.
    pub fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        let Some(tls) = self.tls.get() else {
            return self.socket.try_read_buf(buf);
        };
        let spare = buf.capacity() - buf.len();
        self.with_plaintext(tls, |reader| {
            let chunk = reader.fill_buf()?;
            let n = chunk.len().min(spare);
            buf.extend_from_slice(&chunk[..n]);
            reader.consume(n);
            Ok(n)
        })
    }

    /// Reads plaintext into `buf`: `Ok(0)` at the end, `WouldBlock` when none is there yet.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.get() else {
            return self.socket.try_read(buf);
        };
        self.with_plaintext(tls, |reader| reader.read(buf))
    }

    /// Runs `take` on the plaintext received, first decrypting what the socket holds if
    /// there is none: `take` returns `WouldBlock` for no plaintext and `Ok(0)` or
    /// `UnexpectedEof` (taken as `Ok(0)`) at the end, as rustls's reader does.
    fn with_plaintext(
        &self,
        tls: &Mutex<ServerConnection>,
        mut take: impl FnMut(&mut rustls::Reader<'_>) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let mut conn = Self::lock(tls);
        loop {
            match take(&mut conn.reader()) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            // What was decrypted before the failure has been taken; nothing more can come.
            if self.tls_failed.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the TLS session failed earlier",
                ));
            }
            if self.receive_tls(&mut conn)? == 0 {
                return Ok(0);
            }
        }
    }

    /// Reads the ciphertext the socket holds into `conn` and processes it, writing what
    /// that queues (handshake replies, or the alert telling the peer what went wrong);
    /// the bytes read, `Ok(0)` at the end, `WouldBlock` when none were there.
    fn receive_tls(&self, conn: &mut ServerConnection) -> io::Result<usize> {
        let n = conn.read_tls(&mut Raw(&self.socket))?;
        if n == 0 {
            return Ok(0);
        }
        let processed = conn.process_new_packets();
        if processed.is_err() {
            self.tls_failed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if let Err(e) = &processed
            && self.plain_http(conn, e)
        {
            // Not the alert: a client that spoke plain HTTP could not read it.
            let _ = self.socket.try_write(PLAIN_HTTP_TO_HTTPS);
            let _ =
                socket2::SockRef::from(self.socket.as_ref()).shutdown(std::net::Shutdown::Write);
            return Err(io::Error::new(io::ErrorKind::InvalidData, e.clone()));
        }
        let _ = flush(conn, &self.socket);
        match processed {
            Ok(_) => Ok(n),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }

    /// Whether `error`, met before the handshake went anywhere, means the client spoke
    /// plain text to a TLS port that offers HTTP (its first record's type was no TLS type:
    /// `GET ...` begins with `G`, 0x47).
    fn plain_http(&self, conn: &ServerConnection, error: &rustls::Error) -> bool {
        self.speaks_http.load(std::sync::atomic::Ordering::Relaxed)
            && conn.is_handshaking()
            && matches!(
                error,
                rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)
            )
    }

    /// Takes plaintext from `buf`: `WouldBlock` while earlier ciphertext is still queued.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.get() else {
            return self.socket.try_write(buf);
        };
        let mut conn = Self::lock(tls);
        if !flush(&mut conn, &self.socket)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = conn.writer().write(buf)?;
        flush(&mut conn, &self.socket)?;
        if n == 0 && !buf.is_empty() {
            // rustls' buffer is full (plaintext written before the handshake finished).
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// Writes queued ciphertext; `Ok(true)` once none is left (always, without TLS).
    pub fn flush(&self) -> io::Result<bool> {
        match self.tls.get() {
            Some(tls) => flush(&mut Self::lock(tls), &self.socket),
            None => Ok(true),
        }
    }

    /// How TLS went: `None` without TLS; `Some(None)` if the handshake has not completed;
    /// `Some(Some(tls13))` once it has.
    pub fn handshake(&self) -> Option<Option<bool>> {
        let conn = Self::lock(self.tls.get()?);
        if conn.is_handshaking() {
            return Some(None);
        }
        Some(Some(
            conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3),
        ))
    }

    /// Queues TLS' close_notify and writes what the socket takes now (nothing without TLS).
    pub fn close_notify(&self) {
        if let Some(tls) = self.tls.get() {
            let mut conn = Self::lock(tls);
            conn.send_close_notify();
            // The peer may be gone; the shutdown that follows ends the connection anyway.
            let _ = flush(&mut conn, &self.socket);
        }
    }

    /// Whether plaintext (or the end of the stream) is ready without reading the socket.
    pub fn buffered(&self) -> bool {
        let Some(tls) = self.tls.get() else {
            return false;
        };
        match Self::lock(tls).process_new_packets() {
            Ok(state) => state.plaintext_bytes_to_read() > 0 || state.peer_has_closed(),
            Err(_) => true,
        }
    }

    /// Waits until a blocked write may go further: until the socket takes more, or, while
    /// the TLS handshake is unfinished with nothing queued to send, until the client's
    /// next handshake bytes have come and been processed. Only they let the handshake,
    /// and so the writes rustls holds back, go on: waiting for the socket to be writable
    /// there returns at once, again and again, a spin no CPU budget charges (a module
    /// writing more than rustls buffers before the client's hello).
    pub async fn writable(&self) -> io::Result<()> {
        if !self.handshake_awaits_client() {
            return self.socket.writable().await;
        }
        self.socket.readable().await?;
        let tls = self.tls.get().expect("a handshake is TLS");
        match self.receive_tls(&mut Self::lock(tls)) {
            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => Ok(()),
            // Readiness was stale, and is cleared now.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether TLS is still handshaking with nothing to send: the client must speak next.
    fn handshake_awaits_client(&self) -> bool {
        self.tls.get().is_some_and(|tls| {
            let conn = Self::lock(tls);
            conn.is_handshaking() && !conn.wants_write()
        })
    }

    /// Waits until a read may find something: queued ciphertext (the handshake's) is
    /// written first, since the peer may wait for it before sending more.
    pub async fn readable(&self) -> io::Result<()> {
        while !self.flush()? {
            self.socket.writable().await?;
        }
        if self.buffered() {
            return Ok(());
        }
        self.socket.readable().await
    }
}

/// Writes `conn`'s queued ciphertext to `socket`; `Ok(true)` once none is left.
fn flush(conn: &mut ServerConnection, socket: &TcpStream) -> io::Result<bool> {
    while conn.wants_write() {
        match conn.write_tls(&mut Raw(socket)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
