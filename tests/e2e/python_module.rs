//! A module written in Python (`guest-modules/python-echo`), built here with
//! componentize-py from the test venv and served by the real binary: the contract in
//! `wit/` is all a non-Rust module needs.
//!
//! componentize-py is pinned in `tools/test-requirements.txt`; `./dev test` installs it
//! and exports `SERVERKIT_TEST_PYTHON`. Outside CI a missing componentize-py skips these
//! tests with a loud message; with `CI=true` it fails them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use nix::sys::signal::Signal;
use sha2::{Digest, Sha256};

use crate::harness::{Client, Server, TestPersonality, binary, free_port};

/// The module's sources, relative to the workspace root.
const APP_DIR: &str = "guest-modules/python-echo";

/// Runs componentize-py's command line from the test venv's python (the package's
/// console script calls the same function).
const COMPONENTIZE_PY: &str = "import sys, componentize_py; sys.argv[0] = 'componentize-py'; sys.exit(componentize_py.script())";

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ sits inside the workspace")
}

fn python() -> String {
    std::env::var("SERVERKIT_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The version line of the venv's componentize-py, or `None` if it is not installed.
fn componentize_py_version(python: &str) -> Option<String> {
    let out = Command::new(python)
        .args(["-c", COMPONENTIZE_PY, "--version"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A digest of everything the component is built from: the tool's version, the app and
/// the contract. Keys the build cache.
fn source_digest(tool_version: &str) -> String {
    let root = workspace_root();
    let mut files = vec![root.join(APP_DIR).join("app.py")];
    let mut dirs = vec![root.join("wit")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "wit") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hasher = Sha256::new();
    hasher.update(tool_version.as_bytes());
    for file in &files {
        hasher.update(
            file.strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .as_bytes(),
        );
        hasher.update(std::fs::read(file).unwrap());
    }
    hasher
        .finalize()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The built `pyecho` component, or `None` (after a loud message) when componentize-py
/// is unavailable outside CI. Building takes a quarter of a minute, so the result is
/// kept under the cargo target directory, keyed on its sources.
fn pyecho_wasm() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let wasm = build_pyecho()?;
            warm_compile_cache(&wasm);
            Some(wasm)
        })
        .as_deref()
}

/// The host's compile cache for these tests (`SERVERKIT_CACHE_DIR`), kept beside the
/// built component so that it outlives a run whatever `$HOME` is.
fn host_cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-echo-compiled")
}

/// Runs `serverkit COMMAND PATH` with the tests' compile cache.
fn serverkit(command: &str, path: &Path) -> std::process::Output {
    Command::new(binary())
        .arg(command)
        .arg(path)
        .env("SERVERKIT_CACHE_DIR", host_cache_dir())
        .output()
        .unwrap()
}

/// Compiles the component once into the host's cache for each user it is loaded as (the
/// cache keeps artifacts per uid): `check` of a personality for the servers, which drop
/// to uid 65534, and `inspect` for the caller. Each server the tests start then
/// deserializes it in a second instead of compiling 18 MB of CPython again (minutes in a
/// debug build; see docs/benchmarks.md).
fn warm_compile_cache(wasm: &Path) {
    let start = std::time::Instant::now();
    let personality = personality(wasm, free_port(), "");
    for (command, path) in [("check", personality.path()), ("inspect", wasm)] {
        let out = serverkit(command, path);
        assert!(
            out.status.success(),
            "serverkit {command} {} failed:\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!(
        "pyecho: loaded (compiled or from the cache) in {:.1?}",
        start.elapsed()
    );
}

fn build_pyecho() -> Option<PathBuf> {
    let python = python();
    let Some(version) = componentize_py_version(&python) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "componentize-py is not installed for {python}, and CI=true requires it \
             (tools/setup-test-deps installs it)"
        );
        eprintln!(
            "\n!!! SKIPPED: componentize-py is not installed for {python}; run `./dev test` \
             (or set SERVERKIT_TEST_PYTHON to tools/setup-test-deps's python) to run the \
             Python module tests !!!\n"
        );
        return None;
    };
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-echo");
    let wasm = cache.join(format!("pyecho-{}.wasm", source_digest(&version)));
    if wasm.exists() {
        return Some(wasm);
    }
    std::fs::create_dir_all(&cache).unwrap();
    let root = workspace_root();
    // Written beside the final name and renamed, so a concurrent test process never
    // reads half a component.
    let partial = wasm.with_extension(format!("partial{}", std::process::id()));
    let out = Command::new(&python)
        .args(["-c", COMPONENTIZE_PY])
        .arg("-d")
        .arg(root.join("wit"))
        .args(["-w", "module", "componentize", "-p"])
        .arg(root.join(APP_DIR))
        .args(["app", "-o"])
        .arg(&partial)
        .output()
        .expect("run componentize-py");
    assert!(
        out.status.success(),
        "componentize-py ({version}) failed to build {APP_DIR}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&partial, &wasm).unwrap();
    // Older builds and their compiled forms (35 MB each) are never used again.
    for entry in std::fs::read_dir(&cache).unwrap() {
        let path = entry.unwrap().path();
        if path != wasm && path.extension().is_some_and(|e| e == "wasm") {
            let _ = std::fs::remove_file(path);
        }
    }
    let _ = std::fs::remove_dir_all(host_cache_dir());
    Some(wasm)
}

/// A personality serving pyecho on `port`, with extra lines in its section.
fn personality(wasm: &Path, port: u16, extra: &str) -> TestPersonality {
    let personality = TestPersonality::new(&format!(
        "identity = pytest\nexecutes_as_root = true\nuid = 65534\ngid = 65534\n\
         pyecho {{\n  address = 127.0.0.1\n  port = {port}\n  fault_injection = on\n{extra}\n}}\n"
    ));
    std::fs::copy(wasm, personality.path().join("modules/pyecho.wasm")).unwrap();
    personality
}

fn start(extra: &str) -> Option<Server> {
    let wasm = pyecho_wasm()?;
    let port = free_port();
    let cache = host_cache_dir();
    Some(Server::start_with_env(
        personality(wasm, port, extra),
        port,
        &[("SERVERKIT_CACHE_DIR", cache.to_str().unwrap())],
    ))
}

#[test]
fn pyecho_greets_echoes_lines_and_quits() {
    let Some(server) = start("greeting = \"hello from Python\"") else {
        return;
    };
    let mut client = server.client();
    assert_eq!(client.line().as_deref(), Some("hello from Python"));
    client.echo("hello, world");
    client.echo("a second line with ünïcode");
    client.echo("");
    // Longer than one 4096-byte write and one 16 KiB read.
    client.echo(&"0123456789abcdef".repeat(2000));
    client.echo("quit is not QUIT");
    client.send("QUIT");
    assert_eq!(client.line(), None, "QUIT ends the session");
}

#[test]
fn pyecho_serves_concurrent_sessions_each_in_its_own_instance() {
    let Some(server) = start("max_sessions = 10") else {
        return;
    };
    let mut first = server.client();
    let mut second = server.client();
    // Interleaved: both sessions are live at once.
    for n in 0..5 {
        first.echo(&format!("first {n}"));
        second.echo(&format!("second {n}"));
    }
    first.send("QUIT");
    assert_eq!(first.line(), None);
    second.echo("the other session goes on");
    let addr = server.addr;
    let clients: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                for n in 0..10 {
                    client.echo(&format!("client {i} line {n}"));
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("every client is served");
    }
    second.send("QUIT");
    assert_eq!(second.line(), None);
}

#[test]
fn pyecho_an_uncaught_python_exception_ends_only_its_session() {
    let Some(mut server) = start("") else {
        return;
    };
    let mut bystander = server.client();
    bystander.echo("here before");
    let mut victim = server.client();
    victim.echo("about to raise");
    victim.send("!raise");
    assert_eq!(victim.line(), None, "the raising session is closed");
    bystander.echo("still served");
    server.client().echo("new sessions too");
    server.wait_for_log("session trapped", Duration::from_secs(10));
    let log = server.log();
    assert!(
        log.contains("fault injection: raising on request"),
        "the module's log line reaches the host log:\n{log}"
    );
    assert!(
        log.contains("RuntimeError: fault injection"),
        "the Python traceback (guest stderr) reaches the host log:\n{log}"
    );
}

#[test]
fn pyecho_report_names_the_interpreter() {
    let Some(mut server) = start("") else {
        return;
    };
    server.client().echo("one session");
    server.signal(Signal::SIGUSR1);
    server.wait_for_log("written in Python 3.", Duration::from_secs(20));
}

#[test]
fn inspect_and_check_read_the_python_module() {
    let Some(wasm) = pyecho_wasm() else {
        return;
    };
    let out = serverkit("inspect", wasm);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "inspect failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "module:      pyecho",
        "description: Line echo written in Python",
        "version:     1.0.0",
        "contract:    serverkit:module@1.1.0",
        "vocabulary (pyecho section):",
        "port: a port number",
        "greeting",
        "fault_injection",
    ] {
        assert!(
            stdout.contains(expected),
            "inspect lacks {expected:?}:\n{stdout}"
        );
    }
    let personality = personality(wasm, free_port(), "");
    let out = serverkit("check", personality.path());
    assert!(
        out.status.success(),
        "check failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}
