//! The project templates, compiled into the binary so that `serverkit new` works from an
//! installed binary with no checkout beside it: `templates/rust`, `templates/python`, and
//! for Python the contract (`wit/`), which componentize-py reads to generate bindings.

/// One file of a template: where it goes in the project, and its text before rendering.
pub type TemplateFile = (&'static str, &'static str);

/// `templates/rust`, rendered with [`super::Vars`].
pub const RUST: &[TemplateFile] = &[
    (
        "Cargo.toml",
        include_str!("../../../templates/rust/Cargo.toml"),
    ),
    (
        "README.md",
        include_str!("../../../templates/rust/README.md"),
    ),
    (
        ".gitignore",
        include_str!("../../../templates/rust/gitignore"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../templates/rust/src/lib.rs"),
    ),
    (
        "personality/c11n",
        include_str!("../../../templates/rust/personality/c11n"),
    ),
];

/// `templates/python`, rendered with [`super::Vars`].
pub const PYTHON: &[TemplateFile] = &[
    ("app.py", include_str!("../../../templates/python/app.py")),
    (
        "protocol.py",
        include_str!("../../../templates/python/protocol.py"),
    ),
    (
        "test_protocol.py",
        include_str!("../../../templates/python/test_protocol.py"),
    ),
    (
        "serverkit_module.py",
        include_str!("../../../templates/python/serverkit_module.py"),
    ),
    (
        "README.md",
        include_str!("../../../templates/python/README.md"),
    ),
    (
        ".gitignore",
        include_str!("../../../templates/python/gitignore"),
    ),
    (
        "personality/c11n",
        include_str!("../../../templates/python/personality/c11n"),
    ),
];

/// The contract this binary speaks, copied verbatim (never rendered) into a Python
/// project's `wit/`.
pub const WIT: &[TemplateFile] = &[
    ("wit/world.wit", include_str!("../../../wit/world.wit")),
    ("wit/types.wit", include_str!("../../../wit/types.wit")),
    ("wit/config.wit", include_str!("../../../wit/config.wit")),
    (
        "wit/connection.wit",
        include_str!("../../../wit/connection.wit"),
    ),
    (
        "wit/database.wit",
        include_str!("../../../wit/database.wit"),
    ),
    (
        "wit/filesystem.wit",
        include_str!("../../../wit/filesystem.wit"),
    ),
    ("wit/heap.wit", include_str!("../../../wit/heap.wit")),
    ("wit/log.wit", include_str!("../../../wit/log.wit")),
    (
        "wit/maildrop.wit",
        include_str!("../../../wit/maildrop.wit"),
    ),
    (
        "wit/prestart.wit",
        include_str!("../../../wit/prestart.wit"),
    ),
    ("wit/stats.wit", include_str!("../../../wit/stats.wit")),
    ("wit/store.wit", include_str!("../../../wit/store.wit")),
    ("wit/auth.wit", include_str!("../../../wit/auth.wit")),
    (
        "wit/deps/io/io.wit",
        include_str!("../../../wit/deps/io/io.wit"),
    ),
];

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::{PYTHON, RUST, TemplateFile, WIT};

    fn checkout() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
    }

    /// Every file under `dir`, relative to it.
    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut dirs = vec![dir.to_path_buf()];
        while let Some(d) = dirs.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    found.push(path.strip_prefix(dir).unwrap().to_path_buf());
                }
            }
        }
        found.sort();
        found
    }

    /// The sources of `list` relative to `dir` (`.gitignore` ships as `gitignore`, so
    /// that it does not apply to the checkout itself).
    fn listed(list: &[TemplateFile], strip: &str) -> Vec<PathBuf> {
        let mut listed: Vec<PathBuf> = list
            .iter()
            .map(|(to, _)| {
                let to = to.strip_prefix(strip).unwrap_or(to);
                PathBuf::from(if to == ".gitignore" { "gitignore" } else { to })
            })
            .collect();
        listed.sort();
        listed
    }

    #[test]
    fn every_file_of_each_template_and_of_the_contract_is_embedded() {
        let root = checkout();
        let wit: Vec<PathBuf> = files_under(&root.join("wit"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "wit"))
            .collect();
        assert_eq!(listed(WIT, "wit/"), wit, "wit/ changed: update WIT");
        assert_eq!(listed(RUST, ""), files_under(&root.join("templates/rust")));
        assert_eq!(
            listed(PYTHON, ""),
            files_under(&root.join("templates/python"))
        );
    }
}
