//! Lookups beneath a granted directory: every path a guest sends is resolved by the
//! kernel with `openat2(RESOLVE_BENEATH)` from the directory's descriptor, so neither `..`,
//! an absolute path nor a symlink can lead out of it; one errno mapping for every lookup.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

/// Longest path a guest may ask to resolve: what it defends is host work and memory
/// against absurd paths (Linux's own PATH_MAX).
pub const MAX_PATH_BYTES: usize = 4096;

/// Most entries one listing hands to a guest: what it defends is host and guest memory
/// against a directory with millions of entries.
pub const MAX_LIST_ENTRIES: usize = 10_000;

/// Whether a lookup may pass through symlinks that stay beneath the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symlinks {
    /// Followed while they stay beneath (a site's `latest -> v2` link).
    FollowBeneath,
    /// Refused anywhere on the way (Maildirs: one user's link to another's mail).
    Refuse,
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
    /// Not a regular file or a directory (a fifo, a device, a socket): never opened for
    /// reading, since opening or reading one could hang or act on a device.
    NotAFile,
    /// The module's descriptor budget is spent.
    NoDescriptors,
    /// A cache-only lookup would have had to wait for the disk.
    WouldBlock,
    /// Anything else.
    Os(String),
}

impl From<Errno> for LookupError {
    fn from(e: Errno) -> Self {
        match e {
            Errno::NOENT => LookupError::NotFound,
            Errno::ACCESS | Errno::PERM => LookupError::AccessDenied,
            // EXDEV: the resolution left the root (.., absolute path or symlink).
            // ELOOP with RESOLVE_NO_SYMLINKS: a symlink on the way, refused as leading out.
            Errno::XDEV | Errno::LOOP => LookupError::OutsideRoot,
            Errno::NOTDIR => LookupError::NotADirectory,
            Errno::INVAL | Errno::NAMETOOLONG => LookupError::InvalidPath,
            // RESOLVE_CACHED could not finish from the caches: the caller retries off the
            // worker (see `blocking`).
            Errno::AGAIN => LookupError::WouldBlock,
            other => LookupError::Os(std::io::Error::from(other).to_string()),
        }
    }
}

/// Resolution flags of a guest lookup: stay beneath, no /proc magic links, and no
/// symlink at all when `symlinks` says so.
fn beneath(symlinks: Symlinks) -> ResolveFlags {
    let flags = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    match symlinks {
        Symlinks::FollowBeneath => flags,
        Symlinks::Refuse => flags | ResolveFlags::NO_SYMLINKS,
    }
}

/// How a lookup resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolve {
    /// Symlinks on the way.
    pub symlinks: Symlinks,
    /// Only from the kernel's caches (`RESOLVE_CACHED`): fails with `WouldBlock` rather
    /// than wait for the disk, so it may run on an async worker.
    pub cached_only: bool,
}

impl Resolve {
    /// Following symlinks beneath, waiting for the disk if need be.
    pub const FOLLOW: Resolve = Resolve {
        symlinks: Symlinks::FollowBeneath,
        cached_only: false,
    };
}

/// Opens `path` beneath `root` with `flags`; `""` and `"."` are `root` itself.
pub fn open_beneath(
    root: BorrowedFd<'_>,
    path: &str,
    flags: OFlags,
    how: Resolve,
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
    let mut resolve = beneath(how.symlinks);
    if how.cached_only {
        resolve |= ResolveFlags::CACHED;
    }
    Ok(rustix::fs::openat2(
        root,
        path,
        flags,
        Mode::empty(),
        resolve,
    )?)
}

/// Opens `path` beneath `root` for reading, if it is a regular file or a directory, and
/// stats it. O_NONBLOCK, so that opening a fifo returns at once; anything but a file or a
/// directory is then closed unread.
pub fn open_file(
    root: BorrowedFd<'_>,
    path: &str,
    how: Resolve,
) -> Result<(OwnedFd, Stat), LookupError> {
    let fd = open_beneath(root, path, OFlags::RDONLY | OFlags::NONBLOCK, how)?;
    let stat = rustix::fs::fstat(&fd)?;
    match kind_of(&stat) {
        FileType::RegularFile | FileType::Directory => Ok((fd, stat)),
        _ => Err(LookupError::NotAFile),
    }
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
    let dir = open_beneath(
        root,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY,
        Resolve::FOLLOW,
    )?;
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
    let fd = open_beneath(dir, name, OFlags::PATH, Resolve::FOLLOW).ok()?;
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
        let (_, stat) = open_file(fd.as_fd(), "sub/a.txt", Resolve::FOLLOW).unwrap();
        assert_eq!(stat.st_size, 1);
        let (_, stat) = open_file(fd.as_fd(), "", Resolve::FOLLOW).unwrap();
        assert_eq!(kind_of(&stat), FileType::Directory);
        assert!(
            open_file(fd.as_fd(), "in", Resolve::FOLLOW).is_ok(),
            "a symlink inside is followed"
        );
    }

    #[test]
    fn nothing_leaves_the_root() {
        let (_dir, fd) = root();
        for path in ["..", "../etc/passwd", "sub/../../x", "/etc/passwd", "out"] {
            assert_eq!(
                open_file(fd.as_fd(), path, Resolve::FOLLOW).map(|_| ()),
                Err(LookupError::OutsideRoot),
                "{path}"
            );
        }
        assert_eq!(
            open_file(fd.as_fd(), "a\0b", Resolve::FOLLOW).map(|_| ()),
            Err(LookupError::InvalidPath)
        );
        assert_eq!(
            open_file(fd.as_fd(), "missing", Resolve::FOLLOW).map(|_| ()),
            Err(LookupError::NotFound)
        );
    }

    #[test]
    fn a_fifo_or_device_is_never_opened_for_reading() {
        let (dir, fd) = root();
        nix::unistd::mkfifo(&dir.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(
            open_file(fd.as_fd(), "fifo", Resolve::FOLLOW).map(|_| ()),
            Err(LookupError::NotAFile),
            "refused at once, not hung"
        );
    }

    #[test]
    fn refusing_symlinks_refuses_even_those_staying_beneath() {
        let (_dir, fd) = root();
        let refuse = Resolve {
            symlinks: Symlinks::Refuse,
            cached_only: false,
        };
        assert_eq!(
            open_file(fd.as_fd(), "in", refuse).map(|_| ()),
            Err(LookupError::OutsideRoot)
        );
        assert!(open_file(fd.as_fd(), "sub/a.txt", refuse).is_ok());
    }

    #[test]
    fn a_cached_only_lookup_of_a_cached_file_succeeds() {
        let (_dir, fd) = root();
        let _ = open_file(fd.as_fd(), "index.html", Resolve::FOLLOW);
        let cached = Resolve {
            cached_only: true,
            ..Resolve::FOLLOW
        };
        match open_file(fd.as_fd(), "index.html", cached) {
            Ok(_) | Err(LookupError::WouldBlock) => {}
            Err(e) => panic!("{e:?}"),
        }
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
