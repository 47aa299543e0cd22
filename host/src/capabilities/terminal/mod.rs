//! Terminals: the device a module's `terminal` option names, opened by the host at
//! prestart (as root: `/dev/tty12` belongs to root) and made its operator's standard
//! output. Only a character device is opened, never created, and not through a symlink:
//! a root-opened "terminal" must not become a way to create or append to files.

use std::fs::File;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// A section's `terminal` option with the device it names.
#[derive(Debug, Clone, PartialEq)]
pub struct TerminalGrant {
    /// The option's name.
    pub option: String,
    /// The device.
    pub path: PathBuf,
}

/// Opens `path` write-only, as no controlling terminal, if it is a character device
/// (checked on the opened descriptor, so nothing can be swapped in between).
pub fn open(path: &Path) -> Result<File> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("failed to open terminal `{}`", path.display()))?;
    let kind = file
        .metadata()
        .with_context(|| format!("failed to stat terminal `{}`", path.display()))?
        .file_type();
    if !kind.is_char_device() {
        bail!(
            "`{}` is not a terminal (a character device such as /dev/tty12): refused",
            path.display()
        );
    }
    // O_NONBLOCK kept the open from waiting on a line; writes may wait as usual.
    let flags = rustix::fs::fcntl_getfl(&file)?;
    rustix::fs::fcntl_setfl(&file, flags - rustix::fs::OFlags::NONBLOCK)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_device_opens() {
        assert!(open(Path::new("/dev/null")).is_ok());
    }

    #[test]
    fn a_plain_file_a_missing_path_and_a_symlink_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "").unwrap();
        let err = format!("{:#}", open(&plain).unwrap_err());
        assert!(err.contains("is not a terminal"), "{err}");
        let missing = dir.path().join("missing");
        assert!(open(&missing).is_err());
        assert!(!missing.exists(), "never created");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        assert!(open(&link).is_err(), "not through a symlink");
    }
}
