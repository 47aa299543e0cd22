//! `serverkit:module/connection`: an accepted client connection, owned by the host, and
//! its `wasi:io` byte streams. Reads and writes are non-blocking `try_read`/`try_write`
//! on the tokio socket; a guest's blocking read or write waits in `Pollable::ready`, so
//! a waiting session costs no thread.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, InputStream, OutputStream, Pollable, StreamError, StreamResult,
};

use super::filesystem::GuestFile;
use crate::contract::bindings::connection::{
    Host, HostConnection, SendError, SendKind, ShutdownType,
};
use crate::contract::bindings::prestart::ListenerId;
use crate::guest_host::state::InstanceState;
use crate::sessions::waits::{Channel, WaitChannels};

/// Most bytes handed to the guest by one read: what it defends is guest and host memory
/// against a guest asking for a gigantic buffer (wasmtime-wasi uses the same bound).
pub const MAX_READ_BYTES: usize = 64 * 1024;

/// Most bytes a guest may have in flight in one write permit.
pub const MAX_WRITE_PERMIT_BYTES: usize = 64 * 1024;

/// When a connection last moved a byte, for the idle timeout.
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    last_millis: AtomicU64,
}

impl Activity {
    /// Activity starting now.
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            start: Instant::now(),
            last_millis: AtomicU64::new(0),
        })
    }

    pub(super) fn touch(&self) {
        self.last_millis
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Time since the last byte moved.
    pub fn idle_for(&self) -> std::time::Duration {
        let last = std::time::Duration::from_millis(self.last_millis.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// Bytes the guest wrote to the output stream that the socket has not taken yet, shared
/// by the stream and the connection: `send-file` must send them first.
#[derive(Default)]
pub(super) struct Outgoing {
    pending: Bytes,
    failed: Option<io::Error>,
}

impl Outgoing {
    /// Writes as much of `pending` as the socket takes now.
    pub(super) fn push(&mut self, socket: &TcpStream, activity: &Activity) {
        while !self.pending.is_empty() && self.failed.is_none() {
            match socket.try_write(&self.pending) {
                Ok(n) => {
                    activity.touch();
                    let _ = self.pending.split_to(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => self.failed = Some(e),
            }
        }
    }

    /// Whether everything was written (or writing failed).
    pub(super) fn done(&self) -> bool {
        self.pending.is_empty() || self.failed.is_some()
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

/// The host side of a `connection` resource.
pub struct ClientConnection {
    pub(super) socket: Arc<TcpStream>,
    peer: SocketAddr,
    local: SocketAddr,
    listener: ListenerId,
    pub(super) activity: Arc<Activity>,
    pub(super) outgoing: Arc<Mutex<Outgoing>>,
    /// What the guest says it is sending (a `SendKind` as u8), for the wait channels.
    sending: Arc<AtomicU8>,
    streams_taken: bool,
}

impl ClientConnection {
    /// Wraps an accepted socket.
    pub fn new(
        socket: TcpStream,
        peer: SocketAddr,
        listener: ListenerId,
        activity: Arc<Activity>,
    ) -> io::Result<Self> {
        let local = socket.local_addr()?;
        // Responses are written whole (or with MSG_MORE before a sendfile): waiting for
        // Nagle would only add latency to small answers.
        socket.set_nodelay(true)?;
        Ok(ClientConnection {
            socket: Arc::new(socket),
            peer,
            local,
            listener,
            activity,
            outgoing: Arc::default(),
            sending: Arc::new(AtomicU8::new(SendKind::Body as u8)),
            streams_taken: false,
        })
    }
}

impl Host for InstanceState {}

impl HostConnection for InstanceState {
    async fn peer_address(&mut self, conn: Resource<ClientConnection>) -> wasmtime::Result<String> {
        Ok(self.table.get(&conn)?.peer.to_string())
    }

    async fn local_address(
        &mut self,
        conn: Resource<ClientConnection>,
    ) -> wasmtime::Result<String> {
        Ok(self.table.get(&conn)?.local.to_string())
    }

    async fn listener(&mut self, conn: Resource<ClientConnection>) -> wasmtime::Result<ListenerId> {
        Ok(self.table.get(&conn)?.listener)
    }

    async fn streams(
        &mut self,
        conn: Resource<ClientConnection>,
    ) -> wasmtime::Result<Option<(Resource<DynInputStream>, Resource<DynOutputStream>)>> {
        let c = self.table.get_mut(&conn)?;
        if c.streams_taken {
            return Ok(None);
        }
        c.streams_taken = true;
        let reader: DynInputStream = Box::new(Reader {
            socket: c.socket.clone(),
            activity: c.activity.clone(),
            waits: self.waits.clone(),
            closed: false,
        });
        let writer: DynOutputStream = Box::new(Writer {
            socket: c.socket.clone(),
            activity: c.activity.clone(),
            outgoing: c.outgoing.clone(),
            sending: c.sending.clone(),
            waits: self.waits.clone(),
        });
        let reader = self.table.push_child(reader, &conn)?;
        let writer = self.table.push_child(writer, &conn)?;
        Ok(Some((reader, writer)))
    }

    async fn shutdown(
        &mut self,
        conn: Resource<ClientConnection>,
        how: ShutdownType,
    ) -> wasmtime::Result<()> {
        let c = self.table.get(&conn)?;
        let how = match how {
            ShutdownType::Receive => Shutdown::Read,
            ShutdownType::Send => Shutdown::Write,
            ShutdownType::Both => Shutdown::Both,
        };
        // The peer may be gone already; there is nothing useful to tell the guest then.
        let _ = socket2::SockRef::from(c.socket.as_ref()).shutdown(how);
        Ok(())
    }

    async fn sending(
        &mut self,
        conn: Resource<ClientConnection>,
        kind: SendKind,
    ) -> wasmtime::Result<()> {
        let c = self.table.get(&conn)?;
        c.sending.store(kind as u8, Ordering::Relaxed);
        Ok(())
    }

    async fn send_file(
        &mut self,
        conn: Resource<ClientConnection>,
        head: Vec<u8>,
        file: Resource<GuestFile>,
        offset: u64,
        length: u64,
    ) -> wasmtime::Result<Result<u64, SendError>> {
        let c = self.table.get(&conn)?;
        let transfer = super::send_file::Transfer {
            socket: c.socket.clone(),
            activity: c.activity.clone(),
            outgoing: c.outgoing.clone(),
        };
        let file = self.table.get(&file)?;
        let (fd, size, kind) = (file.fd.clone(), file.metadata.size, file.metadata.kind);
        let _waiting = self.waits.enter(Channel::Sendfile);
        Ok(transfer.run(&head, fd, size, kind, offset, length).await)
    }

    async fn drop(&mut self, conn: Resource<ClientConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

struct Reader {
    socket: Arc<TcpStream>,
    activity: Arc<Activity>,
    waits: Arc<WaitChannels>,
    closed: bool,
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
                self.activity.touch();
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
            let _waiting = self.waits.enter(Channel::Recv);
            // An error here shows up in the next read.
            let _ = self.socket.readable().await;
        }
    }
}

struct Writer {
    socket: Arc<TcpStream>,
    activity: Arc<Activity>,
    outgoing: Arc<Mutex<Outgoing>>,
    sending: Arc<AtomicU8>,
    waits: Arc<WaitChannels>,
}

impl Writer {
    fn push_pending(&self) -> MutexGuard<'_, Outgoing> {
        let mut out = lock(&self.outgoing);
        out.push(&self.socket, &self.activity);
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
        if !out.pending.is_empty() || bytes.len() > MAX_WRITE_PERMIT_BYTES {
            return Err(StreamError::Trap(wasmtime::format_err!(
                "write exceeded the permit given by check-write"
            )));
        }
        out.pending = bytes;
        out.push(&self.socket, &self.activity);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        failure(&mut self.push_pending())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        let mut out = self.push_pending();
        failure(&mut out)?;
        Ok(if out.pending.is_empty() {
            MAX_WRITE_PERMIT_BYTES
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
        let _waiting = self.waits.enter(self.channel());
        loop {
            if let Err(e) = self.socket.writable().await {
                lock(&self.outgoing).failed = Some(e);
                return;
            }
            if self.push_pending().done() {
                return;
            }
        }
    }
}
