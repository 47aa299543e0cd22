//! The accept path's PROXY protocol step, for a module with `proxy_protocol = true`: a
//! connection from outside `proxy_protocol_from` is closed at once; a trusted one must
//! start with a PROXY header, read within [`PROXY_HEADER_TIMEOUT`] before anything else
//! (TLS included), whose client then is the session's peer everywhere: `peer-address`,
//! log lines, the module's own logs, the session record. A failure ends only that
//! connection, with a log line, and is counted for the report.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use super::stats::SessionStats;
use crate::capabilities::connection::proxy::{self, Proxied};
use crate::options::proxy::ProxyProtocol;

/// Longest wait for a whole PROXY header. A balancer writes it as soon as it connects;
/// what it defends is a session permit held by a trusted address that sends nothing.
pub const PROXY_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The session's peer: the socket's, or with the PROXY protocol on, the client its header
/// names (the socket's for a header that names none: a balancer's health check). `None`
/// when the connection must end; that is logged and counted.
pub async fn client_of(
    socket: &mut TcpStream,
    peer: SocketAddr,
    options: &ProxyProtocol,
    module: &str,
    stats: &SessionStats,
) -> Option<SocketAddr> {
    if !options.enabled {
        return Some(peer);
    }
    if !options.trusts(peer.ip()) {
        SessionStats::bump(&stats.proxy_refused);
        tracing::warn!(
            module,
            %peer,
            "connection refused: not from an address in proxy_protocol_from"
        );
        return None;
    }
    match proxy::read(socket, PROXY_HEADER_TIMEOUT).await {
        Ok(Proxied {
            addresses: Some((client, _)),
            ..
        }) => Some(client),
        Ok(_) => Some(peer),
        Err(error) => {
            SessionStats::bump(&stats.proxy_failed);
            tracing::warn!(module, %peer, "connection closed: {error}");
            None
        }
    }
}
