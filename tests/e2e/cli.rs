//! The command line: help, version, check, inspect, and broken configurations.

use std::process::Command;

use crate::harness::{TestPersonality, binary, echo_c11n, free_port};
use crate::hotswap::test_module;

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(binary())
        .args(args)
        .env_remove("SERVER_PERSONALITY_PATH")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn help_names_every_command() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, Some(0));
    for word in [
        "run",
        "check",
        "new",
        "inspect",
        "SERVER_PERSONALITY_PATH",
        "111",
    ] {
        assert!(out.contains(word), "--help lacks {word}:\n{out}");
    }
    let (code, out, _) = run(&["check", "--help"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("PERSONALITY"), "{out}");
}

#[test]
fn version_is_the_crate_version() {
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        out.trim(),
        format!("serverkit {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn inspect_describes_a_built_in_module() {
    let (code, out, err) = run(&["inspect", "echo"]);
    assert_eq!(code, Some(0), "{err}");
    for expected in [
        "module:      echo",
        "version:     1.0.0",
        "contract:    serverkit:module@1.1.0",
        "port: a port number",
        "fault_injection",
        "max_sessions",
    ] {
        assert!(out.contains(expected), "inspect lacks {expected:?}:\n{out}");
    }
}

#[test]
fn inspect_lists_what_a_module_imports() {
    let (code, out, err) = run(&["inspect", "shttp"]);
    assert_eq!(code, Some(0), "{err}");
    let imports = out
        .split_once("imports (")
        .unwrap_or_else(|| panic!("inspect lists no imports:\n{out}"))
        .1;
    for expected in [
        "serverkit:module/filesystem@1.1.0",
        "read files beneath the directories its section grants",
        "serverkit:module/connection@1.1.0",
        "wasi:io/streams@",
    ] {
        assert!(
            imports.contains(expected),
            "imports lack {expected:?}:\n{imports}"
        );
    }
    assert!(!imports.contains("unknown to this serverkit"), "{imports}");
    // echo reads no files and queries no database: what it cannot ask for is not listed.
    let (_, echo, _) = run(&["inspect", "echo"]);
    assert!(!echo.contains("serverkit:module/database"), "{echo}");
}

#[test]
fn inspect_of_an_unknown_module_names_the_built_ins() {
    let (code, _, err) = run(&["inspect", "no-such-module"]);
    assert_eq!(code, Some(100));
    assert!(
        err.contains("neither a module file nor a built-in module (built-ins: echo"),
        "{err}"
    );
}

#[test]
fn check_says_ok_for_a_good_personality_and_binds_nothing() {
    let port = free_port();
    let personality = TestPersonality::new(&echo_c11n(port, ""));
    let (code, out, err) = run(&["check", personality.path().to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), "ok");
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "check must not bind"
    );
}

#[test]
fn check_reads_the_personality_from_the_environment() {
    let personality = TestPersonality::new(&echo_c11n(free_port(), ""));
    let out = Command::new(binary())
        .arg("check")
        .env("SERVER_PERSONALITY_PATH", personality.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_reports_every_error_with_file_line_and_column() {
    let personality = TestPersonality::new(
        "identity = x\nexecutes_as_root = maybe\necho {\n  prot = 7\n  address = 127.0.0.1\n  backlog 5\n}\n",
    );
    let (code, _, err) = run(&["check", personality.path().to_str().unwrap()]);
    assert_eq!(code, Some(100), "{err}");
    let c11n = personality.path().join("c11n").display().to_string();
    assert!(
        err.contains(&format!("{c11n}:2:")) && err.contains("maybe"),
        "the bad boolean is reported:\n{err}"
    );
    assert!(
        err.contains(&format!("{c11n}:4:3")) && err.contains("did you mean `port`?"),
        "the misspelt key is reported with a suggestion:\n{err}"
    );
    assert!(
        err.contains(&format!("{c11n}:6:")),
        "the syntax error is reported in the same run:\n{err}"
    );
}

#[test]
fn a_missing_personality_is_a_clear_error() {
    let (code, _, err) = run(&["check"]);
    assert_eq!(code, Some(100));
    assert!(err.contains("no personality given"), "{err}");
    let (code, _, err) = run(&["check", "/nonexistent/personality"]);
    assert_eq!(code, Some(100));
    assert!(
        err.contains("`/nonexistent/personality` is not a directory"),
        "{err}"
    );
}

#[test]
fn an_unknown_section_suggests_the_module() {
    let personality = TestPersonality::new("ecko {\n port = 7\n}\n");
    let (code, _, err) = run(&["check", personality.path().to_str().unwrap()]);
    assert_eq!(code, Some(100), "{err}");
    assert!(err.contains("ecko") && err.contains("echo"), "{err}");
}

#[test]
fn check_finds_a_missing_granted_directory() {
    let port = free_port();
    let personality = TestPersonality::new(&format!(
        "shttp {{\n  address = 127.0.0.1\n  port = {port}\n  doc_root = no-such-www\n}}\n"
    ));
    let (code, out, err) = run(&["check", personality.path().to_str().unwrap()]);
    assert_eq!(code, Some(100), "{out}{err}");
    assert!(
        err.contains("no-such-www") && err.contains("doc_root"),
        "the missing directory and its option are named:\n{err}"
    );
}

/// A personality with an empty section `name` and `modules/<name>.wasm` holding the module
/// `echo`; the file's path.
fn section_with_echo_in_its_file(name: &str) -> (TestPersonality, std::path::PathBuf) {
    let personality = TestPersonality::new(&format!("{name} {{\n}}\n"));
    let file = personality.path().join(format!("modules/{name}.wasm"));
    std::fs::copy(test_module("echo_next.wasm"), &file).unwrap();
    (personality, file)
}

#[test]
fn a_section_named_after_the_file_names_what_the_module_calls_itself() {
    // `greeter.wasm` holds the module `echo` (`kv` would be the built-in key-value module).
    let (personality, file) = section_with_echo_in_its_file("greeter");
    let (code, _, err) = run(&["check", personality.path().to_str().unwrap()]);
    assert_eq!(code, Some(100), "{err}");
    assert!(
        err.contains("no loaded module or core section is named `greeter`"),
        "{err}"
    );
    let note = format!(
        "`{}` holds a module that calls itself `echo`",
        file.display()
    );
    assert!(err.contains(&note), "{err}");
    assert!(err.contains("its section is `echo { ... }`"), "{err}");
}

#[test]
fn a_file_named_after_a_built_in_but_holding_another_module_is_pointed_out() {
    // The operator meant `kv.wasm` to replace the built-in kv; it holds `echo`.
    let (personality, file) = section_with_echo_in_its_file("kv");
    let (code, out, err) = run(&["check", personality.path().to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    let note = format!(
        "section `kv` is served by the built-in kv: `{}` holds a module that calls itself `echo`",
        file.display()
    );
    assert!(err.contains(&note), "{err}");
}

#[test]
fn check_module_preflights_a_candidate_in_place_of_the_module_of_its_name() {
    let port = free_port();
    let personality = TestPersonality::new(&echo_c11n(port, ""));
    let dir = personality.path().to_str().unwrap();
    // What a refused swap leaves behind: a broken file in modules/.
    std::fs::write(
        personality.path().join("modules/echo.wasm"),
        "not a component",
    )
    .unwrap();
    let (code, _, err) = run(&["check", dir]);
    assert_eq!(code, Some(100), "the broken file fails check: {err}");

    let candidate = test_module("echo_next.wasm");
    let (code, out, err) = run(&["check", dir, "--module", candidate.to_str().unwrap()]);
    assert_eq!((code, out.trim()), (Some(0), "ok"), "{err}");

    let garbage = personality.path().join("candidate.wasm");
    std::fs::write(&garbage, "not a component either").unwrap();
    let (code, _, err) = run(&["check", dir, "--module", garbage.to_str().unwrap()]);
    assert_eq!(code, Some(100), "{err}");
    assert!(
        err.contains(&format!("candidate `{}`", garbage.display())),
        "{err}"
    );

    // A candidate whose vocabulary does not fit the section is refused like a swap.
    let probe = test_module("probe.wasm");
    std::fs::copy(
        test_module("echo_next.wasm"),
        personality.path().join("modules/echo.wasm"),
    )
    .unwrap();
    let c11n = format!(
        "{}probe {{\n  no_such_option = 1\n}}\n",
        echo_c11n(port, "")
    );
    std::fs::write(personality.path().join("c11n"), c11n).unwrap();
    let (code, _, err) = run(&["check", dir, "--module", probe.to_str().unwrap()]);
    assert_eq!(code, Some(100), "{err}");
    assert!(err.contains("no_such_option"), "{err}");
}
