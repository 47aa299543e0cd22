//! Directories and files granted to modules: opened by the host in prestart, as root, for
//! the module's options of type `directory` and `file`, and every later lookup resolved
//! beneath them with `openat2(RESOLVE_BENEATH)`, so no path a guest sends can leave them.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;
use serverkit_c11n::{OptionType, Section, SectionSpec, Value};

/// Longest path a guest may ask to resolve: what it defends is host work and memory
/// against absurd paths (Linux's own PATH_MAX).
pub const MAX_PATH_BYTES: usize = 4096;

/// Most entries one listing hands to a guest: what it defends is host and guest memory
/// against a directory with millions of entries.
pub const MAX_LIST_ENTRIES: usize = 10_000;

/// Handles a module's section grants, opened once in prestart.
#[derive(Debug, Default)]
pub struct GrantedFs {
    /// `directory` options: key → directory opened with `O_PATH`.
    pub directories: HashMap<String, Arc<OwnedFd>>,
    /// `file` options: key → file opened read-only.
    pub files: HashMap<String, Arc<OwnedFd>>,
}

/// Opens what `section` grants; relative paths are relative to the personality directory
/// `base`. Call as root, before the privilege drop: the handles stay usable afterwards
/// (permissions are still checked on what is opened through them).
pub fn open_granted(base: &Path, spec: &SectionSpec, section: &Section) -> Result<GrantedFs> {
    let mut granted = GrantedFs::default();
    for option in &spec.options {
        let Some(Value::Str(path)) = section.get(&option.name) else {
            continue;
        };
        let (flags, map) = match option.ty {
            OptionType::Directory => (
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                &mut granted.directories,
            ),
            OptionType::File => (OFlags::RDONLY | OFlags::CLOEXEC, &mut granted.files),
            _ => continue,
        };
        let full = base.join(path);
        let fd = rustix::fs::open(&full, flags, Mode::empty())
            .map_err(std::io::Error::from)
            .with_context(|| {
                format!(
                    "failed to open `{}` (option `{}` of section `{}`)",
                    full.display(),
                    option.name,
                    spec.name
                )
            })?;
        map.insert(option.name.clone(), Arc::new(fd));
    }
    Ok(granted)
}

/// Why a lookup failed, as the guest is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// Nothing there.
    NotFound,
    /// Permissions.
    AccessDenied,
    /// The path would leave the directory.
    OutsideRoot,
    /// Malformed path.
    InvalidPath,
    /// A component is not a directory.
    NotADirectory,
    /// Listing over `MAX_LIST_ENTRIES`.
    TooManyEntries,
    /// Anything else.
    Os(String),
}

impl From<Errno> for LookupError {
    fn from(e: Errno) -> Self {
        match e {
            Errno::NOENT => LookupError::NotFound,
            Errno::ACCESS | Errno::PERM => LookupError::AccessDenied,
            // EXDEV: the resolution left the root (.., absolute path or symlink).
            Errno::XDEV => LookupError::OutsideRoot,
            Errno::NOTDIR => LookupError::NotADirectory,
            Errno::INVAL | Errno::NAMETOOLONG | Errno::LOOP => LookupError::InvalidPath,
            other => LookupError::Os(std::io::Error::from(other).to_string()),
        }
    }
}

/// Resolution flags of every guest lookup: stay beneath, and no /proc magic links.
fn beneath() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS
}

/// Opens `path` beneath `root` with `flags`; `""` and `"."` are `root` itself.
pub fn open_beneath(
    root: BorrowedFd<'_>,
    path: &str,
    flags: OFlags,
) -> Result<OwnedFd, LookupError> {
    if path.len() > MAX_PATH_BYTES || path.contains('\0') {
        return Err(LookupError::InvalidPath);
    }
    let path = if path.is_empty() { "." } else { path };
    // openat2 refuses O_NOCTTY beside O_PATH (only O_DIRECTORY and O_NOFOLLOW may join it).
    let flags = if flags.contains(OFlags::PATH) {
        flags | OFlags::CLOEXEC
    } else {
        flags | OFlags::CLOEXEC | OFlags::NOCTTY
    };
    Ok(rustix::fs::openat2(
        root,
        path,
        flags,
        Mode::empty(),
        beneath(),
    )?)
}

/// Opens `path` beneath `root` for reading (a file or a directory) and stats it.
pub fn open_file(root: BorrowedFd<'_>, path: &str) -> Result<(OwnedFd, Stat), LookupError> {
    // O_NONBLOCK: opening a fifo must not hang the session.
    let fd = open_beneath(root, path, OFlags::RDONLY | OFlags::NONBLOCK)?;
    let stat = rustix::fs::fstat(&fd)?;
    Ok((fd, stat))
}

/// What kind of entry a `Stat` describes.
pub fn kind_of(stat: &Stat) -> FileType {
    FileType::from_raw_mode(stat.st_mode)
}

/// One listed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its raw name.
    pub name: Vec<u8>,
    /// What it is (symlinks resolved beneath the root; those leading out are left out).
    pub kind: FileType,
}

/// Lists the directory at `path` beneath `root`, without `.` and `..`.
pub fn list(root: BorrowedFd<'_>, path: &str) -> Result<Vec<Entry>, LookupError> {
    let dir = open_beneath(root, path, OFlags::RDONLY | OFlags::DIRECTORY)?;
    let mut reader = rustix::fs::Dir::read_from(&dir)?;
    let mut entries = Vec::new();
    while let Some(entry) = reader.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        if entries.len() == MAX_LIST_ENTRIES {
            return Err(LookupError::TooManyEntries);
        }
        let kind = match entry.file_type() {
            FileType::Symlink | FileType::Unknown => match resolved_kind(dir.as_fd(), name) {
                Some(kind) => kind,
                None => continue,
            },
            kind => kind,
        };
        entries.push(Entry {
            name: name.to_vec(),
            kind,
        });
    }
    Ok(entries)
}

/// The kind of what `name` in `dir` resolves to, if it resolves beneath `dir`.
fn resolved_kind(dir: BorrowedFd<'_>, name: &[u8]) -> Option<FileType> {
    let name = std::str::from_utf8(name).ok()?;
    let fd = open_beneath(dir, name, OFlags::PATH).ok()?;
    rustix::fs::fstat(&fd).ok().map(|s| kind_of(&s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root() -> (tempfile::TempDir, OwnedFd) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("index.html"), "hi").unwrap();
        symlink("/etc/passwd", dir.path().join("out")).unwrap();
        symlink("sub/a.txt", dir.path().join("in")).unwrap();
        let fd =
            rustix::fs::open(dir.path(), OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        (dir, fd)
    }

    #[test]
    fn opens_files_beneath_the_root() {
        let (_dir, fd) = root();
        let (_, stat) = open_file(fd.as_fd(), "sub/a.txt").unwrap();
        assert_eq!(stat.st_size, 1);
        let (_, stat) = open_file(fd.as_fd(), "").unwrap();
        assert_eq!(kind_of(&stat), FileType::Directory);
        assert!(
            open_file(fd.as_fd(), "in").is_ok(),
            "a symlink inside is followed"
        );
    }

    #[test]
    fn nothing_leaves_the_root() {
        let (_dir, fd) = root();
        for path in ["..", "../etc/passwd", "sub/../../x", "/etc/passwd", "out"] {
            assert_eq!(
                open_file(fd.as_fd(), path).map(|_| ()),
                Err(LookupError::OutsideRoot),
                "{path}"
            );
        }
        assert_eq!(
            open_file(fd.as_fd(), "a\0b").map(|_| ()),
            Err(LookupError::InvalidPath)
        );
        assert_eq!(
            open_file(fd.as_fd(), "missing").map(|_| ()),
            Err(LookupError::NotFound)
        );
    }

    #[test]
    fn lists_entries_and_drops_links_leading_out() {
        let (_dir, fd) = root();
        let mut names: Vec<_> = list(fd.as_fd(), "")
            .unwrap()
            .into_iter()
            .map(|e| (String::from_utf8(e.name).unwrap(), e.kind))
            .collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            names,
            vec![
                ("in".into(), FileType::RegularFile),
                ("index.html".into(), FileType::RegularFile),
                ("sub".into(), FileType::Directory),
            ]
        );
        assert_eq!(
            list(fd.as_fd(), "index.html"),
            Err(LookupError::NotADirectory)
        );
    }
}
