//! `connection.start-tls`: STARTTLS in place (POP3 `STLS`), with the plaintext the client
//! sent before the handshake thrown away (the STARTTLS command-injection bug class).

use std::sync::Arc;

use rustls::ServerConfig;

use super::send_file::Transfer;

/// Longest plaintext reply `start-tls` sends before the handshake: what it defends is host
/// memory against a guest passing a huge buffer.
pub const MAX_STARTTLS_REPLY_BYTES: usize = 1024;

/// Drains the output stream, discards unread input, sends `reply` in plaintext, and turns
/// TLS on. The order matters: the client may begin its handshake only after it has the
/// reply, so every byte discarded was sent before it (injected, never to be run), and no
/// byte of the handshake can be discarded.
pub(super) async fn start(
    transfer: &Transfer,
    reply: &[u8],
    config: Arc<ServerConfig>,
) -> Result<(), String> {
    if reply.len() > MAX_STARTTLS_REPLY_BYTES {
        return Err(format!(
            "the reply is longer than {MAX_STARTTLS_REPLY_BYTES} bytes"
        ));
    }
    if transfer.socket.is_tls() {
        return Err("TLS is already active".into());
    }
    let failed = |e: std::io::Error| format!("start-tls: {e}");
    transfer.drain_stream().await.map_err(failed)?;
    transfer.socket.discard_input().map_err(failed)?;
    transfer.send_all(reply, false).await.map_err(failed)?;
    transfer.socket.start_tls(config).map_err(failed)
}
