//! Where a module's code comes from: a `.wasm` file in the personality's `modules/` folder,
//! or a built-in selected by a c11n section of its name.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::builtin;

/// The bytes of one module and where they came from.
pub struct ModuleSource {
    /// `modules/echo.wasm`, or `built-in echo`.
    pub label: String,
    /// The file, for modules loaded from one.
    pub path: Option<PathBuf>,
    /// The component.
    pub wasm: Vec<u8>,
}

impl ModuleSource {
    /// Reads a module file.
    pub fn file(path: &Path) -> Result<Self> {
        let wasm = std::fs::read(path)
            .with_context(|| format!("failed to read module `{}`", path.display()))?;
        Ok(ModuleSource {
            label: path.display().to_string(),
            path: Some(path.to_path_buf()),
            wasm,
        })
    }

    /// A built-in module, if there is one of that name.
    pub fn builtin(name: &str) -> Option<Self> {
        builtin::get(name).map(|wasm| ModuleSource {
            label: format!("built-in {name}"),
            path: None,
            wasm: wasm.to_vec(),
        })
    }
}

/// The `.wasm` files of a `modules/` folder, sorted by name (a missing folder has none).
pub fn module_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("failed to list modules in `{}`", dir.display()));
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("failed to list modules in `{}`", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "wasm") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
