//! TLS material: certificates and private keys named by a module's `certificate` and
//! `private-key` options (its [`TlsGrant`]), read by the host at prestart (as root: the key
//! may be readable by root only), checked, and turned into a rustls server configuration.
//! The key bytes stay in the host; a module only ever sees the plaintext of its
//! connections.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use anyhow::{Context, Result, bail};
use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::crypto::ring::{default_provider, sign::any_supported_type};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// Largest certificate chain or key file read: what it defends is host memory against a
/// mistyped path naming a huge file.
pub const MAX_PEM_FILE_BYTES: u64 = 1024 * 1024;

/// Most ALPN protocols a module may offer: what it defends is the handshake's size.
pub const MAX_ALPN_PROTOCOLS: usize = 8;

/// TLS sessions the process remembers for resumption by session ID (TLS 1.2 clients
/// without tickets): what it defends is host memory.
const SESSION_CACHE_ENTRIES: usize = 4096;

/// How every TLS configuration of the process resumes sessions: one ticketer (TLS 1.3
/// tickets and TLS 1.2 tickets, keys rotated by rustls; `None` if the system could not
/// make one) and one session-ID cache, shared by every listener, STARTTLS and reload, so
/// that resumption behaves the same on every port and survives a certificate reload.
type Resumption = (
    Option<Arc<dyn rustls::server::ProducesTickets>>,
    Arc<dyn rustls::server::StoresServerSessions>,
);

fn resumption() -> &'static Resumption {
    static RESUMPTION: OnceLock<Resumption> = OnceLock::new();
    RESUMPTION.get_or_init(|| {
        let ticketer = rustls::crypto::ring::Ticketer::new()
            .inspect_err(|e| tracing::warn!("no TLS session tickets: {e}"))
            .ok();
        let sessions = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES);
        (ticketer, sessions)
    })
}

/// A section's `certificate` and `private-key` options with the files they name.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TlsGrant {
    /// Its `certificate` options: name and file.
    pub certificates: Vec<(String, PathBuf)>,
    /// Its `private-key` options: name and file.
    pub keys: Vec<(String, PathBuf)>,
}

impl TlsGrant {
    /// The files of the certificate option `cert` and the key option `key`, or why not.
    pub fn pair(&self, cert: &str, key: &str) -> Result<(PathBuf, PathBuf), String> {
        let find = |options: &[(String, PathBuf)], name: &str, what: &str| {
            options
                .iter()
                .find(|(option, _)| option == name)
                .map(|(_, path)| path.clone())
                .ok_or_else(|| format!("`{name}` is not a {what} option with a value"))
        };
        Ok((
            find(&self.certificates, cert, "certificate")?,
            find(&self.keys, key, "private-key")?,
        ))
    }
}

/// Checks protocols a module offers: 1 to [`MAX_ALPN_PROTOCOLS`] of them, each 1 to 255
/// bytes (RFC 7301).
pub fn alpn(protocols: &[String]) -> Result<Vec<Vec<u8>>, String> {
    if protocols.len() > MAX_ALPN_PROTOCOLS {
        return Err(format!("at most {MAX_ALPN_PROTOCOLS} ALPN protocols"));
    }
    protocols
        .iter()
        .map(|p| match p.len() {
            1..=255 => Ok(p.as_bytes().to_vec()),
            _ => Err(format!("ALPN protocol `{p}` must be 1 to 255 bytes")),
        })
        .collect()
}

/// Reads `cert` (a PEM chain, leaf first) and `key` (a PEM private key), checks that the
/// leaf is valid now and matches the key, and returns the server configuration offering
/// the `alpn` protocols (none: no ALPN negotiated).
pub fn server_config(cert: &Path, key: &Path, alpn: &[Vec<u8>]) -> Result<Arc<ServerConfig>> {
    let chain = read_chain(cert)?;
    check_validity(cert, &chain[0])?;
    let key_der = read_key(key)?;
    let signing = any_supported_type(&key_der)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("unsupported private key in {}", key.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| {
        anyhow::anyhow!(
            "the private key {} does not match the certificate {}: {e}",
            key.display(),
            cert.display()
        )
    })?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .context("rustls refused its default protocol versions")?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    config.alpn_protocols = alpn.to_vec();
    // The server's order of cipher suites, not the client's: rustls' order puts the
    // strongest first (AES-256-GCM, then ChaCha20, then AES-128-GCM).
    config.ignore_client_order = true;
    let (ticketer, sessions) = resumption();
    if let Some(ticketer) = ticketer {
        config.ticketer = ticketer.clone();
    }
    config.session_storage = sessions.clone();
    Ok(Arc::new(config))
}

/// A certificate and key read at prestart, which a reload may replace: new handshakes
/// use the current configuration, established sessions keep theirs.
pub struct TlsSource {
    cert: PathBuf,
    key: PathBuf,
    alpn: Vec<Vec<u8>>,
    current: ArcSwap<ServerConfig>,
}

impl std::fmt::Debug for TlsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key material: the paths only.
        f.debug_struct("TlsSource")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Every live source, for [`reload_all`].
static SOURCES: Mutex<Vec<Weak<TlsSource>>> = Mutex::new(Vec::new());

impl TlsSource {
    /// Reads and checks `cert` and `key` (see [`server_config`]) and registers the source
    /// for [`reload_all`].
    pub fn load(cert: &Path, key: &Path, alpn: &[Vec<u8>]) -> Result<Arc<Self>> {
        let source = Arc::new(TlsSource {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            alpn: alpn.to_vec(),
            current: ArcSwap::new(server_config(cert, key, alpn)?),
        });
        let mut sources = SOURCES.lock().unwrap_or_else(|p| p.into_inner());
        sources.retain(|s| s.strong_count() > 0);
        sources.push(Arc::downgrade(&source));
        Ok(source)
    }

    /// The configuration a new handshake uses.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// Reads the files again; on any error the current configuration stays.
    pub fn reload(&self) -> Result<()> {
        self.current
            .store(server_config(&self.cert, &self.key, &self.alpn)?);
        Ok(())
    }
}

/// Reloads every certificate and key in use (for SIGHUP): each source whose files read
/// and check correctly switches for new handshakes; the others keep their configuration
/// and their errors are returned. Runs with the process's credentials of the moment: after
/// the root drop, a key readable by root only cannot be read again.
pub fn reload_all() -> Vec<anyhow::Error> {
    let sources: Vec<_> = SOURCES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    sources.iter().filter_map(|s| s.reload().err()).collect()
}

fn read_pem(path: &Path) -> Result<Vec<u8>> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("failed to read {}", path.display()))?
        .len();
    if size > MAX_PEM_FILE_BYTES {
        bail!(
            "{} is {size} bytes, more than the {MAX_PEM_FILE_BYTES} a PEM file may have",
            path.display()
        );
    }
    std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read_pem(path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("malformed PEM certificate in {}", path.display()))?;
    if chain.is_empty() {
        bail!("no certificate found in {}", path.display());
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let pem = read_pem(path)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("no usable PEM private key in {}", path.display()))
}

/// Refuses a leaf certificate that is expired or not yet valid.
fn check_validity(path: &Path, leaf: &CertificateDer<'_>) -> Result<()> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("malformed certificate in {}", path.display()))?;
    let validity = cert.validity();
    let now = x509_parser::time::ASN1Time::now();
    if now > validity.not_after {
        bail!(
            "the certificate {} expired on {}",
            path.display(),
            validity.not_after
        );
    }
    if now < validity.not_before {
        bail!(
            "the certificate {} is not valid before {}",
            path.display(),
            validity.not_before
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a fresh self-signed certificate and its key (or another key) into `dir`.
    fn write_pair(dir: &Path, matching: bool) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let key = if matching {
            key
        } else {
            rcgen::KeyPair::generate().unwrap()
        };
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    #[test]
    fn a_reload_switches_only_when_the_new_files_are_good() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_pair(dir.path(), true);
        let source = TlsSource::load(&cert, &key, &[b"pop3".to_vec()]).unwrap();
        let first = source.config();
        write_pair(dir.path(), true);
        assert!(reload_all().is_empty());
        let second = source.config();
        assert!(
            !Arc::ptr_eq(&first, &second),
            "new handshakes use the new pair"
        );
        assert_eq!(
            second.alpn_protocols,
            [b"pop3".to_vec()],
            "the protocols stay"
        );
        write_pair(dir.path(), false);
        let errors = source.reload().unwrap_err();
        assert!(
            format!("{errors:#}").contains("does not match"),
            "{errors:#}"
        );
        assert!(
            Arc::ptr_eq(&second, &source.config()),
            "a bad pair is not taken"
        );
    }
}
