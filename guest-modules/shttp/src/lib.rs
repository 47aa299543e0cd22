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
//! the health check), `path`, `range`, `conditional`, `mime`, `autoindex`, `access_log`
//! (pure logic with unit tests), `response` (heads), `io` (streams with deadlines),
//! `settings` (vocabulary).
//! The contract comes from `serverkit-sdk`; docs/shttp.md is the operator's guide.

pub mod access_log;
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

use serverkit_sdk::describe::SERVERKIT_AUTHORS;
use serverkit_sdk::{Connection, Descriptor, Module, Version, filesystem, listen};

struct Shttp;

impl Module for Shttp {
    fn describe() -> Descriptor {
        Descriptor::new(
            "shttp",
            "Static HTTP/1.1 server: files under doc_root, sent by the host with sendfile",
            Version::new(1, 0, 0),
        )
        .author(SERVERKIT_AUTHORS)
        .options(settings::vocabulary())
    }

    fn prestart() -> Result<(), String> {
        if filesystem::granted_directory("doc_root").is_none() {
            return Err("doc_root is not set".into());
        }
        settings::check()?;
        listen::plain()?;
        listen::offer_alpn(&["http/1.1"])?;
        listen::tls("tls_port")?;
        Ok(())
    }

    fn session(conn: Connection) -> Result<(), String> {
        let root = filesystem::granted_directory("doc_root").ok_or("doc_root is not granted")?;
        let io = io::Streams::new(&conn)?;
        session::Session::new(&conn, io, root, settings::Settings::load()).run();
        Ok(())
    }
}

serverkit_sdk::export!(Shttp);
