//! Maildir maildrops beneath directories the host opened for a module in prestart: the
//! host side of `serverkit:module/maildrop`. Every path is resolved by the kernel with
//! `openat2(RESOLVE_BENEATH)` from the granted directory's descriptor, so neither `..` nor
//! a symlink can leave it; each open Maildir holds an exclusive `flock` for its session.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use rustix::fs::{AtFlags, Dir, FileType, FlockOperation, Mode, OFlags, ResolveFlags};

/// Most messages listed from one Maildir: defends host and guest memory against a
/// maildrop holding millions of files.
pub const MAX_MESSAGES: usize = 100_000;
/// Most bytes one `read` returns: bounds the copy into guest memory per call.
pub const MAX_READ_BYTES: u32 = 1024 * 1024;

/// A directory opened by the host for a module's `directory` option.
#[derive(Clone)]
pub struct GrantedDirectory {
    /// The option's name (`maildrop_root`).
    pub option: String,
    /// The configured path, for absolute paths returned by a module's lookup.
    pub path: PathBuf,
    /// The open directory.
    pub fd: Arc<OwnedFd>,
}

impl GrantedDirectory {
    /// Opens `path` for `option` (at prestart, possibly as root).
    pub fn open(option: &str, path: &Path) -> Result<Self> {
        let fd = rustix::fs::open(
            path,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| {
            format!(
                "failed to open directory `{}` of option `{option}`",
                path.display()
            )
        })?;
        Ok(GrantedDirectory {
            option: option.to_string(),
            path: path.to_path_buf(),
            fd: Arc::new(fd),
        })
    }
}

/// Why a maildrop operation failed (mapped one to one onto the WIT error).
#[derive(Debug)]
pub enum MaildropError {
    /// See the WIT documentation of each case.
    NotGranted(String),
    /// The path escapes the granted directory.
    OutsideRoot(String),
    /// No such maildrop or message.
    NotFound(String),
    /// Locked by another session.
    InUse,
    /// A refused message name.
    InvalidName(String),
    /// An operating-system error.
    Io(String),
    /// Past a host limit.
    TooLarge(String),
}

impl MaildropError {
    fn io(what: &str, e: rustix::io::Errno) -> Self {
        if e == rustix::io::Errno::NOENT {
            MaildropError::NotFound(what.to_string())
        } else {
            MaildropError::Io(format!("{what}: {e}"))
        }
    }
}

/// An open, locked Maildir: the `maildir` resource of the contract. Clones share the
/// descriptor (a clone lives only for one blocking call).
///
/// It holds one descriptor, the Maildir's own: `new/` and `cur/` are opened beneath it for
/// each call. A session is a socket plus this descriptor, so a server under the common
/// hard limit of 20 000 open files can still hold thousands of logged-in sessions.
#[derive(Clone)]
pub struct Maildir {
    /// The Maildir itself: its `flock` is the session's exclusive lock, released when
    /// this descriptor closes (the session ended, trapped or was killed).
    dir: Arc<OwnedFd>,
}

/// One message file.
pub struct MessageFile {
    /// `new/NAME` or `cur/NAME`.
    pub name: String,
    /// Bytes on disk.
    pub size: u64,
}

impl Maildir {
    /// Opens and locks the Maildir at `path` beneath `root` (blocking).
    pub fn open(root: &GrantedDirectory, path: &str) -> Result<Maildir, MaildropError> {
        let relative = beneath(&root.path, path)?;
        let how = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
        let dir = rustix::fs::openat2(root.fd.as_fd(), &relative, flags, Mode::empty(), how)
            .map_err(|e| match e {
                rustix::io::Errno::XDEV => MaildropError::OutsideRoot(path.to_string()),
                e => MaildropError::io(path, e),
            })?;
        rustix::fs::flock(&dir, FlockOperation::NonBlockingLockExclusive).map_err(|e| {
            if e == rustix::io::Errno::WOULDBLOCK {
                MaildropError::InUse
            } else {
                MaildropError::io("lock", e)
            }
        })?;
        let maildir = Maildir { dir: Arc::new(dir) };
        // Both folders must be there now, as a Maildir has them.
        maildir.folder("new")?;
        maildir.folder("cur")?;
        Ok(maildir)
    }

    /// Opens `new/` or `cur/` beneath the Maildir (not through a symlink).
    fn folder(&self, name: &str) -> Result<OwnedFd, MaildropError> {
        let how = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        rustix::fs::openat2(self.dir.as_fd(), name, flags, Mode::empty(), how)
            .map_err(|e| MaildropError::io(name, e))
    }

    /// Lists `new/` and `cur/`, sorted by name (blocking).
    pub fn messages(&self) -> Result<Vec<MessageFile>, MaildropError> {
        let mut out = Vec::new();
        for folder in ["cur", "new"] {
            for (name, size) in list(&self.folder(folder)?)? {
                if out.len() >= MAX_MESSAGES {
                    return Err(MaildropError::TooLarge(format!(
                        "more than {MAX_MESSAGES} messages"
                    )));
                }
                out.push(MessageFile {
                    name: format!("{folder}/{name}"),
                    size,
                });
            }
        }
        out.sort_by(|a, b| a.name[4..].cmp(&b.name[4..]));
        Ok(out)
    }

    /// Reads up to `length` bytes of message `name` from `offset` (blocking).
    pub fn read(&self, name: &str, offset: u64, length: u32) -> Result<Vec<u8>, MaildropError> {
        if length > MAX_READ_BYTES {
            return Err(MaildropError::TooLarge(format!(
                "reads are at most {MAX_READ_BYTES} bytes"
            )));
        }
        let (folder, file) = self.split(name)?;
        let fd = rustix::fs::openat(
            folder.as_fd(),
            file,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| MaildropError::io(name, e))?;
        let mut buf = vec![0u8; length as usize];
        let mut filled = 0;
        while filled < buf.len() {
            let n = rustix::io::pread(&fd, &mut buf[filled..], offset + filled as u64)
                .map_err(|e| MaildropError::io(name, e))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        buf.truncate(filled);
        Ok(buf)
    }

    /// Unlinks the messages; one renamed since listing is found by its unique name
    /// (the part before `:`) in either folder (blocking).
    pub fn delete(&self, names: &[String]) -> Result<u32, MaildropError> {
        if names.len() > MAX_MESSAGES {
            return Err(MaildropError::TooLarge(format!(
                "at most {MAX_MESSAGES} messages per call"
            )));
        }
        let mut deleted = 0;
        for name in names {
            let (folder, file) = self.split(name)?;
            match rustix::fs::unlinkat(folder.as_fd(), file, AtFlags::empty()) {
                Ok(()) => deleted += 1,
                Err(rustix::io::Errno::NOENT) => {
                    if self.delete_renamed(file)? {
                        deleted += 1;
                    }
                }
                Err(e) => return Err(MaildropError::io(name, e)),
            }
        }
        Ok(deleted)
    }

    fn delete_renamed(&self, file: &str) -> Result<bool, MaildropError> {
        let unique = file.split(':').next().unwrap_or(file);
        for folder in ["cur", "new"] {
            let fd = self.folder(folder)?;
            for (name, _) in list(&fd)? {
                if name.split(':').next() == Some(unique) {
                    rustix::fs::unlinkat(fd.as_fd(), name.as_str(), AtFlags::empty())
                        .map_err(|e| MaildropError::io(&name, e))?;
                    return Ok(true);
                }
            }
        }
        Ok(false) // already gone: another client deleted it, which is what was asked
    }

    /// `new/NAME` or `cur/NAME` into the folder, opened, and a plain file name.
    fn split<'a>(&self, name: &'a str) -> Result<(OwnedFd, &'a str), MaildropError> {
        let invalid = || MaildropError::InvalidName(name.to_string());
        let (folder, file) = name.split_once('/').ok_or_else(invalid)?;
        if file.is_empty() || file.starts_with('.') || file.contains('/') || file.contains('\0') {
            return Err(invalid());
        }
        match folder {
            "new" | "cur" => Ok((self.folder(folder)?, file)),
            _ => Err(invalid()),
        }
    }
}

/// Regular, visible files of one folder with their sizes.
fn list(fd: &OwnedFd) -> Result<Vec<(String, u64)>, MaildropError> {
    let mut dir = Dir::read_from(fd).map_err(|e| MaildropError::io("list", e))?;
    let mut out = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry.map_err(|e| MaildropError::io("list", e))?;
        let Ok(name) = entry.file_name().to_str() else {
            continue; // not UTF-8: no Maildir writer makes such names
        };
        if name.starts_with('.') {
            continue;
        }
        let name = name.to_string();
        let stat = match rustix::fs::statat(fd, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(rustix::io::Errno::NOENT) => continue, // deleted meanwhile
            Err(e) => return Err(MaildropError::io(&name, e)),
        };
        if FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile {
            out.push((name, stat.st_size as u64));
        }
        if out.len() > MAX_MESSAGES {
            break;
        }
    }
    Ok(out)
}

/// `path` as a relative path beneath `root`: an absolute path must start with `root`.
fn beneath(root: &Path, path: &str) -> Result<PathBuf, MaildropError> {
    let p = Path::new(path);
    let relative = if p.is_absolute() {
        p.strip_prefix(root)
            .map_err(|_| MaildropError::OutsideRoot(path.to_string()))?
            .to_path_buf()
    } else {
        p.to_path_buf()
    };
    if relative
        .components()
        .any(|c| matches!(c, Component::ParentDir))
    {
        return Err(MaildropError::OutsideRoot(path.to_string()));
    }
    Ok(if relative.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        relative
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with_maildir() -> (tempfile::TempDir, GrantedDirectory) {
        let dir = tempfile::tempdir().unwrap();
        for folder in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(dir.path().join("u/Maildir").join(folder)).unwrap();
        }
        std::fs::write(dir.path().join("u/Maildir/new/1.M1.h"), b"one\n").unwrap();
        std::fs::write(dir.path().join("u/Maildir/cur/2.M2.h:2,S"), b"two\n").unwrap();
        let root = GrantedDirectory::open("maildrop_root", dir.path()).unwrap();
        (dir, root)
    }

    #[test]
    fn paths_must_stay_beneath_the_root() {
        let root = Path::new("/m");
        assert_eq!(
            beneath(root, "/m/a/Maildir").unwrap(),
            Path::new("a/Maildir")
        );
        assert_eq!(beneath(root, "a").unwrap(), Path::new("a"));
        assert_eq!(beneath(root, "/m").unwrap(), Path::new("."));
        for escape in ["/etc", "/mm/a", "a/../..", "../m"] {
            assert!(
                matches!(beneath(root, escape), Err(MaildropError::OutsideRoot(_))),
                "{escape}"
            );
        }
    }

    #[test]
    fn a_maildir_is_listed_read_locked_and_deleted_by_unique_name() {
        let (dir, root) = root_with_maildir();
        let maildir = Maildir::open(&root, "u/Maildir").unwrap();
        let names: Vec<String> = maildir
            .messages()
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(names, ["new/1.M1.h", "cur/2.M2.h:2,S"]);
        assert_eq!(maildir.read("new/1.M1.h", 1, 10).unwrap(), b"ne\n");
        assert!(matches!(
            Maildir::open(&root, "u/Maildir"),
            Err(MaildropError::InUse)
        ));
        for bad in ["new/../x", "tmp/x", "new/.hidden", "x", "new/", "cur/a/b"] {
            assert!(
                matches!(maildir.read(bad, 0, 1), Err(MaildropError::InvalidName(_))),
                "{bad}"
            );
        }
        // Another client moves message 1 to cur/ with flags: still deleted.
        std::fs::rename(
            dir.path().join("u/Maildir/new/1.M1.h"),
            dir.path().join("u/Maildir/cur/1.M1.h:2,S"),
        )
        .unwrap();
        assert_eq!(
            maildir
                .delete(&["new/1.M1.h".into(), "cur/2.M2.h:2,S".into()])
                .unwrap(),
            2
        );
        assert!(maildir.messages().unwrap().is_empty());
        drop(maildir);
        assert!(
            Maildir::open(&root, "u/Maildir").is_ok(),
            "the lock goes with the maildir"
        );
    }

    #[test]
    fn a_symlink_out_of_the_root_is_refused() {
        let (dir, root) = root_with_maildir();
        std::os::unix::fs::symlink("/", dir.path().join("out")).unwrap();
        assert!(matches!(
            Maildir::open(&root, "out"),
            Err(MaildropError::OutsideRoot(_))
        ));
        assert!(matches!(
            Maildir::open(&root, "missing"),
            Err(MaildropError::NotFound(_))
        ));
    }
}
