//! The PROXY protocol header (v1 text, v2 binary) a load balancer such as HAProxy writes
//! before the client's first byte, read off an accepted socket before anything else (before
//! TLS on a TLS listener) and exactly: not one byte of what the client sent after it is
//! consumed. The addresses are decoded by the `ppp` crate; the framing is ours, because
//! `ppp` parses a buffer and a stream must not be read past the header: bytes are peeked,
//! and only those the header spans are read.

use std::net::SocketAddr;
use std::time::Duration;

use ppp::{v1, v2};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Longest v1 header, CRLF included, as the specification bounds it.
pub const MAX_V1_BYTES: usize = 107;

/// Longest v2 header accepted, TLVs included: what it defends is host memory and the
/// session's permit against a sender announcing up to 64 KiB. HAProxy's own headers (the
/// addresses, and with `proxy-v2-options` a few TLVs such as the TLS details, a unique id
/// or the authority) stay far below it.
pub const MAX_V2_BYTES: usize = 1024;

/// The v2 signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// Bytes of a v2 header before its addresses: the signature, version and command, family
/// and protocol, and the length of the rest.
const V2_FIXED_BYTES: usize = 16;

/// How a connection's first bytes read as a PROXY header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A header of this many bytes starts the input.
    Complete(usize),
    /// The input is the start of a header: every byte of it belongs to the header.
    Incomplete,
    /// Not a header, or one past its size bound; why.
    Invalid(String),
}

/// Where the header of `bytes` ends, from its framing alone (the addresses are checked
/// when it is parsed).
pub fn frame(bytes: &[u8]) -> Frame {
    if bytes.first() == Some(&b'P') {
        return frame_v1(bytes);
    }
    let shown = bytes.len().min(V2_SIGNATURE.len());
    if bytes[..shown] != V2_SIGNATURE[..shown] {
        return Frame::Invalid("it starts with neither `PROXY ` nor the v2 signature".into());
    }
    if bytes.len() < V2_FIXED_BYTES {
        return Frame::Incomplete;
    }
    let total = V2_FIXED_BYTES + usize::from(u16::from_be_bytes([bytes[14], bytes[15]]));
    if total > MAX_V2_BYTES {
        return Frame::Invalid(format!(
            "its v2 header announces {total} bytes, more than the {MAX_V2_BYTES} accepted"
        ));
    }
    if bytes.len() >= total {
        Frame::Complete(total)
    } else {
        Frame::Incomplete
    }
}

fn frame_v1(bytes: &[u8]) -> Frame {
    const PREFIX: &[u8] = b"PROXY ";
    let shown = bytes.len().min(PREFIX.len());
    if bytes[..shown] != PREFIX[..shown] {
        return Frame::Invalid("it starts with neither `PROXY ` nor the v2 signature".into());
    }
    let line = &bytes[..bytes.len().min(MAX_V1_BYTES)];
    if let Some(lf) = line.iter().position(|b| *b == b'\n') {
        return if lf > 0 && line[lf - 1] == b'\r' {
            Frame::Complete(lf + 1)
        } else {
            Frame::Invalid("its v1 line ends without CRLF".into())
        };
    }
    if bytes.len() >= MAX_V1_BYTES {
        Frame::Invalid(format!(
            "its v1 line has no CRLF within {MAX_V1_BYTES} bytes"
        ))
    } else {
        Frame::Incomplete
    }
}

/// What a header said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proxied {
    /// 1 or 2.
    pub version: u8,
    /// The client and the address it connected to, for a proxied TCP connection; `None`
    /// for a v1 `UNKNOWN` or a v2 `LOCAL` (the balancer's own connection, such as a health
    /// check) and for families without a TCP address (AF_UNIX): the socket's peer stands.
    pub addresses: Option<(SocketAddr, SocketAddr)>,
}

/// Decodes a whole header (as [`frame`] delimited it). The version is told by the first
/// byte, as framing told it (`ppp`'s own guess reads a bad v2 header as a bad v1 one).
pub fn parse(header: &[u8]) -> Result<Proxied, String> {
    if header.first() != Some(&b'P') {
        return match v2::Header::try_from(header) {
            Ok(h) => parse_v2(&h),
            Err(e) => Err(format!("its v2 header is malformed: {}", reason(&e))),
        };
    }
    let h = v1::Header::try_from(header)
        .map_err(|e| format!("its v1 header is malformed: {}", reason(&e)))?;
    let addresses = match h.addresses {
        v1::Addresses::Tcp4(a) => Some((
            (a.source_address, a.source_port).into(),
            (a.destination_address, a.destination_port).into(),
        )),
        v1::Addresses::Tcp6(a) => Some((
            (a.source_address, a.source_port).into(),
            (a.destination_address, a.destination_port).into(),
        )),
        v1::Addresses::Unknown => None,
    };
    Ok(Proxied {
        version: 1,
        addresses,
    })
}

fn parse_v2(h: &v2::Header<'_>) -> Result<Proxied, String> {
    if h.command == v2::Command::Local {
        return Ok(Proxied {
            version: 2,
            addresses: None,
        });
    }
    if h.protocol == v2::Protocol::Datagram {
        return Err("its v2 header names a datagram (UDP) connection".into());
    }
    let addresses = match h.addresses {
        v2::Addresses::IPv4(a) => Some((
            (a.source_address, a.source_port).into(),
            (a.destination_address, a.destination_port).into(),
        )),
        v2::Addresses::IPv6(a) => Some((
            (a.source_address, a.source_port).into(),
            (a.destination_address, a.destination_port).into(),
        )),
        v2::Addresses::Unspecified | v2::Addresses::Unix(_) => None,
    };
    Ok(Proxied {
        version: 2,
        addresses,
    })
}

/// `ppp`'s message in our style: lowercase, no final period.
fn reason(error: &dyn std::error::Error) -> String {
    let text = error.to_string();
    let text = text.trim_end_matches('.');
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text.to_string(),
    }
}

/// Why a connection's header was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The peer closed before a whole header came.
    #[error("the connection closed before a whole PROXY header came ({0} bytes)")]
    Closed(usize),
    /// No whole header within the timeout.
    #[error("no whole PROXY header within {0:?} ({1} bytes came)")]
    Timeout(Duration, usize),
    /// Not a header, or a malformed one; the start of what came, escaped.
    #[error("not a valid PROXY header: {why}: `{start}`")]
    Malformed {
        /// What is wrong with it.
        why: String,
        /// What came, escaped and cut short.
        start: String,
    },
    /// The socket failed.
    #[error("reading the PROXY header failed: {0}")]
    Io(String),
}

/// Most bytes of a bad header quoted in its error.
const QUOTED_BYTES: usize = 48;

/// Reads the header that starts `socket`, within `limit`, and consumes exactly its bytes.
pub async fn read(socket: &mut TcpStream, limit: Duration) -> Result<Proxied, HeaderError> {
    let mut header = Vec::with_capacity(MAX_V1_BYTES + 1);
    match tokio::time::timeout(limit, read_frame(socket, &mut header)).await {
        Err(_) => return Err(HeaderError::Timeout(limit, header.len())),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(())) => {}
    }
    parse(&header).map_err(|why| malformed(why, &header))
}

fn malformed(why: String, bytes: &[u8]) -> HeaderError {
    let shown = &bytes[..bytes.len().min(QUOTED_BYTES)];
    let mut start = shown.escape_ascii().to_string();
    if bytes.len() > shown.len() {
        start.push_str("...");
    }
    HeaderError::Malformed { why, start }
}

/// Fills `header` with the whole header: peeks at what the socket holds, then reads only
/// the bytes the header spans. Once all that was peeked is taken, the next peek waits for
/// the socket (its readiness was used up), so a slow sender costs no busy loop.
async fn read_frame(socket: &mut TcpStream, header: &mut Vec<u8>) -> Result<(), HeaderError> {
    let io = |e: std::io::Error| HeaderError::Io(e.to_string());
    let mut peeked = [0u8; MAX_V2_BYTES];
    loop {
        // An incomplete header is shorter than its bound, so there is room.
        let room = MAX_V2_BYTES - header.len();
        let n = socket.peek(&mut peeked[..room]).await.map_err(io)?;
        if n == 0 {
            return Err(HeaderError::Closed(header.len()));
        }
        let before = header.len();
        header.extend_from_slice(&peeked[..n]);
        let complete = match frame(header) {
            Frame::Complete(total) => Some(total),
            Frame::Incomplete => None,
            Frame::Invalid(why) => return Err(malformed(why, header)),
        };
        let take = complete.map_or(n, |total| total - before);
        header.truncate(before + take);
        socket.read_exact(&mut peeked[..take]).await.map_err(io)?;
        if complete.is_some() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests;
