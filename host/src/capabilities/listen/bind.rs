//! Listening sockets: bound by the host at prestart (as root, so ports below 1024 work),
//! held for the life of the process, and never given to a guest.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;

use anyhow::{Context, Result};
use socket2::{Domain, Protocol, Socket, Type};

/// A listener bound on a module's behalf.
#[derive(Debug)]
pub struct BoundListener {
    /// The module's id for it (the order of its `bind-listener` calls).
    pub id: u32,
    /// The address actually bound (with the real port when 0 was asked).
    pub local_addr: SocketAddr,
    /// The socket, non-blocking, ready for tokio.
    pub socket: TcpListener,
    /// With TLS: the configuration (certificate and key) the host terminates it with.
    pub tls: Option<Arc<crate::capabilities::tls::TlsSource>>,
}

/// Binds `ip:port` with `backlog`, non-blocking, with `SO_REUSEADDR` so a restarted server
/// can bind again while old connections sit in TIME_WAIT.
pub fn bind(ip: IpAddr, port: u16, backlog: u32) -> Result<BoundListener> {
    let addr = SocketAddr::new(ip, port);
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .with_context(|| format!("failed to create a socket for {addr}"))?;
    socket
        .set_reuse_address(true)
        .with_context(|| format!("failed to set SO_REUSEADDR on {addr}"))?;
    if ip.is_ipv6() {
        socket
            .set_only_v6(true)
            .with_context(|| format!("failed to set IPV6_V6ONLY on {addr}"))?;
    }
    socket
        .bind(&addr.into())
        .with_context(|| format!("failed to bind {addr}"))?;
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    socket
        .listen(backlog)
        .with_context(|| format!("failed to listen on {addr}"))?;
    socket
        .set_nonblocking(true)
        .with_context(|| format!("failed to make {addr} non-blocking"))?;
    let socket: TcpListener = socket.into();
    let local_addr = socket
        .local_addr()
        .with_context(|| format!("failed to read the address bound for {addr}"))?;
    Ok(BoundListener {
        id: 0,
        local_addr,
        socket,
        tls: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_an_ephemeral_port_and_reports_it() {
        let l = bind(IpAddr::from([127, 0, 0, 1]), 0, 16).unwrap();
        assert_ne!(l.local_addr.port(), 0);
        std::net::TcpStream::connect(l.local_addr).unwrap();
    }

    #[test]
    fn a_taken_port_is_an_error_naming_the_address() {
        let first = bind(IpAddr::from([127, 0, 0, 1]), 0, 16).unwrap();
        let err = bind(IpAddr::from([127, 0, 0, 1]), first.local_addr.port(), 16).unwrap_err();
        assert!(
            format!("{err:#}").contains(&first.local_addr.to_string()),
            "{err:#}"
        );
    }
}
