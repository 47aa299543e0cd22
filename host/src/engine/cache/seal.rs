//! The seal on a cached artifact: an HMAC-SHA256 under the cache's secret key over the
//! artifact and what it was compiled from (the wasm's SHA-256) and for (the engine's
//! compatibility hash). Only a process holding the key can make one, and a seal made for
//! one module or engine does not verify for another, whatever the file is named.

use std::hash::{Hash, Hasher};

use anyhow::{Context, Result};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use wasmtime::Engine;

/// Bytes of the secret key.
pub const KEY_LEN: usize = 32;

/// Bytes of a seal (an HMAC-SHA256 tag), stored before the artifact.
pub const SEAL_LEN: usize = 32;

/// Put first in every MAC: keeps these tags apart from any other use of the key, and
/// names the layout of what follows (bump it when that layout changes).
const DOMAIN: &[u8] = b"serverkit compiled module v1\0";

/// The cache's secret key: read before the privilege drop, then kept in memory only.
#[derive(Clone)]
pub struct Key([u8; KEY_LEN]);

impl Key {
    /// A fresh key from the operating system's random source.
    pub fn random() -> Result<Key> {
        let mut bytes = [0; KEY_LEN];
        getrandom::fill(&mut bytes)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("failed to get random bytes for the cache key")?;
        Ok(Key(bytes))
    }

    /// A key from its bytes (as stored in the key file).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Key {
        Key(bytes)
    }

    /// Its bytes, to store in the key file.
    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    fn mac(&self, origin: &Origin, artifact: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        // Every field before the artifact has a fixed length, so the input parses one way.
        mac.update(DOMAIN);
        mac.update(&origin.engine);
        mac.update(&origin.wasm);
        mac.update(artifact);
        mac
    }

    /// The seal of `artifact`, compiled from and for `origin`.
    pub fn seal(&self, origin: &Origin, artifact: &[u8]) -> [u8; SEAL_LEN] {
        self.mac(origin, artifact).finalize().into_bytes().into()
    }

    /// Whether `seal` is this key's seal of `artifact` for `origin` (compared in constant
    /// time).
    pub fn verify(&self, origin: &Origin, artifact: &[u8], seal: &[u8]) -> bool {
        self.mac(origin, artifact).verify_slice(seal).is_ok()
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

/// What an artifact is compiled from and for: the module's wasm and the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// SHA-256 of the wasm bytes.
    pub wasm: [u8; 32],
    /// SHA-256 of the engine's precompile compatibility hash (its wasmtime version,
    /// compiler settings and features).
    pub engine: [u8; 32],
}

impl Origin {
    /// The origin of `wasm` compiled by `engine`.
    pub fn of(engine: &Engine, wasm: &[u8]) -> Origin {
        Origin {
            wasm: Sha256::digest(wasm).into(),
            engine: engine_digest(engine),
        }
    }

    /// The name its artifact is cached under: a prefix of each digest. The seal binds the
    /// whole digests, so an artifact under another origin's name is refused.
    pub fn file_name(&self) -> String {
        format!("{}-{}.cwasm", hex(&self.wasm[..16]), hex(&self.engine[..8]))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The engine's compatibility hash as bytes: wasmtime gives it as something to `Hash`,
/// which is fed to SHA-256 (stable across processes, unlike a seeded hasher).
fn engine_digest(engine: &Engine) -> [u8; 32] {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.finalize().into()
}

/// A `Hasher` that collects the bytes it is given into SHA-256.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// Unused: the digest is read from the inner SHA-256, not through `finish`.
    fn finish(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(wasm: &[u8], engine: u8) -> Origin {
        Origin {
            wasm: Sha256::digest(wasm).into(),
            engine: [engine; 32],
        }
    }

    const ARTIFACT: &[u8] = b"\x7fELF compiled code";

    #[test]
    fn a_seal_verifies_for_its_own_origin_and_bytes() {
        let key = Key::from_bytes([7; KEY_LEN]);
        let seal = key.seal(&origin(b"module x", 1), ARTIFACT);
        assert!(key.verify(&origin(b"module x", 1), ARTIFACT, &seal));
    }

    #[test]
    fn a_seal_does_not_verify_for_another_module() {
        let key = Key::from_bytes([7; KEY_LEN]);
        let seal = key.seal(&origin(b"module x", 1), ARTIFACT);
        assert!(!key.verify(&origin(b"module y", 1), ARTIFACT, &seal));
    }

    #[test]
    fn a_seal_does_not_verify_for_another_engine() {
        let key = Key::from_bytes([7; KEY_LEN]);
        let seal = key.seal(&origin(b"module x", 1), ARTIFACT);
        assert!(!key.verify(&origin(b"module x", 2), ARTIFACT, &seal));
    }

    #[test]
    fn a_seal_does_not_verify_for_altered_bytes_or_under_another_key() {
        let key = Key::from_bytes([7; KEY_LEN]);
        let seal = key.seal(&origin(b"module x", 1), ARTIFACT);
        let mut altered = ARTIFACT.to_vec();
        altered[5] ^= 1;
        assert!(!key.verify(&origin(b"module x", 1), &altered, &seal));
        let other = Key::from_bytes([8; KEY_LEN]);
        assert!(!other.verify(&origin(b"module x", 1), ARTIFACT, &seal));
        assert!(!key.verify(&origin(b"module x", 1), ARTIFACT, &seal[..31]));
    }

    #[test]
    fn the_file_name_follows_the_wasm_and_the_engine() {
        let name = origin(b"module x", 1).file_name();
        assert!(name.ends_with("-0101010101010101.cwasm"), "{name}");
        assert_eq!(name.len(), 32 + 1 + 16 + ".cwasm".len());
        assert_ne!(name, origin(b"module y", 1).file_name());
        assert_ne!(name, origin(b"module x", 2).file_name());
    }

    #[test]
    fn engines_configured_differently_have_different_digests_and_one_engine_a_stable_one() {
        let pooled = crate::engine::new(&crate::engine::PoolPlan::SMALL).unwrap();
        let plain = Engine::default();
        assert_eq!(engine_digest(&pooled), engine_digest(&pooled.clone()));
        assert_eq!(
            engine_digest(&pooled),
            engine_digest(&crate::engine::new(&crate::engine::PoolPlan::SMALL).unwrap())
        );
        assert_ne!(engine_digest(&pooled), engine_digest(&plain));
    }

    #[test]
    fn random_keys_differ() {
        assert_ne!(
            Key::random().unwrap().bytes(),
            Key::random().unwrap().bytes()
        );
    }
}
