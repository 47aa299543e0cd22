//! Directories and files granted to a module: one grant mechanism for both. The host
//! opens each `directory` and `file` option the operator wrote once, at prestart (as root),
//! and keeps one descriptor for it; every later lookup resolves beneath it
//! ([`beneath`]). Work that may wait for the disk never runs on an async worker
//! ([`blocking`]). The Maildir protocol (`capabilities::maildrop`) sits on top.
//!
//! - `beneath`: lookups beneath a directory, and their one errno mapping.
//! - `blocking`: the one blocking policy.
//! - `host`: `serverkit:module/filesystem`.

pub mod beneath;
pub mod blocking;
pub mod host;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustix::fs::{FileType, Mode, OFlags};

pub use beneath::{LookupError, Resolve, Symlinks};

/// What a granted option names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantKind {
    /// A `directory` option: lookups beneath it.
    Directory,
    /// A `file` option: that one file, read-only.
    File,
}

/// A `directory` or `file` option with the value the operator wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct FileGrant {
    /// The option's name.
    pub option: String,
    /// Its value, resolved against the personality directory.
    pub path: PathBuf,
    /// What it names.
    pub kind: GrantKind,
}

/// One granted directory or file, opened.
#[derive(Debug)]
pub struct Opened {
    /// What was granted.
    pub grant: FileGrant,
    /// The descriptor, opened once for the life of the module.
    pub fd: Arc<OwnedFd>,
}

/// Every directory and file a module's section grants, opened.
#[derive(Debug, Default)]
pub struct GrantedFiles {
    opened: Vec<Opened>,
}

impl GrantedFiles {
    /// Opens each grant (at prestart, as root: the descriptors stay usable after the drop,
    /// and permissions are still checked on what is opened through them). A directory is
    /// opened read-only, which serves both lookups beneath it and listings; a file must be
    /// a regular file.
    pub fn open(grants: &[FileGrant]) -> Result<Self> {
        let opened = grants
            .iter()
            .map(|grant| {
                let fd = open_grant(grant).with_context(|| {
                    format!(
                        "failed to open `{}` (option `{}`)",
                        grant.path.display(),
                        grant.option
                    )
                })?;
                Ok(Opened {
                    grant: grant.clone(),
                    fd: Arc::new(fd),
                })
            })
            .collect::<Result<_>>()?;
        Ok(GrantedFiles { opened })
    }

    /// The opened grant of option `option`, if it is one of `kind`.
    pub fn get(&self, option: &str, kind: GrantKind) -> Option<&Opened> {
        self.opened
            .iter()
            .find(|o| o.grant.option == option && o.grant.kind == kind)
    }

    /// How many descriptors the grants hold.
    pub fn len(&self) -> usize {
        self.opened.len()
    }

    /// Whether nothing is granted.
    pub fn is_empty(&self) -> bool {
        self.opened.is_empty()
    }
}

fn open_grant(grant: &FileGrant) -> Result<OwnedFd> {
    let flags = match grant.kind {
        GrantKind::Directory => OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        GrantKind::File => OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
    };
    let fd = rustix::fs::open(&grant.path, flags, Mode::empty()).map_err(std::io::Error::from)?;
    if grant.kind == GrantKind::File {
        let stat = rustix::fs::fstat(&fd).map_err(std::io::Error::from)?;
        if beneath::kind_of(&stat) != FileType::RegularFile {
            bail!("not a regular file");
        }
    }
    Ok(fd)
}

/// `path` resolved against the personality directory `base`.
pub fn resolve(base: &Path, path: &str) -> PathBuf {
    base.join(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(option: &str, path: &Path, kind: GrantKind) -> FileGrant {
        FileGrant {
            option: option.into(),
            path: path.to_path_buf(),
            kind,
        }
    }

    #[test]
    fn each_grant_is_opened_once_and_found_by_option_and_kind() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("types"), "text/plain txt\n").unwrap();
        let granted = GrantedFiles::open(&[
            grant("doc_root", dir.path(), GrantKind::Directory),
            grant("mime_types", &dir.path().join("types"), GrantKind::File),
        ])
        .unwrap();
        assert_eq!(granted.len(), 2);
        assert!(granted.get("doc_root", GrantKind::Directory).is_some());
        assert!(granted.get("doc_root", GrantKind::File).is_none());
        assert!(granted.get("mime_types", GrantKind::File).is_some());
    }

    #[test]
    fn a_file_grant_must_be_a_regular_file_and_errors_name_the_option() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = GrantedFiles::open(&[grant("secret", &fifo, GrantKind::File)]).unwrap_err();
        let err = format!("{err:#}");
        assert!(
            err.contains("option `secret`") && err.contains("not a regular file"),
            "{err}"
        );
        let missing = dir.path().join("missing");
        let err = GrantedFiles::open(&[grant("root", &missing, GrantKind::Directory)]);
        assert!(format!("{:#}", err.unwrap_err()).contains("missing"));
    }
}
