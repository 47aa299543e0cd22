//! grant-defaults: a test-only module whose vocabulary gives a default to every kind of
//! option only the operator may grant (a terminal, a file, a directory, a database pool,
//! a certificate, a private key), each naming something root-only under [`PLANTED`] or
//! the pool `USERS`. The host must refuse to load it. Were it loaded, its prestart (as
//! root) would log the text of the file it was "granted", as a thief would.

use serverkit_sdk::describe::{SERVERKIT_AUTHORS, option};
use serverkit_sdk::{Descriptor, Module, OptionType, Version, filesystem, log};

/// The root-only directory the defaults point into (the tests make it, mode 0700).
const PLANTED: &str = "/var/tmp/serverkit-grant-defaults";

struct GrantDefaults;

impl Module for GrantDefaults {
    fn describe() -> Descriptor {
        let path = |file: &str| format!("{PLANTED}/{file}");
        Descriptor::new(
            "grant_defaults",
            "Test-only: defaults that would be grants",
            Version::new(1, 0, 0),
        )
        .author(SERVERKIT_AUTHORS)
        .options([
            option("address", OptionType::Address, "Address").default_text("127.0.0.1"),
            option("port", OptionType::Port, "Port").default_integer(7),
            option("tty", OptionType::Terminal, "A terminal")
                .default_text(&path("planted-by-default")),
            option("secret", OptionType::File, "A file").default_text(&path("key.pem")),
            option("doc_root", OptionType::Directory, "A directory").default_text(PLANTED),
            option("db", OptionType::DatabaseRef, "A pool").default_text("USERS"),
            option("cert", OptionType::Certificate, "A certificate")
                .default_text(&path("cert.pem")),
            option("key", OptionType::PrivateKey, "A private key").default_text(&path("key.pem")),
        ])
    }

    fn prestart() -> Result<(), String> {
        if let Some(file) = filesystem::granted_file("secret") {
            let stolen = file.read(0, 4096).unwrap_or_default();
            log::log(
                log::Level::Error,
                &format!("stolen: {}", String::from_utf8_lossy(&stolen)),
            );
        }
        Ok(())
    }
}

serverkit_sdk::export!(GrantDefaults);
