//! The cache end to end on real (tiny) components: what it keeps, what it refuses.

use super::*;

/// An empty component, made distinct by a custom section named `tag`.
fn component_bytes(tag: &str) -> Vec<u8> {
    let mut wasm = b"\0asm\x0d\0\x01\0".to_vec();
    let name = tag.as_bytes();
    wasm.push(0); // custom section
    wasm.push((1 + name.len()) as u8);
    wasm.push(name.len() as u8);
    wasm.extend_from_slice(name);
    wasm
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

struct Fixture {
    _tmp: tempfile::TempDir,
    cache: ComponentCache,
    engine: Engine,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ComponentCache::at(tmp.path(), euid()).unwrap();
        Fixture {
            _tmp: tmp,
            cache,
            engine: Engine::default(),
        }
    }

    fn store(&self) -> &Store {
        self.cache.store.as_ref().unwrap()
    }

    fn path(&self, wasm: &[u8]) -> PathBuf {
        self.store()
            .shown
            .join(Origin::of(&self.engine, wasm).file_name())
    }

    /// What loading `wasm` from the cache alone gives: `Ok(true)` for a hit.
    fn cached(&self, wasm: &[u8]) -> Result<bool> {
        let origin = Origin::of(&self.engine, wasm);
        let loaded = self
            .store()
            .load(&self.engine, &origin, &origin.file_name())?;
        Ok(loaded.is_some())
    }

    fn compile(&self, wasm: &[u8]) {
        self.cache.component(&self.engine, wasm, "test").unwrap();
    }
}

#[test]
fn a_compiled_module_is_cached_and_loaded_from_the_cache() {
    let f = Fixture::new();
    let wasm = component_bytes("x");
    assert!(!f.cached(&wasm).unwrap(), "empty at first");
    f.compile(&wasm);
    assert!(f.cached(&wasm).unwrap());
    let written = std::fs::metadata(f.path(&wasm))
        .unwrap()
        .modified()
        .unwrap();
    f.compile(&wasm);
    let after = std::fs::metadata(f.path(&wasm))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(written, after, "a hit does not write");
}

#[test]
fn random_bytes_under_a_module_name_are_refused_then_replaced() {
    let f = Fixture::new();
    let wasm = component_bytes("x");
    let planted = vec![0x5a; 4096];
    std::fs::write(f.path(&wasm), &planted).unwrap();
    let err = f.cached(&wasm).unwrap_err().to_string();
    assert!(err.starts_with("its seal does not match"), "{err}");
    f.compile(&wasm);
    assert_ne!(std::fs::read(f.path(&wasm)).unwrap(), planted);
    assert!(f.cached(&wasm).unwrap(), "a valid artifact in its place");
}

#[test]
fn another_modules_sealed_artifact_under_this_name_is_refused() {
    let f = Fixture::new();
    let (x, y) = (component_bytes("x"), component_bytes("y"));
    f.compile(&x);
    f.compile(&y);
    std::fs::copy(f.path(&y), f.path(&x)).unwrap();
    let err = f.cached(&x).unwrap_err().to_string();
    assert!(err.starts_with("its seal does not match"), "{err}");
    f.compile(&x);
    assert!(f.cached(&x).unwrap());
    assert_ne!(
        std::fs::read(f.path(&x)).unwrap(),
        std::fs::read(f.path(&y)).unwrap()
    );
}

#[test]
fn an_artifact_sealed_for_another_engine_is_refused() {
    let f = Fixture::new();
    let wasm = component_bytes("x");
    f.compile(&wasm);
    let other = crate::engine::new(&crate::engine::PoolPlan::SMALL).unwrap();
    let theirs = Origin::of(&other, &wasm);
    let ours = Origin::of(&f.engine, &wasm);
    let err = f
        .store()
        .load(&other, &theirs, &ours.file_name())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("its seal does not match"), "{err}");
}

#[test]
fn an_artifact_sealed_under_another_key_is_refused() {
    let (a, b) = (Fixture::new(), Fixture::new());
    let wasm = component_bytes("x");
    a.compile(&wasm);
    std::fs::copy(a.path(&wasm), b.path(&wasm)).unwrap();
    let err = b.cached(&wasm).unwrap_err().to_string();
    assert!(err.starts_with("its seal does not match"), "{err}");
}

#[test]
fn a_file_shorter_than_a_seal_is_refused() {
    let f = Fixture::new();
    let wasm = component_bytes("x");
    std::fs::write(f.path(&wasm), b"short").unwrap();
    let err = f.cached(&wasm).unwrap_err().to_string();
    assert_eq!(err, "it holds 5 bytes, less than a seal");
}

#[test]
fn without_a_cache_modules_are_compiled() {
    let cache = ComponentCache::disabled();
    cache
        .component(&Engine::default(), &component_bytes("x"), "test")
        .unwrap();
    let err = cache
        .component(&Engine::default(), b"not wasm", "`bad.wasm`")
        .unwrap_err()
        .to_string();
    assert_eq!(err, "failed to compile `bad.wasm`");
}
