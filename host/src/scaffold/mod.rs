//! `serverkit new`: writes a ready module project (Rust or Python) from the templates
//! compiled into the binary: the module named, the SDK or contract it builds against, a
//! unit test, and a personality that runs it.

mod templates;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::contract::version::CONTRACT;

/// The language of a new project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// A Rust crate on the serverkit SDK, built with cargo for wasm32-wasip2.
    Rust,
    /// A Python app built with componentize-py.
    Python,
}

/// What `serverkit new` was asked for.
#[derive(Debug, Clone)]
pub struct NewProject {
    /// The module's name: its c11n section, its crate, its directory.
    pub name: String,
    /// The language.
    pub lang: Lang,
    /// The SDK a Rust project depends on; `None` for [`default_sdk`].
    pub sdk: Option<PathBuf>,
    /// Where the project directory is made (its name is `name`).
    pub parent: PathBuf,
}

/// The port the new project's personality listens on.
const PORT: u16 = 7070;

/// The componentize-py the Python template is built and tested with (as pinned in
/// `tools/test-requirements.txt`).
const COMPONENTIZE_PY: &str = "0.25.1";

/// The SDK of the checkout this binary was built from. A path into a checkout is the
/// only way the SDK ships today (it reads the checkout's `wit/`), so an installed binary
/// names where it was built; `--sdk` names another checkout's.
pub fn default_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|checkout| checkout.join("guest-modules/sdk"))
        .unwrap_or_default()
}

/// The values the templates' `{{...}}` placeholders take.
struct Vars {
    pairs: Vec<(&'static str, String)>,
}

impl Vars {
    fn new(name: &str, sdk: &Path, sdk_note: &str) -> Vars {
        let c = CONTRACT;
        Vars {
            pairs: vec![
                ("name", name.to_string()),
                ("Name", type_name(name)),
                ("sdk", sdk.display().to_string()),
                ("sdk_note", sdk_note.to_string()),
                ("port", PORT.to_string()),
                ("contract", format!("{}, {}, {}", c.major, c.minor, c.patch)),
                (
                    "contract_dotted",
                    format!("{}.{}.{}", c.major, c.minor, c.patch),
                ),
                ("componentize_py", COMPONENTIZE_PY.to_string()),
            ],
        }
    }

    /// `template` with every `{{key}}` replaced; an unknown placeholder is a template bug.
    fn render(&self, file: &str, template: &str) -> Result<String> {
        let mut text = template.to_string();
        for (key, value) in &self.pairs {
            text = text.replace(&format!("{{{{{key}}}}}"), value);
        }
        if let Some(at) = text.find("{{") {
            let rest: String = text[at..].chars().take(30).collect();
            bail!("template file `{file}` has an unknown placeholder at `{rest}`");
        }
        Ok(text)
    }
}

/// `hello_world` as a Rust type name: `HelloWorld`.
fn type_name(name: &str) -> String {
    name.split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// A module name is a c11n section name, `[a-z][a-z0-9_]*`, and so a crate name too.
fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        bail!(
            "`{name}` cannot name a module: a module's name is its c11n section's, \
             a lowercase letter then lowercase letters, digits and `_` (e.g. `hello_world`)"
        );
    }
    Ok(())
}

/// A project written by [`create`]; displays as the next steps.
#[derive(Debug)]
pub struct Created {
    /// The project directory.
    pub dir: PathBuf,
    lang: Lang,
    name: String,
    sdk_line: Option<String>,
}

/// Writes the project `new` describes into `parent/name`, which must not exist.
pub fn create(new: &NewProject) -> Result<Created> {
    check_name(&new.name)?;
    let dir = new.parent.join(&new.name);
    if dir.symlink_metadata().is_ok() {
        bail!(
            "`{}` already exists: `serverkit new` writes a new directory and never \
             overwrites one (choose another name, or move it away)",
            dir.display()
        );
    }
    let (files, vars, sdk_line) = match new.lang {
        Lang::Rust => {
            let (sdk, note) = sdk_dependency(new.sdk.as_deref())?;
            let line = format!(
                "serverkit-sdk = {{ path = \"{}\" }} ({note})",
                sdk.display()
            );
            (
                templates::RUST,
                Vars::new(&new.name, &sdk, &note),
                Some(line),
            )
        }
        Lang::Python => {
            if new.sdk.is_some() {
                bail!(
                    "--sdk is for Rust projects: a Python project carries the contract in its `wit/`"
                );
            }
            (
                templates::PYTHON,
                Vars::new(&new.name, Path::new(""), ""),
                None,
            )
        }
    };
    // Written beside the final name and renamed: a failure leaves no half project.
    let partial = new
        .parent
        .join(format!(".{}.partial-{}", new.name, std::process::id()));
    let written = write_files(&partial, files, &vars, new.lang).and_then(|()| {
        std::fs::rename(&partial, &dir)
            .with_context(|| format!("failed to move the project to `{}`", dir.display()))
    });
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(e);
    }
    Ok(Created {
        dir,
        lang: new.lang,
        name: new.name.clone(),
        sdk_line,
    })
}

fn write_files(
    dir: &Path,
    files: &[templates::TemplateFile],
    vars: &Vars,
    lang: Lang,
) -> Result<()> {
    let mut all: Vec<(&str, String)> = Vec::new();
    for (to, template) in files {
        all.push((to, vars.render(to, template)?));
    }
    if lang == Lang::Python {
        all.extend(
            templates::WIT
                .iter()
                .map(|(to, text)| (*to, text.to_string())),
        );
    }
    for (to, text) in all {
        let path = dir.join(to);
        let parent = path.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create `{}`", parent.display()))?;
        std::fs::write(&path, text)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
    }
    let modules = dir.join("personality/modules");
    std::fs::create_dir_all(&modules)
        .with_context(|| format!("failed to create `{}`", modules.display()))
}

/// The SDK path a Rust project depends on, absolute, and a note saying where it came from.
fn sdk_dependency(asked: Option<&Path>) -> Result<(PathBuf, String)> {
    match asked {
        Some(path) => {
            let sdk = std::fs::canonicalize(path)
                .with_context(|| format!("--sdk `{}`: no such directory", path.display()))?;
            if !sdk.join("Cargo.toml").is_file() {
                bail!(
                    "--sdk `{}` has no Cargo.toml: name a checkout's `guest-modules/sdk`",
                    path.display()
                );
            }
            Ok((sdk, "given with --sdk".into()))
        }
        None => {
            let sdk = default_sdk();
            let note = if sdk.join("Cargo.toml").is_file() {
                "the checkout this serverkit was built from; `serverkit new --sdk PATH` names another"
            } else {
                "the checkout this serverkit was built from, WHICH IS NOT THERE NOW: \
                 edit this path or run `serverkit new --sdk PATH`"
            };
            Ok((sdk, note.into()))
        }
    }
}

impl fmt::Display for Created {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (dir, name) = (self.dir.display(), &self.name);
        writeln!(f, "created `{dir}`: module `{name}` ({:?})", self.lang)?;
        if let Some(sdk) = &self.sdk_line {
            writeln!(f, "SDK: {sdk}")?;
        }
        writeln!(f, "\nnext steps:\n  cd {dir}")?;
        let (test, build, wasm) = match self.lang {
            Lang::Rust => (
                "cargo test".to_string(),
                "cargo build --release --target wasm32-wasip2   # rustup target add wasm32-wasip2"
                    .to_string(),
                format!("target/wasm32-wasip2/release/{name}.wasm"),
            ),
            Lang::Python => (
                "python3 -m unittest".to_string(),
                format!(
                    "componentize-py -d wit -w module componentize -p . app -o {name}.wasm   # pip install componentize-py=={COMPONENTIZE_PY}"
                ),
                format!("{name}.wasm"),
            ),
        };
        writeln!(f, "  {test}")?;
        writeln!(f, "  {build}")?;
        writeln!(f, "  cp {wasm} personality/modules/")?;
        writeln!(f, "  serverkit check personality")?;
        writeln!(
            f,
            "  serverkit run personality        # then: nc 127.0.0.1 {PORT}"
        )?;
        writeln!(
            f,
            "hot swap, while it runs: rebuild, preflight, then replace the file in one step"
        )?;
        writeln!(f, "  serverkit check personality --module {wasm}")?;
        writeln!(f, "  cp {wasm} personality/modules/{name}.new")?;
        write!(
            f,
            "  mv personality/modules/{name}.new personality/modules/{name}.wasm"
        )
    }
}

#[cfg(test)]
mod tests;
