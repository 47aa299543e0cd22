//! The module template (`templates/module`) built the way an author builds it: copied out
//! of the checkout, pointed at the SDK, `cargo build --target wasm32-wasip2`, then served
//! from a personality's `modules/` by the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{Server, TestPersonality, free_port};

include!("../../host/nested_cargo_env.rs");

/// The SDK dependency line as the template ships it (relative to the checkout).
const SHIPPED_SDK_PATH: &str = r#"path = "../../guest-modules/sdk""#;

/// The checkout this test was built from.
fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ sits inside the checkout")
        .to_path_buf()
}

/// Copies the template's own files (not a `target/` left by building it in place) into
/// `dest`, with the SDK dependency pointed at this checkout by absolute path.
fn copy_template(dest: &Path) {
    let template = checkout().join("templates/module");
    for entry in ["Cargo.toml", "src/lib.rs", "personality/c11n"] {
        let to = dest.join(entry);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(template.join(entry), &to)
            .unwrap_or_else(|e| panic!("copy template file {entry}: {e}"));
    }
    let manifest = std::fs::read_to_string(dest.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(SHIPPED_SDK_PATH),
        "the template's Cargo.toml no longer says {SHIPPED_SDK_PATH}; update this test"
    );
    let sdk = checkout().join("guest-modules/sdk");
    let manifest = manifest.replace(SHIPPED_SDK_PATH, &format!("path = {:?}", sdk.display()));
    std::fs::write(dest.join("Cargo.toml"), manifest).unwrap();
    // The checkout's lock pins the same wit-bindgen and wasip2, so the build needs no
    // registry lookup (cargo drops the entries the template does not use).
    std::fs::copy(checkout().join("Cargo.lock"), dest.join("Cargo.lock")).unwrap();
}

/// A target directory for template builds beside this test binary's, kept between runs
/// so wit-bindgen is compiled for wasm32 once, not every time.
fn template_target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // <target>/debug/deps/e2e-<hash>
    let target = exe
        .ancestors()
        .nth(3)
        .expect("test binary under <target>/<profile>/deps");
    target.join("template-module")
}

/// Builds the crate in `dir` for wasm32-wasip2 and returns its component.
fn build_component(dir: &Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = template_target_dir();
    let mut cmd = Command::new(cargo);
    // Offline: the checkout's lock (copied in) names only crates the guest build fetched.
    cmd.current_dir(dir)
        .args([
            "build",
            "--offline",
            "--release",
            "--target",
            "wasm32-wasip2",
        ])
        .env("CARGO_TARGET_DIR", &target);
    for var in HOST_ONLY_BUILD_ENV {
        cmd.env_remove(var);
    }
    let output = cmd.output().expect("run cargo on the template");
    assert!(
        output.status.success(),
        "building the template failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let wasm = target.join("wasm32-wasip2/release/reverse.wasm");
    assert!(
        wasm.exists(),
        "the build did not produce {}",
        wasm.display()
    );
    wasm
}

#[test]
fn the_template_builds_outside_the_workspace_and_serves() {
    let build_dir = tempfile::tempdir().unwrap();
    copy_template(build_dir.path());
    let wasm = build_component(build_dir.path());

    // The template's own example personality, on a free port.
    let port = free_port();
    let c11n = std::fs::read_to_string(build_dir.path().join("personality/c11n")).unwrap();
    assert!(
        c11n.contains("port = 7070"),
        "example personality changed:\n{c11n}"
    );
    let personality = TestPersonality::new(&c11n.replace("port = 7070", &format!("port = {port}")));
    std::fs::copy(&wasm, personality.path().join("modules/reverse.wasm")).unwrap();
    let server = Server::start(personality, port);

    let mut client = server.client();
    assert_eq!(
        client.line().as_deref(),
        Some("hello: send lines, they come back reversed; QUIT to end")
    );
    client.send("hello, world");
    assert_eq!(client.line().as_deref(), Some("dlrow ,olleh"));
    client.send("ünïcode\r");
    assert_eq!(
        client.line().as_deref(),
        Some("edocïnü"),
        "CRLF is a line ending"
    );
    client.send("QUIT");
    assert_eq!(client.line().as_deref(), Some("bye"));
    assert_eq!(client.line(), None, "QUIT ends the session");
}
