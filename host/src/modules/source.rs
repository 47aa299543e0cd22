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

/// The largest module file read. Compiling takes memory and time in proportion to the
/// code, in the serving process (at startup or on the reload thread); the shipped modules
/// are 0.1 to 2 MiB, a Python one about 40.
pub const MAX_MODULE_BYTES: u64 = 256 << 20;

impl ModuleSource {
    /// Reads a module file: a regular file (a symlink to one is followed) of at most
    /// [`MAX_MODULE_BYTES`]. Opened without waiting, so a fifo named `x.wasm` is refused
    /// rather than hanging startup or the reload thread.
    pub fn file(path: &Path) -> Result<Self> {
        let wasm = read_module(path)
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

fn read_module(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    anyhow::ensure!(meta.is_file(), "not a regular file");
    anyhow::ensure!(
        meta.len() <= MAX_MODULE_BYTES,
        "{} MiB, more than the {} MiB a module may be",
        meta.len() >> 20,
        MAX_MODULE_BYTES >> 20
    );
    let mut wasm = Vec::with_capacity(meta.len() as usize);
    // Bounded again while reading: the file may grow after the `fstat`.
    file.take(MAX_MODULE_BYTES + 1).read_to_end(&mut wasm)?;
    anyhow::ensure!(
        wasm.len() as u64 <= MAX_MODULE_BYTES,
        "it grew past {} MiB while read",
        MAX_MODULE_BYTES >> 20
    );
    Ok(wasm)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_file_must_be_a_regular_file_of_bounded_size() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.wasm");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = format!("{:#}", ModuleSource::file(&fifo).err().unwrap());
        assert!(err.contains("not a regular file"), "{err}");
        let big = dir.path().join("big.wasm");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_MODULE_BYTES + 1)
            .unwrap();
        let err = format!("{:#}", ModuleSource::file(&big).err().unwrap());
        assert!(err.contains("more than the 256 MiB"), "{err}");
        let small = dir.path().join("small.wasm");
        std::fs::write(&small, b"\0asm").unwrap();
        assert_eq!(ModuleSource::file(&small).unwrap().wasm, b"\0asm");
    }
}
