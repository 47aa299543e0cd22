//! Builds the shipped guest modules for `wasm32-wasip2` with a nested cargo, the way
//! wasmtime's own test-programs do, and embeds them in the host as built-ins.
//!
//! The nested build uses its own target directory inside this package's `OUT_DIR`, so it
//! never waits on the lock of the outer build and two checkouts sharing a cargo target
//! directory never see each other's guests. The shipped modules are then copied to the
//! documented path `<target-dir>/modules/<name>.wasm`.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

include!("nested_cargo_env.rs");

/// Guest crates under `guest-modules/` built and embedded as built-in modules.
const SHIPPED_MODULES: &[&str] = &["echo", "shttp", "pop", "vtstats", "kv"];

/// Test-only guest crates under `guest-modules/testing/`: built for the tests, which find
/// them through `SERVERKIT_TEST_MODULES_DIR`, and never embedded.
const TEST_MODULES: &[&str] = &[
    "probe",
    "contract-next",
    "hostile",
    "echo-next",
    "construct-fails",
    "contract-v1-0",
    "intruder",
    "grant-defaults",
    "listen-defaults",
];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("host/ sits inside the workspace")
        .to_path_buf();
    // `guest-modules` holds the SDK every guest depends on (`guest-modules/sdk`) as well
    // as the guests: a change to either rebuilds them all. A directory is watched whole.
    for watched in ["wit", "guest-modules", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let guest_target = out.join("guest-target");
    build_guests(&root, &guest_target);

    let wasm_dir = guest_target.join("wasm32-wasip2").join("release");
    println!(
        "cargo:rustc-env=SERVERKIT_TEST_MODULES_DIR={}",
        wasm_dir.display()
    );
    let shipped_dir = target_dir(&root).join("modules");
    std::fs::create_dir_all(&shipped_dir).expect("create <target-dir>/modules");
    let mut generated =
        String::from("/// Shipped modules embedded at build time: (name, component bytes).\n");
    generated.push_str("pub const BUILTIN_MODULES: &[(&str, &[u8])] = &[\n");
    for name in SHIPPED_MODULES {
        let wasm = wasm_dir.join(format!("{name}.wasm"));
        assert!(
            wasm.exists(),
            "guest build did not produce {}",
            wasm.display()
        );
        std::fs::copy(&wasm, shipped_dir.join(format!("{name}.wasm")))
            .expect("copy a shipped module");
        // The content hash makes this file's text change whenever the module does, so an
        // incremental build cannot keep embedding an older module.
        let bytes = std::fs::read(&wasm).expect("read a built module");
        let hash = content_hash(&bytes);
        writeln!(
            generated,
            "    // {name}: {} bytes, content hash {hash:016x}",
            bytes.len()
        )
        .unwrap();
        writeln!(
            generated,
            "    ({name:?}, include_bytes!({:?})),",
            wasm.display().to_string()
        )
        .unwrap();
    }
    generated.push_str("];\n");
    std::fs::write(out.join("builtin_modules.rs"), generated).expect("write builtin_modules.rs");
}

fn content_hash(bytes: &[u8]) -> u64 {
    use std::hash::{DefaultHasher, Hasher};
    let mut hasher = DefaultHasher::new();
    hasher.write(bytes);
    hasher.finish()
}

/// The cargo target directory of the outer build.
fn target_dir(root: &Path) -> PathBuf {
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    if target.is_absolute() {
        target
    } else {
        root.join(target)
    }
}

fn build_guests(root: &Path, guest_target: &Path) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .env("CARGO_TARGET_DIR", guest_target);
    for name in SHIPPED_MODULES.iter().chain(TEST_MODULES) {
        cmd.args(["-p", name]);
    }
    for var in HOST_ONLY_BUILD_ENV {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("run cargo to build the guest modules");
    if !status.success() {
        panic!(
            "building the guest modules failed ({status}); if the error above says the \
             wasm32-wasip2 target is missing, run `rustup target add wasm32-wasip2`"
        );
    }
}
