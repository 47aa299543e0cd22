//! The `wasi:io` byte streams of a connection. Reads and writes are non-blocking
//! `try_read`/`try_write` on the tokio socket; a guest's blocking read or write waits in
//! `Pollable::ready`, so a waiting session costs no thread. Each wait is counted in its
//! wait channel; every byte from the client, wait for it, and stretch of bytes it took
//! starts a new stretch of the session's CPU budget.

use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

use super::transport::Transport;
use super::{Activity, Delivery, MAX_READ_BYTES};
use crate::contract::bindings::connection::SendKind;
use crate::meter::{Channel, CpuBudget, FirstLimit, Limit, ModuleMeter, WaitChannels};

/// What a connection's streams charge: wait channels, the CPU budget they renew, and the
/// write permit with the limit a write past it hits.
#[derive(Clone)]
pub(super) struct StreamMeter {
    pub waits: Arc<WaitChannels>,
    pub cpu: Arc<CpuBudget>,
    pub first_limit: Arc<FirstLimit>,
    pub module: Arc<ModuleMeter>,
}

/// Bytes the guest wrote to the output stream that the socket has not taken yet, shared
/// by the stream and the connection: `send-file` must send them first.
#[derive(Default)]
pub(super) struct Outgoing {
    pending: Bytes,
    /// TLS only: ciphertext of written bytes is still queued in the host.
    backlog: bool,
    failed: Option<io::Error>,
}

impl Outgoing {
    /// Writes as much of `pending` as the socket takes now.
    pub(super) fn push(&mut self, transport: &Transport, delivery: &Delivery) {
        while !self.pending.is_empty() && self.failed.is_none() {
            match transport.try_write(&self.pending) {
                Ok(n) => {
                    delivery.sent(n);
                    let _ = self.pending.split_to(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => self.failed = Some(e),
            }
        }
        match transport.flush() {
            Ok(all) => self.backlog = !all,
            Err(e) => self.failed = Some(e),
        }
    }

    /// Whether everything was written (or writing failed).
    pub(super) fn done(&self) -> bool {
        (self.pending.is_empty() && !self.backlog) || self.failed.is_some()
    }

    /// The write error met, if any (reported once).
    pub(super) fn take_failure(&mut self) -> Option<io::Error> {
        self.failed.take()
    }
}

/// Locks `outgoing`; a poisoned lock only means a panic elsewhere, and the bytes are
/// still consistent (every update is a single assignment or split).
pub(super) fn lock(outgoing: &Mutex<Outgoing>) -> MutexGuard<'_, Outgoing> {
    outgoing
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The input stream.
pub(super) struct Reader {
    socket: Arc<Transport>,
    activity: Arc<Activity>,
    meter: StreamMeter,
    closed: bool,
}

impl Reader {
    pub(super) fn new(socket: Arc<Transport>, activity: Arc<Activity>, meter: StreamMeter) -> Self {
        Reader {
            socket,
            activity,
            meter,
            closed: false,
        }
    }
}

#[wasmtime_wasi::async_trait]
impl InputStream for Reader {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if self.closed {
            return Err(StreamError::Closed);
        }
        let size = size.min(MAX_READ_BYTES);
        if size == 0 {
            return Ok(Bytes::new());
        }
        // Uninitialised capacity: zeroing up to 64 KiB for every call, most of which find
        // no data or a small request, would be wasted work on every request.
        let mut buf = BytesMut::with_capacity(size);
        match self.socket.try_read_buf(&mut buf) {
            Ok(0) => {
                self.closed = true;
                Err(StreamError::Closed)
            }
            Ok(n) => {
                self.activity.received();
                self.meter.cpu.waited();
                buf.truncate(n);
                Ok(buf.freeze())
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Bytes::new()),
            Err(e) => {
                self.closed = true;
                Err(StreamError::LastOperationFailed(e.into()))
            }
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Reader {
    async fn ready(&mut self) {
        if !self.closed {
            let _waiting = self.meter.waits.enter(Channel::Recv);
            // An error here shows up in the next read. The CPU budget is renewed by the
            // bytes read next, not here: polling input nobody reads is no wait.
            let _ = self.socket.readable().await;
        }
    }
}

/// The output stream.
pub(super) struct Writer {
    socket: Arc<Transport>,
    delivery: Delivery,
    outgoing: Arc<Mutex<Outgoing>>,
    sending: Arc<AtomicU8>,
    meter: StreamMeter,
    /// The write permit: the module's `max_buffered_kb`, the most the host holds for the
    /// guest until the socket takes it.
    permit: usize,
}

impl Writer {
    pub(super) fn new(
        socket: Arc<Transport>,
        activity: Arc<Activity>,
        outgoing: Arc<Mutex<Outgoing>>,
        sending: Arc<AtomicU8>,
        meter: StreamMeter,
    ) -> Self {
        let permit = meter.module.budgets.buffered;
        Writer {
            socket,
            delivery: Delivery::new(activity, meter.cpu.clone()),
            outgoing,
            sending,
            meter,
            permit,
        }
    }

    fn push_pending(&self) -> MutexGuard<'_, Outgoing> {
        let mut out = lock(&self.outgoing);
        out.push(&self.socket, &self.delivery);
        out
    }

    /// The channel a wait for the socket counts in, from what the guest says it sends.
    fn channel(&self) -> Channel {
        match self.sending.load(Ordering::Relaxed) {
            k if k == SendKind::Headers as u8 => Channel::SendHeaders,
            k if k == SendKind::Autoindex as u8 => Channel::SendAutoidx,
            k if k == SendKind::ConstantResponse as u8 => Channel::SendConstantResponse,
            _ => Channel::Send,
        }
    }
}

fn failure(out: &mut Outgoing) -> StreamResult<()> {
    match out.take_failure() {
        Some(e) => Err(StreamError::LastOperationFailed(e.into())),
        None => Ok(()),
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for Writer {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let mut out = lock(&self.outgoing);
        failure(&mut out)?;
        if !out.pending.is_empty() || bytes.len() > self.permit {
            self.meter
                .module
                .record(&self.meter.first_limit, Limit::Buffered);
            return Err(StreamError::Trap(wasmtime::format_err!(
                "write exceeded the permit given by check-write ({} bytes)",
                self.permit
            )));
        }
        out.pending = bytes;
        out.push(&self.socket, &self.delivery);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        failure(&mut self.push_pending())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        let mut out = self.push_pending();
        failure(&mut out)?;
        Ok(if out.pending.is_empty() {
            self.permit
        } else {
            0
        })
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Writer {
    async fn ready(&mut self) {
        if self.push_pending().done() {
            return;
        }
        let _waiting = self.meter.waits.enter(self.channel());
        loop {
            if let Err(e) = self.socket.writable().await {
                lock(&self.outgoing).failed = Some(e);
                return;
            }
            if self.push_pending().done() {
                self.meter.cpu.waited();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;

    fn meter(buffered: usize) -> StreamMeter {
        let mut module = crate::meter::tests::meter(8, None, 4);
        Arc::get_mut(&mut module).unwrap().budgets.buffered = buffered;
        StreamMeter {
            waits: module.waits.clone(),
            cpu: Arc::new(CpuBudget::unbounded()),
            first_limit: Arc::default(),
            module,
        }
    }

    async fn pair() -> (Arc<Transport>, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (Arc::new(Transport::plain(server)), client)
    }

    #[tokio::test]
    async fn a_session_waiting_for_bytes_is_counted_in_recv() {
        let (server, mut client) = pair().await;
        let meter = meter(1024);
        let waits = meter.waits.clone();
        let mut reader = Reader::new(server, Activity::new(), meter);
        // Nothing to read yet (this also clears tokio's initial, optimistic readiness).
        assert!(reader.read(100).unwrap().is_empty());
        let waiting = tokio::spawn(async move {
            reader.ready().await;
            reader
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "ready returned with no data");
        assert_eq!(waits.waiting(Channel::Recv), 1);
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let mut reader = waiting.await.unwrap();
        assert_eq!(waits.waiting(Channel::Recv), 0, "the wait ended");
        assert_eq!(&reader.read(100).unwrap()[..], b"GET / HTTP/1.1\r\n");
    }

    const PERMIT: usize = 64 * 1024;

    #[tokio::test]
    async fn a_write_past_the_permit_is_a_limit_hit() {
        let (server, _client) = pair().await;
        let meter = meter(1024);
        let hit = meter.first_limit.clone();
        let mut writer = Writer::new(
            server,
            Activity::new(),
            Arc::default(),
            Arc::default(),
            meter,
        );
        assert_eq!(writer.check_write().unwrap(), 1024);
        assert!(matches!(
            writer.write(Bytes::from(vec![b'x'; 1025])),
            Err(StreamError::Trap(_))
        ));
        assert_eq!(hit.get(), Some(Limit::Buffered));
    }

    #[tokio::test]
    async fn writes_wait_in_the_channel_the_guest_named() {
        let (server, _client) = pair().await;
        let meter = meter(PERMIT);
        let waits = meter.waits.clone();
        let sending = Arc::new(AtomicU8::new(SendKind::Autoindex as u8));
        let outgoing = Arc::new(Mutex::new(Outgoing::default()));
        let mut writer = Writer::new(server, Activity::new(), outgoing, sending, meter);
        // Fill the socket until the peer, which never reads, stops taking bytes.
        while writer.check_write().unwrap() > 0 {
            writer.write(Bytes::from(vec![b'x'; PERMIT])).unwrap();
        }
        let blocked = tokio::spawn(async move { writer.ready().await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(waits.waiting(Channel::SendAutoidx), 1);
        assert_eq!(waits.waiting(Channel::Send), 0);
        blocked.abort();
        let _ = blocked.await;
        assert_eq!(
            waits.waiting(Channel::SendAutoidx),
            0,
            "a cancelled wait is uncounted"
        );
    }
}
