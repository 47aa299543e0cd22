//! Binding the listeners a module's section names, in `prestart`: the `address`, `port`
//! and `backlog` options (see [`crate::describe::listen_options`]), and a TLS port beside
//! them.

use crate::config;
use crate::prestart::{self, ListenerId};

/// The option naming the address to listen on.
pub const ADDRESS: &str = "address";
/// The option naming the TCP port.
pub const PORT: &str = "port";
/// The option naming the listen backlog.
pub const BACKLOG: &str = "backlog";
/// The options a TLS listener's certificate chain and private key come from.
pub const CERTIFICATE: &str = "certificate";
/// See [`CERTIFICATE`].
pub const PRIVATE_KEY: &str = "private_key";

/// Where the section says to listen.
struct Endpoint {
    address: String,
    backlog: u32,
}

fn endpoint() -> Result<Endpoint, String> {
    Ok(Endpoint {
        address: config::text(ADDRESS).unwrap_or_else(|| "0.0.0.0".into()),
        backlog: config::integer_as(BACKLOG)?.unwrap_or(128),
    })
}

/// Binds `address:port` with `backlog`; the host allows it only in prestart and only for
/// the values of the section's own options.
pub fn plain() -> Result<ListenerId, String> {
    let at = endpoint()?;
    let port = config::integer_as::<u16>(PORT)?.ok_or("port is not set")?;
    prestart::bind_listener(&at.address, port, at.backlog)
        .map_err(|e| format!("cannot listen on {}:{port}: {e:?}", at.address))
}

/// The application protocols (ALPN) the module's TLS listeners and STARTTLS offer from now
/// on, e.g. `["pop3"]`: a client offering only others is refused, one offering none is
/// served. Call before [`tls`] or `prestart::prepare_tls`.
pub fn offer_alpn(protocols: &[&str]) -> Result<(), String> {
    let protocols: Vec<String> = protocols.iter().map(|p| p.to_string()).collect();
    prestart::offer_alpn(&protocols).map_err(|e| format!("cannot offer ALPN {protocols:?}: {e:?}"))
}

/// When the option `port_key` is set, binds a TLS listener on it at `address`, with the
/// host terminating TLS with the `certificate` and `private_key` options' files.
pub fn tls(port_key: &str) -> Result<Option<ListenerId>, String> {
    let Some(port) = config::integer_as::<u16>(port_key)? else {
        return Ok(None);
    };
    let at = endpoint()?;
    prestart::bind_tls_listener(&at.address, port, at.backlog, CERTIFICATE, PRIVATE_KEY)
        .map(Some)
        .map_err(|e| format!("cannot listen with TLS on {}:{port}: {e:?}", at.address))
}
