//! Connections: an accepted client connection, owned by the host, and
//! `serverkit:module/connection` on a view of the instance. Its transport (plain or TLS)
//! is in `transport`, its byte streams in `streams`, its file transfers in `send_file`,
//! STARTTLS in `start_tls`, the PROXY header a balancer sends before it all in `proxy`.

pub mod proxy;
mod receive;
pub mod send_file;
pub mod start_tls;
pub mod streams;
pub mod transport;

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rustls::ServerConfig;
use tokio::net::TcpStream;
use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream};

use self::streams::{Outgoing, Reader, StreamMeter, Writer};
use self::transport::Transport;
use crate::capabilities::files::host::GuestFile;
use crate::capabilities::tls::TlsSource;
use crate::contract::bindings::connection::{
    Host, HostConnection, ReceiveError, SendError, SendKind, ShutdownType,
};
use crate::contract::bindings::prestart::ListenerId;
use crate::meter::{Channel, CpuBudget, InstanceMeter};

/// What the connection interface reaches of an instance.
pub struct ConnectionView<'a> {
    /// The instance's resources.
    pub table: &'a mut ResourceTable,
    /// Where waits, CPU and the write permit are charged.
    pub meter: &'a InstanceMeter,
    /// The configuration `prestart.prepare-tls` loaded, for `start-tls`.
    pub starttls: Option<&'a Arc<TlsSource>>,
}

/// The connection interface, for `add_to_linker`.
pub struct Connections;

impl HasData for Connections {
    type Data<'a> = ConnectionView<'a>;
}

/// Most bytes handed to the guest by one read: what it defends is guest and host memory
/// against a guest asking for a gigantic buffer (wasmtime-wasi uses the same bound).
pub const MAX_READ_BYTES: usize = 64 * 1024;

/// When a connection last moved a byte (for the idle timeout), and whether its session
/// waits between requests (`connection.between-requests`, until the client's next bytes).
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    last_millis: AtomicU64,
    between_requests: AtomicBool,
    /// Whether the session ever said it was between requests: a protocol that marks its
    /// request boundaries is ended at one when a budget runs out.
    marks_boundaries: AtomicBool,
}

impl Activity {
    /// Activity starting now.
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            start: Instant::now(),
            last_millis: AtomicU64::new(0),
            between_requests: AtomicBool::new(false),
            marks_boundaries: AtomicBool::new(false),
        })
    }

    fn touch(&self) {
        self.last_millis
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// The client sent bytes: whatever the session said, it is inside a request now.
    fn received(&self) {
        self.touch();
        self.between_requests.store(false, Ordering::Relaxed);
    }

    /// Whether the session said it waits for the client's next request, and no byte came
    /// since.
    pub fn between_requests(&self) -> bool {
        self.between_requests.load(Ordering::Relaxed)
    }

    /// The session waits for the client's next request (`connection.between-requests`).
    pub fn set_between_requests(&self) {
        self.between_requests.store(true, Ordering::Relaxed);
        self.marks_boundaries.store(true, Ordering::Relaxed);
    }

    /// Whether the session ever said it was between requests.
    pub fn marks_boundaries(&self) -> bool {
        self.marks_boundaries.load(Ordering::Relaxed)
    }

    /// Time since the last byte moved.
    pub fn idle_for(&self) -> std::time::Duration {
        let last = std::time::Duration::from_millis(self.last_millis.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// Where the bytes a client took are counted: its connection's activity (the idle
/// timeout) and its session's CPU budget (a new stretch every
/// [`STRETCH_BYTES`](crate::meter::STRETCH_BYTES)).
#[derive(Clone)]
pub(super) struct Delivery {
    activity: Arc<Activity>,
    cpu: Arc<CpuBudget>,
}

impl Delivery {
    fn new(activity: Arc<Activity>, cpu: Arc<CpuBudget>) -> Self {
        Delivery { activity, cpu }
    }

    /// The socket took `bytes` for the client.
    pub(super) fn sent(&self, bytes: usize) {
        self.activity.touch();
        self.cpu.delivered(bytes);
    }
}

/// The host side of a `connection` resource.
pub struct ClientConnection {
    socket: Arc<Transport>,
    peer: SocketAddr,
    listener: ListenerId,
    activity: Arc<Activity>,
    outgoing: Arc<Mutex<Outgoing>>,
    /// What the guest says it is sending (a `SendKind` as u8), for the wait channels.
    sending: Arc<AtomicU8>,
    streams_taken: bool,
}

impl ClientConnection {
    /// Wraps an accepted socket; with `tls`, the host terminates TLS on it.
    pub fn new(
        socket: TcpStream,
        peer: SocketAddr,
        listener: ListenerId,
        activity: Arc<Activity>,
        tls: Option<Arc<ServerConfig>>,
    ) -> io::Result<Self> {
        // Responses are written whole (or with MSG_MORE before a sendfile): waiting for
        // Nagle would only add latency to small answers.
        socket.set_nodelay(true)?;
        let transport = match tls {
            Some(config) => Transport::tls(socket, config)?,
            None => Transport::plain(socket),
        };
        Ok(ClientConnection {
            socket: Arc::new(transport),
            peer,
            listener,
            activity,
            outgoing: Arc::default(),
            sending: Arc::new(AtomicU8::new(SendKind::Body as u8)),
            streams_taken: false,
        })
    }
}

impl ClientConnection {
    /// What a transfer by the host (send-file, STARTTLS) needs, `cpu` the session's budget.
    fn transfer(&self, cpu: &Arc<CpuBudget>) -> send_file::Transfer {
        send_file::Transfer {
            socket: self.socket.clone(),
            delivery: Delivery::new(self.activity.clone(), cpu.clone()),
            outgoing: self.outgoing.clone(),
        }
    }

    /// Its transport, for the session to count TLS handshakes once it ends.
    pub fn transport(&self) -> Arc<Transport> {
        self.socket.clone()
    }
}

impl Host for ConnectionView<'_> {}

impl ConnectionView<'_> {
    fn stream_meter(&self) -> StreamMeter {
        StreamMeter {
            waits: self.meter.waits.clone(),
            cpu: self.meter.cpu.clone(),
            first_limit: self.meter.first_limit.clone(),
            module: self.meter.module.clone(),
        }
    }
}

impl HostConnection for ConnectionView<'_> {
    async fn peer_address(&mut self, conn: Resource<ClientConnection>) -> wasmtime::Result<String> {
        Ok(self.table.get(&conn)?.peer.to_string())
    }

    async fn local_address(
        &mut self,
        conn: Resource<ClientConnection>,
    ) -> wasmtime::Result<String> {
        // Asked of the socket only when a module wants it: a `getsockname` per accepted
        // connection was about 1% of a connection-per-request profile.
        let local = self.table.get(&conn)?.socket.socket.local_addr();
        Ok(local
            .map_err(|e| wasmtime::Error::msg(format!("the connection's local address: {e}")))?
            .to_string())
    }

    async fn listener(&mut self, conn: Resource<ClientConnection>) -> wasmtime::Result<ListenerId> {
        Ok(self.table.get(&conn)?.listener)
    }

    async fn streams(
        &mut self,
        conn: Resource<ClientConnection>,
    ) -> wasmtime::Result<Option<(Resource<DynInputStream>, Resource<DynOutputStream>)>> {
        let meter = self.stream_meter();
        let c = self.table.get_mut(&conn)?;
        if c.streams_taken {
            return Ok(None);
        }
        c.streams_taken = true;
        let reader: DynInputStream = Box::new(Reader::new(
            c.socket.clone(),
            c.activity.clone(),
            meter.clone(),
        ));
        let writer: DynOutputStream = Box::new(Writer::new(
            c.socket.clone(),
            c.activity.clone(),
            c.outgoing.clone(),
            c.sending.clone(),
            meter,
        ));
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
        if how != Shutdown::Read {
            c.socket.close_notify();
        }
        // The peer may be gone already; there is nothing useful to tell the guest then.
        let _ = socket2::SockRef::from(c.socket.socket.as_ref()).shutdown(how);
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
        let transfer = self.table.get(&conn)?.transfer(&self.meter.cpu);
        let file = self.table.get(&file)?;
        let (fd, size, kind) = (file.fd.clone(), file.metadata.size, file.metadata.kind);
        if head.len() > self.meter.module.budgets.buffered {
            return Ok(Err(SendError::HeadTooLong));
        }
        let _waiting = self.meter.waits.enter(Channel::Sendfile);
        Ok(transfer.run(head, fd, size, kind, offset, length).await)
    }

    async fn is_tls(&mut self, conn: Resource<ClientConnection>) -> wasmtime::Result<bool> {
        Ok(self.table.get(&conn)?.socket.is_tls())
    }

    async fn start_tls(
        &mut self,
        conn: Resource<ClientConnection>,
        reply: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        let Some(config) = self.starttls.map(|source| source.config()) else {
            return Ok(Err(
                "no certificate was prepared in prestart (prepare-tls)".into()
            ));
        };
        let transfer = self.table.get(&conn)?.transfer(&self.meter.cpu);
        Ok(start_tls::start(&transfer, &reply, config).await)
    }

    async fn between_requests(&mut self, conn: Resource<ClientConnection>) -> wasmtime::Result<()> {
        self.table.get(&conn)?.activity.set_between_requests();
        Ok(())
    }

    async fn receive(
        &mut self,
        conn: Resource<ClientConnection>,
        max_bytes: u64,
        timeout_ns: u64,
        between_requests: bool,
    ) -> wasmtime::Result<Result<Vec<u8>, ReceiveError>> {
        let c = self.table.get(&conn)?;
        let (transport, activity) = (c.socket.clone(), c.activity.clone());
        let receive = receive::Receive {
            transport: &transport,
            activity: &activity,
            waits: &self.meter.waits,
            cpu: &self.meter.cpu,
        };
        let timeout = std::time::Duration::from_nanos(timeout_ns);
        Ok(receive.run(max_bytes, timeout, between_requests).await)
    }

    async fn drop(&mut self, conn: Resource<ClientConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}
