//! The compiled-module cache: `Component::serialize` output on disk, so that a restart (or
//! a hot swap back to a version seen before) skips compilation.
//!
//! A cached artifact is native code the host will run, and the service user can write
//! where artifacts are kept. So each artifact is sealed (`seal`) under a key only the
//! starting user can read, read before the privilege drop and then kept in memory
//! (`layout`), and is loaded only if its seal verifies for the module's wasm and this
//! engine, from the very bytes that were checked (`artifacts`). Anything else is
//! discarded with one warning and the module compiled afresh. One cache serves the whole
//! process, startup and hot swaps alike (docs/architecture.md, "Compiled-module cache").

mod artifacts;
mod layout;
mod seal;

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail, ensure};
use wasmtime::Engine;
use wasmtime::component::Component;

use artifacts::MAX_ARTIFACT_BYTES;
use seal::{Key, Origin, SEAL_LEN};

/// Compiled components on disk, sealed, keyed by the wasm's content and the engine's
/// compatibility hash.
pub struct ComponentCache {
    store: Option<Store>,
}

/// An opened cache.
struct Store {
    key: Key,
    /// The artifacts' subdirectory, opened before the privilege drop.
    artifacts: OwnedFd,
    /// Its path, for messages.
    shown: PathBuf,
    /// The uid modules are served as, which must be able to read what root writes.
    serving_uid: u32,
}

impl ComponentCache {
    /// The process's cache in the default directory ([`ComponentCache::default_dir`]),
    /// for modules served as `serving_uid` (the uid after the privilege drop, else the
    /// caller's). Call it before the drop: the key and the directories are read then. When
    /// the directory is missing or unsafe there is no cache, and one warning says why.
    pub fn open(serving_uid: u32) -> ComponentCache {
        let Some(dir) = ComponentCache::default_dir() else {
            tracing::warn!(
                "not caching compiled modules: no cache directory (set SERVERKIT_CACHE_DIR or HOME)"
            );
            return ComponentCache::disabled();
        };
        match ComponentCache::at(&dir, serving_uid) {
            Ok(cache) => cache,
            Err(e) => {
                tracing::warn!("not caching compiled modules: {e:#}");
                ComponentCache::disabled()
            }
        }
    }

    /// A cache in `dir` for modules served as `serving_uid`, or why it cannot be used.
    pub fn at(dir: &Path, serving_uid: u32) -> Result<ComponentCache> {
        let layout = layout::open(dir, serving_uid)?;
        tracing::debug!(dir = %layout.shown.display(), "compiled-module cache");
        Ok(ComponentCache {
            store: Some(Store {
                key: layout.key,
                artifacts: layout.artifacts,
                shown: layout.shown,
                serving_uid,
            }),
        })
    }

    /// No cache: every module is compiled.
    pub fn disabled() -> ComponentCache {
        ComponentCache { store: None }
    }

    /// The default cache directory: `$SERVERKIT_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/serverkit`, else `~/.cache/serverkit` (`~` from `$HOME`, else from
    /// the passwd entry).
    pub fn default_dir() -> Option<PathBuf> {
        layout::default_dir()
    }

    /// Compiles `wasm`, or loads it from the cache when this host compiled it before.
    pub fn component(&self, engine: &Engine, wasm: &[u8], label: &str) -> Result<Component> {
        let Some(store) = &self.store else {
            return compile(engine, wasm, label);
        };
        let origin = Origin::of(engine, wasm);
        let name = origin.file_name();
        let path = store.shown.join(&name);
        match store.load(engine, &origin, &name) {
            Ok(Some(component)) => {
                tracing::debug!(module = label, file = %path.display(), "loaded from cache");
                return Ok(component);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(
                    "discarding cached module {}: {e:#}; compiling {label} afresh",
                    path.display()
                );
                if let Err(e) = artifacts::remove(store.artifacts.as_fd(), &name) {
                    tracing::warn!("{}: {e:#}", path.display());
                }
            }
        }
        let component = compile(engine, wasm, label)?;
        match store.save(&origin, &name, &component) {
            Ok(()) => {
                tracing::debug!(module = label, file = %path.display(), "compiled and cached")
            }
            Err(e) => tracing::warn!(
                "could not cache the compiled {label} at {}: {e:#}",
                path.display()
            ),
        }
        Ok(component)
    }
}

fn compile(engine: &Engine, wasm: &[u8], label: &str) -> Result<Component> {
    Component::new(engine, wasm)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("failed to compile {label}"))
}

impl Store {
    /// The cached component for `origin`, `None` when there is none; an error for a file
    /// that is not a sealed artifact of this origin, or that does not deserialize.
    fn load(&self, engine: &Engine, origin: &Origin, name: &str) -> Result<Option<Component>> {
        let Some(bytes) = artifacts::read(self.artifacts.as_fd(), name)? else {
            return Ok(None);
        };
        let (seal, artifact) = bytes
            .split_at_checked(SEAL_LEN)
            .ok_or_else(|| anyhow!("it holds {} bytes, less than a seal", bytes.len()))?;
        ensure!(
            self.key.verify(origin, artifact, seal),
            "its seal does not match: this host did not write it for this module and engine"
        );
        // SAFETY: `artifact` is in our memory, not in a file someone could change after the
        // check, and its seal verifies under our key for this wasm and this engine: this
        // host serialized it from a `Component` of this module compiled by an engine
        // compatible with `engine`, which is what `deserialize` requires.
        let component = unsafe { Component::deserialize(engine, artifact) }
            .map_err(anyhow::Error::from)
            .context("failed to deserialize it")?;
        Ok(Some(component))
    }

    /// Seals and writes the compiled `component` as `name`.
    fn save(&self, origin: &Origin, name: &str, component: &Component) -> Result<()> {
        let artifact = component.serialize()?;
        let size = (SEAL_LEN + artifact.len()) as u64;
        if size > MAX_ARTIFACT_BYTES {
            bail!("{size} bytes, more than the {MAX_ARTIFACT_BYTES} the cache reads back");
        }
        let seal = self.key.seal(origin, &artifact);
        // Root writing for the service user gives it the file, so swaps after the drop can
        // read it.
        let root = nix::unistd::geteuid().is_root();
        let owner = (root && self.serving_uid != 0).then_some(self.serving_uid);
        artifacts::write(self.artifacts.as_fd(), name, &[&seal, &artifact], owner)
    }
}

#[cfg(test)]
mod tests;
