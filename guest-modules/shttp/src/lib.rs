//! shttp: the static HTTP/1.1 module, ServerKit's benchmark winner reborn.
//!
//! The guest decides, the host moves the bytes: shttp parses requests (with `httparse`),
//! resolves paths beneath `doc_root` (a directory handle the host opened in prestart;
//! the host's `openat2(RESOLVE_BENEATH)` keeps every lookup inside), evaluates
//! conditionals and ranges, writes the response head, and asks the host to `send-file`
//! the range: file bytes go from the page cache to the socket and never enter the guest.
//!
//! Layout: `session` (the connection loop), `request` (heads and framing), `serve`
//! (answers for files: conditionals, ranges), `directory` (redirects, index, listings,
//! the health check), `path`, `range`, `conditional`, `mime`, `autoindex` (pure logic with unit
//! tests), `response` (heads), `io` (streams with deadlines), `settings` (vocabulary).
//! docs/shttp.md is the operator's guide.

wit_bindgen::generate!({
    world: "module",
    path: "../../wit",
    with: {
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/error@0.2.12": wasip2::io::error,
    },
});

pub mod autoindex;
pub mod conditional;
pub mod directory;
pub mod io;
pub mod mime;
pub mod path;
pub mod range;
pub mod request;
pub mod response;
pub mod serve;
pub mod session;
pub mod settings;

use serverkit::module::{filesystem, prestart, types};
use types::Version;

struct Shttp;

impl Guest for Shttp {
    fn describe() -> Descriptor {
        Descriptor {
            name: "shttp".into(),
            description:
                "Static HTTP/1.1 server: files under doc_root, sent by the host with sendfile"
                    .into(),
            version: Version {
                major: 1,
                minor: 0,
                patch: 0,
            },
            // The contract version this module was generated from (wit/).
            contract: Version {
                major: 1,
                minor: 0,
                patch: 0,
            },
            authors: vec!["The serverkit developers".into()],
            vocabulary: settings::vocabulary(),
        }
    }

    fn construct() -> Result<(), String> {
        Ok(())
    }

    fn prestart() -> Result<(), String> {
        let address = settings::string("address").unwrap_or_else(|| "0.0.0.0".into());
        let port = settings::integer("port").unwrap_or(80);
        let backlog = settings::integer("backlog").unwrap_or(511);
        let port = u16::try_from(port).map_err(|_| format!("port {port} is out of range"))?;
        let backlog =
            u32::try_from(backlog).map_err(|_| format!("backlog {backlog} is out of range"))?;
        if filesystem::granted_directory("doc_root").is_none() {
            return Err("doc_root is not set".into());
        }
        prestart::bind_listener(&address, port, backlog)
            .map_err(|e| format!("cannot listen on {address}:{port}: {e:?}"))?;
        if let Some(tls_port) = settings::integer("tls_port") {
            let tls_port = u16::try_from(tls_port)
                .map_err(|_| format!("tls_port {tls_port} is out of range"))?;
            prestart::bind_tls_listener(&address, tls_port, backlog, "certificate", "private_key")
                .map_err(|e| format!("cannot listen with TLS on {address}:{tls_port}: {e:?}"))?;
        }
        Ok(())
    }

    fn operator() -> Result<(), String> {
        Ok(())
    }

    fn session(conn: Connection) -> Result<(), String> {
        let root = filesystem::granted_directory("doc_root").ok_or("doc_root is not granted")?;
        let session = session::Session {
            io: io::Streams::new(&conn)?,
            conn: &conn,
            root,
            settings: settings::Settings::load(),
            mime_table: None,
        };
        session.run();
        Ok(())
    }

    fn report() -> Vec<String> {
        Vec::new()
    }
}

export!(Shttp);
