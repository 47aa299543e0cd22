use std::path::Path;

use super::{Lang, NewProject, Vars, check_name, create, type_name};

fn new(parent: &Path, name: &str, lang: Lang) -> NewProject {
    NewProject {
        name: name.into(),
        lang,
        sdk: None,
        parent: parent.to_path_buf(),
    }
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn names_are_c11n_section_names() {
    for good in ["hello", "kv2", "hello_world", "a"] {
        check_name(good).unwrap();
    }
    for bad in [
        "",
        "Hello",
        "2kv",
        "hello-world",
        "_x",
        "héllo",
        "a/b",
        "../x",
    ] {
        let error = check_name(bad).unwrap_err().to_string();
        assert!(
            error.contains(&format!("`{bad}` cannot name a module")),
            "{error}"
        );
    }
    assert_eq!(type_name("hello"), "Hello");
    assert_eq!(type_name("hello_world2"), "HelloWorld2");
}

#[test]
fn a_rust_project_is_named_and_depends_on_the_checkouts_sdk() {
    let parent = tempfile::tempdir().unwrap();
    let created = create(&new(parent.path(), "hello_world", Lang::Rust)).unwrap();
    let dir = parent.path().join("hello_world");
    assert_eq!(created.dir, dir);
    let manifest = read(&dir, "Cargo.toml");
    assert!(manifest.contains("name = \"hello_world\""), "{manifest}");
    let sdk = super::default_sdk();
    assert!(
        sdk.is_absolute() && sdk.join("Cargo.toml").is_file(),
        "{}",
        sdk.display()
    );
    assert!(
        manifest.contains(&format!(
            "serverkit-sdk = {{ path = \"{}\" }}",
            sdk.display()
        )),
        "{manifest}"
    );
    assert!(
        manifest.contains("the checkout this serverkit was built from"),
        "{manifest}"
    );
    let lib = read(&dir, "src/lib.rs");
    assert!(lib.contains("struct HelloWorld;"), "{lib}");
    assert!(
        lib.contains("Descriptor::new(\n            \"hello_world\""),
        "{lib}"
    );
    assert!(lib.contains("#[test]"), "the project has a test");
    let c11n = read(&dir, "personality/c11n");
    assert!(c11n.contains("hello_world {"), "{c11n}");
    assert!(c11n.contains("port = 7070"), "{c11n}");
    assert!(read(&dir, ".gitignore").starts_with("/target\n"));
    assert!(dir.join("personality/modules").is_dir());
    let steps = created.to_string();
    for step in [
        "cargo build --release --target wasm32-wasip2",
        "cp target/wasm32-wasip2/release/hello_world.wasm personality/modules/",
        "serverkit check personality\n",
        "serverkit run personality",
        "serverkit check personality --module target/wasm32-wasip2/release/hello_world.wasm",
        "(the checkout this serverkit was built from;",
    ] {
        assert!(steps.contains(step), "next steps lack `{step}`:\n{steps}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(parent.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no partial directory is left behind");
}

#[test]
fn a_python_project_carries_the_contract_and_its_helpers() {
    let parent = tempfile::tempdir().unwrap();
    let created = create(&new(parent.path(), "hello", Lang::Python)).unwrap();
    let dir = &created.dir;
    let app = read(dir, "app.py");
    assert!(app.contains("name=\"hello\""), "{app}");
    let helpers = read(dir, "serverkit_module.py");
    let c = crate::contract::version::CONTRACT;
    let contract = format!("CONTRACT = Version({}, {}, {})", c.major, c.minor, c.patch);
    assert!(helpers.contains(&contract), "{helpers}");
    assert!(read(dir, "test_protocol.py").contains("unittest"));
    let world = read(dir, "wit/world.wit");
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    assert_eq!(world, read(checkout, "wit/world.wit"));
    assert!(dir.join("wit/deps/io/io.wit").is_file());
    assert!(read(dir, "personality/c11n").contains("hello {"));
    let steps = created.to_string();
    assert!(
        steps.contains("componentize-py -d wit -w module componentize -p . app -o hello.wasm"),
        "{steps}"
    );
    assert!(!steps.contains("SDK:"), "{steps}");
}

#[test]
fn an_existing_directory_is_refused_and_left_alone() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("hello");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("mine.txt"), "keep").unwrap();
    let error = create(&new(parent.path(), "hello", Lang::Rust)).unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("already exists"), "{message}");
    assert!(message.contains("never overwrites"), "{message}");
    assert_eq!(read(&dir, "mine.txt"), "keep");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}

#[test]
fn sdk_option_is_checked_and_only_for_rust() {
    let parent = tempfile::tempdir().unwrap();
    let mut python = new(parent.path(), "py", Lang::Python);
    python.sdk = Some(super::default_sdk());
    let error = format!("{:#}", create(&python).unwrap_err());
    assert!(error.contains("--sdk is for Rust projects"), "{error}");

    let mut missing = new(parent.path(), "a", Lang::Rust);
    missing.sdk = Some(parent.path().join("nowhere"));
    let error = format!("{:#}", create(&missing).unwrap_err());
    assert!(error.contains("no such directory"), "{error}");

    let mut not_sdk = new(parent.path(), "b", Lang::Rust);
    not_sdk.sdk = Some(parent.path().to_path_buf());
    let error = format!("{:#}", create(&not_sdk).unwrap_err());
    assert!(error.contains("has no Cargo.toml"), "{error}");

    let mut given = new(parent.path(), "c", Lang::Rust);
    given.sdk = Some(super::default_sdk().join("src/.."));
    let created = create(&given).unwrap();
    let manifest = read(&created.dir, "Cargo.toml");
    assert!(manifest.contains("given with --sdk"), "{manifest}");
    assert!(
        !manifest.contains("src/.."),
        "the path is made canonical: {manifest}"
    );
}

#[test]
fn an_unknown_placeholder_is_an_error_naming_the_file() {
    let vars = Vars::new("x", Path::new("/sdk"), "note");
    assert_eq!(vars.render("f", "{{name}} {{Name}} {").unwrap(), "x X {");
    let error = vars
        .render("src/lib.rs", "a {{nmae}} b")
        .unwrap_err()
        .to_string();
    assert!(error.contains("`src/lib.rs`"), "{error}");
    assert!(error.contains("{{nmae}}"), "{error}");
}

#[test]
fn componentize_py_is_the_version_the_tests_pin() {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let pins = read(checkout, "tools/test-requirements.txt");
    let pin = format!("componentize-py=={}", super::COMPONENTIZE_PY);
    assert!(
        pins.lines().any(|l| l.trim() == pin),
        "{pin} not in:\n{pins}"
    );
}

#[test]
fn the_rust_project_is_rustfmt_clean() {
    let parent = tempfile::tempdir().unwrap();
    let created = create(&new(parent.path(), "hello", Lang::Rust)).unwrap();
    let lib = created.dir.join("src/lib.rs");
    let out = match std::process::Command::new("rustfmt")
        .args(["--check", "--edition", "2024"])
        .arg(&lib)
        .output()
    {
        Ok(out) => out,
        Err(e) => return eprintln!("\n!!! SKIPPED: no rustfmt ({e}) !!!\n"),
    };
    assert!(
        out.status.success(),
        "the rendered src/lib.rs is not rustfmt-clean:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
