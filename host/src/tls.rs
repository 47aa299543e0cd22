//! TLS material: certificates and private keys named by a module's `certificate` and
//! `private-key` options, read by the host in prestart (as root: the key may be readable by
//! root only), checked, and turned into a rustls server configuration. The key bytes stay in
//! the host; a module only ever sees the plaintext of its connections.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustls::ServerConfig;
use rustls::crypto::ring::{default_provider, sign::any_supported_type};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// Largest certificate chain or key file read: what it defends is host memory against a
/// mistyped path naming a huge file.
pub const MAX_PEM_FILE_BYTES: u64 = 1024 * 1024;

/// The ALPN protocols offered: only HTTP/1.1 (POP3 clients offer none, which is fine).
const ALPN: &[&[u8]] = &[b"http/1.1"];

/// Reads `cert` (a PEM chain, leaf first) and `key` (a PEM private key), checks that the
/// leaf is valid now and matches the key, and returns the server configuration.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>> {
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
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
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
