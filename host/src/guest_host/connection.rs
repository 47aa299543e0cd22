//! `serverkit:module/connection`: an accepted client connection, owned by the host, and
//! its `wasi:io` byte streams. Reads and writes are non-blocking `try_read`/`try_write`
//! on the tokio socket; a guest's blocking read or write waits in `Pollable::ready`, so
//! a waiting session costs no thread.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use tokio::net::TcpStream;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, InputStream, OutputStream, Pollable, StreamError, StreamResult,
};

use crate::contract::bindings::connection::{Host, HostConnection, ShutdownType};
use crate::contract::bindings::prestart::ListenerId;
use crate::guest_host::state::InstanceState;
use crate::sessions::waits::{Channel, Waiting};

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

    fn touch(&self) {
        self.last_millis
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Time since the last byte moved.
    pub fn idle_for(&self) -> std::time::Duration {
        let last = std::time::Duration::from_millis(self.last_millis.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// The host side of a `connection` resource.
pub struct ClientConnection {
    socket: Arc<TcpStream>,
    peer: SocketAddr,
    local: SocketAddr,
    listener: ListenerId,
    activity: Arc<Activity>,
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
        Ok(ClientConnection {
            socket: Arc::new(socket),
            peer,
            local,
            listener,
            activity,
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
            closed: false,
        });
        let writer: DynOutputStream = Box::new(Writer {
            socket: c.socket.clone(),
            activity: c.activity.clone(),
            pending: Bytes::new(),
            failed: None,
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

    async fn drop(&mut self, conn: Resource<ClientConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

struct Reader {
    socket: Arc<TcpStream>,
    activity: Arc<Activity>,
    closed: bool,
}

#[wasmtime_wasi::async_trait]
impl InputStream for Reader {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if self.closed {
            return Err(StreamError::Closed);
        }
        let mut buf = vec![0; size.min(MAX_READ_BYTES)];
        if buf.is_empty() {
            return Ok(Bytes::new());
        }
        match self.socket.try_read(&mut buf) {
            Ok(0) => {
                self.closed = true;
                Err(StreamError::Closed)
            }
            Ok(n) => {
                self.activity.touch();
                buf.truncate(n);
                Ok(buf.into())
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
            let _waiting = Waiting::on(Channel::Recv);
            // An error here shows up in the next read.
            let _ = self.socket.readable().await;
        }
    }
}

struct Writer {
    socket: Arc<TcpStream>,
    activity: Arc<Activity>,
    /// Bytes accepted from the guest that the socket has not taken yet.
    pending: Bytes,
    failed: Option<io::Error>,
}

impl Writer {
    /// Writes as much of `pending` as the socket takes now.
    fn push_pending(&mut self) {
        while !self.pending.is_empty() && self.failed.is_none() {
            match self.socket.try_write(&self.pending) {
                Ok(n) => {
                    self.activity.touch();
                    let _ = self.pending.split_to(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => self.failed = Some(e),
            }
        }
    }

    fn check_failed(&mut self) -> StreamResult<()> {
        match self.failed.take() {
            Some(e) => Err(StreamError::LastOperationFailed(e.into())),
            None => Ok(()),
        }
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for Writer {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.check_failed()?;
        if !self.pending.is_empty() || bytes.len() > MAX_WRITE_PERMIT_BYTES {
            return Err(StreamError::Trap(wasmtime::format_err!(
                "write exceeded the permit given by check-write"
            )));
        }
        self.pending = bytes;
        self.push_pending();
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.push_pending();
        self.check_failed()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.push_pending();
        self.check_failed()?;
        Ok(if self.pending.is_empty() {
            MAX_WRITE_PERMIT_BYTES
        } else {
            0
        })
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Writer {
    async fn ready(&mut self) {
        let _waiting = (!self.pending.is_empty()).then(|| Waiting::on(Channel::Send));
        while !self.pending.is_empty() && self.failed.is_none() {
            if let Err(e) = self.socket.writable().await {
                self.failed = Some(e);
                return;
            }
            self.push_pending();
        }
    }
}
