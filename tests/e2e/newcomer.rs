//! A newcomer's path, as `docs/module-guide.md` tells it, with the real binary:
//! `serverkit new` (Rust and Python), build, `check`, run, a client served, and for Rust
//! a hot swap preflighted with `check --module`.
//!
//! The Rust build uses a target directory beside this test binary's, kept between runs,
//! so the SDK and wit-bindgen are compiled for wasm32 once (a cold build took 93 s, a
//! warm one 2 s). The Python build uses the test venv's componentize-py (see
//! `python_module`); without it the test is skipped loudly outside CI and fails with
//! `CI=true`. Its component is kept between runs too, with the host's compile cache:
//! compiling the interpreter takes about 105 s in a debug build.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::harness::{Server, binary, free_port};

include!("../../host/nested_cargo_env.rs");

/// The checkout this test was built from.
fn checkout() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ sits inside the checkout")
}

/// Runs the binary with `args` in `dir`, with the host's compile cache in `cache`.
fn serverkit(dir: &Path, args: &[&str], cache: &Path) -> Output {
    Command::new(binary())
        .args(args)
        .current_dir(dir)
        .env("SERVERKIT_CACHE_DIR", cache)
        .output()
        .expect("run serverkit")
}

fn succeeded(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `serverkit new NAME ARGS` in `work`; returns the project directory and what it printed.
fn new_project(work: &Path, name: &str, args: &[&str], cache: &Path) -> (PathBuf, String) {
    let mut all = vec!["new", name];
    all.extend_from_slice(args);
    let printed = succeeded("serverkit new", &serverkit(work, &all, cache));
    (work.join(name), printed)
}

/// Points the project's personality at `port`, as a newcomer would pick a free one.
fn use_port(project: &Path, port: u16) {
    let c11n = project.join("personality/c11n");
    let text = std::fs::read_to_string(&c11n).unwrap();
    assert!(
        text.contains("port = 7070"),
        "the personality changed:\n{text}"
    );
    std::fs::write(
        &c11n,
        text.replace("port = 7070", &format!("port = {port}")),
    )
    .unwrap();
}

/// Starts `serverkit run personality` in `project` and waits until it serves.
fn run(project: &Path, port: u16, cache: &Path) -> Server {
    let cache = cache.to_str().unwrap();
    let personality = project.join("personality");
    let mut server = Server::spawn(&["run"], &personality, &[("SERVERKIT_CACHE_DIR", cache)]);
    server.addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    server.wait_for_log("serving", Duration::from_secs(300));
    server
}

/// Copies `wasm` into the personality as `name.wasm`, replacing a running module's file
/// in one step (a rename), as a hot swap should.
fn install(project: &Path, wasm: &Path, name: &str) {
    let modules = project.join("personality/modules");
    let partial = modules.join(format!("{name}.wasm.new"));
    std::fs::copy(wasm, &partial).unwrap();
    std::fs::rename(&partial, modules.join(format!("{name}.wasm"))).unwrap();
}

/// A target directory for the projects' builds beside this test binary's.
fn shared_target(what: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // <target>/debug/deps/e2e-<hash>
    let target = exe
        .ancestors()
        .nth(3)
        .expect("test binary under <target>/<profile>/deps");
    target.join(what)
}

/// `cargo build --release --target wasm32-wasip2` in `project`; returns the component.
fn cargo_build(project: &Path, name: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = shared_target("newcomer-rust");
    let mut cmd = Command::new(cargo);
    // Offline: the checkout's lock (copied in) names only crates the guest build fetched.
    cmd.current_dir(project)
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
    let started = Instant::now();
    succeeded("cargo build of the new project", &cmd.output().unwrap());
    eprintln!("newcomer: cargo build took {:.1?}", started.elapsed());
    target.join(format!("wasm32-wasip2/release/{name}.wasm"))
}

#[test]
fn a_new_rust_module_builds_checks_serves_and_hot_swaps() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("compiled");
    let (project, printed) = new_project(work.path(), "hello", &[], &cache);
    for step in [
        "cargo build --release --target wasm32-wasip2",
        "serverkit check personality",
    ] {
        assert!(
            printed.contains(step),
            "next steps lack `{step}`:\n{printed}"
        );
    }
    let again = serverkit(work.path(), &["new", "hello"], &cache);
    assert!(
        !again.status.success(),
        "an existing project is not overwritten"
    );
    let error = String::from_utf8_lossy(&again.stderr);
    assert!(error.contains("already exists"), "{error}");

    // The checkout's lock pins the SDK's dependencies, so the build needs no registry.
    std::fs::copy(checkout().join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let wasm = cargo_build(&project, "hello");
    let port = free_port();
    use_port(&project, port);
    install(&project, &wasm, "hello");
    let checked = serverkit(&project, &["check", "personality"], &cache);
    assert_eq!(succeeded("serverkit check", &checked).trim(), "ok");

    let mut server = run(&project, port, &cache);
    let mut client = server.client();
    assert_eq!(
        client.line().as_deref(),
        Some("hello from hello: send lines, they come back reversed; QUIT to end")
    );
    client.send("hello, world");
    assert_eq!(client.line().as_deref(), Some("dlrow ,olleh"));
    client.send("QUIT");
    assert_eq!(client.line().as_deref(), Some("bye"));
    assert_eq!(client.line(), None, "QUIT ends the session");

    // A changed build, preflighted, then swapped in while a session stays on the old one.
    let mut held = server.client();
    assert!(held.line().is_some(), "greeted");
    let lib = project.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    let reversed = "line.chars().rev().collect()";
    assert!(source.contains(reversed), "the template changed:\n{source}");
    std::fs::write(&lib, source.replace(reversed, "line.to_uppercase()")).unwrap();
    let wasm = cargo_build(&project, "hello");
    let candidate = wasm.to_str().unwrap();
    let preflight = serverkit(
        &project,
        &["check", "personality", "--module", candidate],
        &cache,
    );
    assert_eq!(
        succeeded("serverkit check --module", &preflight).trim(),
        "ok"
    );
    let garbage = work.path().join("broken.wasm");
    std::fs::write(&garbage, "not a component").unwrap();
    let refused = serverkit(
        &project,
        &[
            "check",
            "personality",
            "--module",
            garbage.to_str().unwrap(),
        ],
        &cache,
    );
    assert!(
        !refused.status.success(),
        "a broken candidate fails the preflight"
    );

    install(&project, &wasm, "hello");
    server.wait_for_log("hot swap: new sessions start", Duration::from_secs(60));
    let mut fresh = server.client();
    assert!(fresh.line().is_some(), "greeted");
    fresh.send("hello, world");
    assert_eq!(
        fresh.line().as_deref(),
        Some("HELLO, WORLD"),
        "the new version"
    );
    held.send("abc");
    assert_eq!(
        held.line().as_deref(),
        Some("cba"),
        "a live session keeps the old one"
    );
}

/// The test venv's python, with componentize-py; `None` (after a loud message) when it is
/// missing outside CI.
fn componentize_python() -> Option<String> {
    let python = std::env::var("SERVERKIT_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python)
        .args(["-c", "import componentize_py"])
        .output();
    if probe.is_ok_and(|o| o.status.success()) {
        return Some(python);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "componentize-py is not installed for {python}, and CI=true requires it \
         (tools/setup-test-deps installs it)"
    );
    eprintln!(
        "\n!!! SKIPPED: componentize-py is not installed for {python}; set \
         SERVERKIT_TEST_PYTHON to tools/setup-test-deps's python to run it !!!\n"
    );
    None
}

/// Runs componentize-py's command line (the console script calls the same function).
const COMPONENTIZE_PY: &str = "import sys, componentize_py; sys.argv[0] = 'componentize-py'; sys.exit(componentize_py.script())";

/// Builds the Python project in `project` with componentize-py, or takes the component
/// an earlier run built from the same files: componentize-py's output differs from build
/// to build, and each new component costs the host a compile of the interpreter (minutes
/// in a debug build), so the build is kept, keyed on the project's files and the tool.
fn componentize(python: &str, project: &Path, name: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let version = Command::new(python)
        .args(["-c", COMPONENTIZE_PY, "--version"])
        .output()
        .unwrap();
    let mut hasher = Sha256::new();
    hasher.update(&version.stdout);
    let mut files = vec![project.to_path_buf()];
    let mut sources = Vec::new();
    while let Some(dir) = files.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.push(path);
            } else if path.extension().is_some_and(|e| e == "py" || e == "wit") {
                sources.push(path);
            }
        }
    }
    sources.sort();
    for source in &sources {
        hasher.update(
            source
                .strip_prefix(project)
                .unwrap()
                .to_string_lossy()
                .as_bytes(),
        );
        hasher.update(std::fs::read(source).unwrap());
    }
    let digest: String = hasher
        .finalize()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect();
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join("newcomer-python");
    let wasm = kept.join(format!("{name}-{digest}.wasm"));
    if wasm.exists() {
        eprintln!(
            "newcomer: componentize-py skipped, {} is built from the same files",
            wasm.display()
        );
        return wasm;
    }
    let started = Instant::now();
    let out = format!("{name}.wasm");
    let build = Command::new(python)
        .args(["-c", COMPONENTIZE_PY])
        .args([
            "-d",
            "wit",
            "-w",
            "module",
            "componentize",
            "-p",
            ".",
            "app",
            "-o",
            &out,
        ])
        .current_dir(project)
        .output()
        .unwrap();
    succeeded("componentize-py", &build);
    eprintln!("newcomer: componentize-py took {:.1?}", started.elapsed());
    std::fs::create_dir_all(&kept).unwrap();
    // Older builds are never used again (18 MB each).
    for entry in std::fs::read_dir(&kept).unwrap() {
        let _ = std::fs::remove_file(entry.unwrap().path());
    }
    std::fs::copy(project.join(&out), &wasm).unwrap();
    wasm
}

#[test]
fn a_new_python_module_builds_checks_and_serves() {
    let Some(python) = componentize_python() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    // Kept between runs: compiling the interpreter's 18 MB takes minutes in a debug build,
    // and an unchanged template builds the same component.
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("newcomer-python-compiled");
    let (project, printed) = new_project(work.path(), "pyhello", &["--lang", "python"], &cache);
    assert!(printed.contains("componentize-py -d wit"), "{printed}");

    let tests = Command::new(&python)
        .args(["-m", "unittest"])
        .current_dir(&project)
        .output()
        .unwrap();
    succeeded("the project's unit tests", &tests);
    let wasm = componentize(&python, &project, "pyhello");

    let port = free_port();
    use_port(&project, port);
    install(&project, &wasm, "pyhello");
    let started = Instant::now();
    let checked = serverkit(&project, &["check", "personality"], &cache);
    assert_eq!(succeeded("serverkit check", &checked).trim(), "ok");
    eprintln!(
        "newcomer: check (compiles or loads from the cache) took {:.1?}",
        started.elapsed()
    );

    let server = run(&project, port, &cache);
    let mut client = server.client();
    assert_eq!(
        client.line().as_deref(),
        Some("hello from pyhello: send lines, they come back reversed; QUIT to end")
    );
    client.send("héllo, world");
    assert_eq!(client.line().as_deref(), Some("dlrow ,olléh"));
    client.send("QUIT");
    assert_eq!(client.line().as_deref(), Some("bye"));
    assert_eq!(client.line(), None, "QUIT ends the session");
}
