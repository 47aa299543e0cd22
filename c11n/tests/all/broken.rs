//! Broken configurations and the exact errors they must print: every
//! `tests/c11n/broken/NAME.c11n` is loaded with the test vocabulary and its diagnostics
//! compared with `NAME.expected`, byte for byte (the display plus a final newline).
//!
//! To write the `.expected` files from the current output, run with `C11N_BLESS=1`,
//! then read every changed file before committing it.

use std::fs;
use std::path::Path;

use serverkit_c11n::load;

use crate::fixtures;
use crate::vocab::test_vocabulary;

#[test]
fn broken_configs_print_their_expected_errors() {
    let dir = fixtures().join("broken");
    let bless = std::env::var_os("C11N_BLESS").is_some();
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| {
            entry
                .expect("listing the fixture folder")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();

    let configs: Vec<&str> = names
        .iter()
        .filter_map(|n| n.strip_suffix(".c11n"))
        .collect();
    assert!(
        !configs.is_empty(),
        "no .c11n fixtures in {}",
        dir.display()
    );
    for orphan in names.iter().filter_map(|n| n.strip_suffix(".expected")) {
        assert!(
            configs.contains(&orphan),
            "{orphan}.expected has no {orphan}.c11n"
        );
    }

    let vocab = test_vocabulary();
    let mut failures = Vec::new();
    for name in configs {
        let text = fs::read_to_string(dir.join(format!("{name}.c11n"))).unwrap();
        let actual = match load(&format!("broken/{name}.c11n"), &text, &vocab) {
            Ok(_) => {
                failures.push(format!("{name}.c11n loaded without errors"));
                continue;
            }
            Err(errors) => format!("{errors}\n"),
        };
        let expected_path = dir.join(format!("{name}.expected"));
        if bless {
            fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        match read_expected(&expected_path) {
            None => failures.push(format!("{name}.c11n has no {name}.expected")),
            Some(expected) if expected != actual => failures.push(format!(
                "{name}.c11n\n--- expected\n{expected}--- actual\n{actual}"
            )),
            Some(_) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn read_expected(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok()
}
