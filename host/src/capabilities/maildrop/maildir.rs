//! The Maildir protocol over a granted directory (`capabilities::files`): a maildrop is
//! resolved beneath the directory the host opened for a `directory` option, with no
//! symlink on the way or inside (one user's link to another's Maildir is refused), and
//! each open Maildir holds an exclusive `flock` for its session. Only regular files are
//! ever opened as messages.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, Dir, FileType, FlockOperation, Mode, OFlags, ResolveFlags};

use crate::capabilities::files::Opened;
use crate::capabilities::files::blocking::TaskFailed;
use crate::meter::DescriptorPermit;

/// Most messages listed from one Maildir: defends host and guest memory against a
/// maildrop holding millions of files.
pub const MAX_MESSAGES: usize = 100_000;
/// Most bytes one `read` returns: bounds the copy into guest memory per call.
pub const MAX_READ_BYTES: u32 = 1024 * 1024;

/// Resolution of every path beneath a maildrop root: beneath, and no symlink at all.
fn no_symlinks() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_SYMLINKS
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
    /// A message that is not a regular file (a fifo, a device): never read.
    NotAFile(String),
}

impl From<TaskFailed> for MaildropError {
    fn from(e: TaskFailed) -> Self {
        MaildropError::Io(e.0)
    }
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
/// descriptor (a clone lives only for one blocking call), which is charged to the module.
///
/// It holds one descriptor, the Maildir's own: `new/` and `cur/` are opened beneath it for
/// each call. A session is a socket plus this descriptor, so a server under the common
/// hard limit of 20 000 open files can still hold thousands of logged-in sessions.
#[derive(Clone)]
pub struct Maildir {
    /// The Maildir itself: its `flock` is the session's exclusive lock, released when
    /// this descriptor closes (the session ended, trapped or was killed).
    dir: Arc<OwnedFd>,
    _descriptor: Arc<DescriptorPermit>,
}

/// One message file.
pub struct MessageFile {
    /// `new/NAME` or `cur/NAME`.
    pub name: String,
    /// Bytes on disk.
    pub size: u64,
}

impl Maildir {
    /// Opens and locks the Maildir at `path` beneath `root` (blocking), holding
    /// `descriptor` while it is open.
    pub fn open(
        root: &Opened,
        path: &str,
        descriptor: DescriptorPermit,
    ) -> Result<Maildir, MaildropError> {
        let relative = beneath(&root.grant.path, path)?;
        let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
        let dir = rustix::fs::openat2(
            root.fd.as_fd(),
            &relative,
            flags,
            Mode::empty(),
            no_symlinks(),
        )
        .map_err(|e| match e {
            // EXDEV: `..` or an absolute path; ELOOP: a symlink on the way.
            rustix::io::Errno::XDEV | rustix::io::Errno::LOOP => {
                MaildropError::OutsideRoot(path.to_string())
            }
            e => MaildropError::io(path, e),
        })?;
        rustix::fs::flock(&dir, FlockOperation::NonBlockingLockExclusive).map_err(|e| {
            if e == rustix::io::Errno::WOULDBLOCK {
                MaildropError::InUse
            } else {
                MaildropError::io("lock", e)
            }
        })?;
        let maildir = Maildir {
            dir: Arc::new(dir),
            _descriptor: Arc::new(descriptor),
        };
        // Both folders must be there now, as a Maildir has them.
        maildir.folder("new")?;
        maildir.folder("cur")?;
        Ok(maildir)
    }

    /// Opens `new/` or `cur/` beneath the Maildir (not through a symlink).
    fn folder(&self, name: &str) -> Result<OwnedFd, MaildropError> {
        let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        rustix::fs::openat2(self.dir.as_fd(), name, flags, Mode::empty(), no_symlinks())
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
        // O_NONBLOCK: a fifo in place of a message must not hang a thread; anything but a
        // regular file is then refused unread.
        let fd = rustix::fs::openat(
            folder.as_fd(),
            file,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| MaildropError::io(name, e))?;
        let stat = rustix::fs::fstat(&fd).map_err(|e| MaildropError::io(name, e))?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(MaildropError::NotAFile(name.to_string()));
        }
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
    /// (the part before `:`) in either folder (blocking). The folders are read once per
    /// call, at the first name not where the listing had it, so the work is linear in the
    /// names and the folders' entries (a name at a time, it was their product). Every name
    /// is checked before any is unlinked, and a message that cannot be unlinked does not
    /// stop the rest: the first such failure is returned once all were tried.
    pub fn delete(&self, names: &[String]) -> Result<u32, MaildropError> {
        if names.len() > MAX_MESSAGES {
            return Err(MaildropError::TooLarge(format!(
                "at most {MAX_MESSAGES} messages per call"
            )));
        }
        let parsed = names
            .iter()
            .map(|name| parse_name(name))
            .collect::<Result<Vec<_>, _>>()?;
        let (new, cur) = (self.folder("new")?, self.folder("cur")?);
        let mut renamed: Option<HashMap<String, (&'static str, String)>> = None;
        let (mut deleted, mut failed) = (0, None);
        for (name, (folder, file)) in names.iter().zip(parsed) {
            let folder = if folder == "new" { &new } else { &cur };
            let outcome = match rustix::fs::unlinkat(folder.as_fd(), file, AtFlags::empty()) {
                Err(rustix::io::Errno::NOENT) => {
                    let index = match &mut renamed {
                        Some(index) => index,
                        None => renamed.insert(self.by_unique_name()?),
                    };
                    self.delete_renamed(index, file)
                }
                unlinked => unlinked
                    .map(|()| true)
                    .map_err(|e| MaildropError::io(name, e)),
            };
            match outcome {
                Ok(true) => deleted += 1,
                Ok(false) => {}
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        failed.map_or(Ok(deleted), Err)
    }

    /// Unlinks the message whose unique name `file` has, wherever `index` found it now;
    /// whether there was one. Not there: another client deleted it, which is what was
    /// asked.
    fn delete_renamed(
        &self,
        index: &mut HashMap<String, (&'static str, String)>,
        file: &str,
    ) -> Result<bool, MaildropError> {
        let unique = file.split(':').next().unwrap_or(file);
        let Some((folder, current)) = index.remove(unique) else {
            return Ok(false);
        };
        match rustix::fs::unlinkat(
            self.folder(folder)?.as_fd(),
            current.as_str(),
            AtFlags::empty(),
        ) {
            Ok(()) => Ok(true),
            // Gone meanwhile, or a directory: no message.
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::ISDIR) => Ok(false),
            Err(e) => Err(MaildropError::io(&current, e)),
        }
    }

    /// Every visible message of `cur/` and `new/` by its unique name (the part before `:`):
    /// the folder and the entry's name now. The first found wins, `cur/` before `new/`.
    fn by_unique_name(&self) -> Result<HashMap<String, (&'static str, String)>, MaildropError> {
        let mut index = HashMap::new();
        for folder in ["cur", "new"] {
            let fd = self.folder(folder)?;
            let mut dir = Dir::read_from(&fd).map_err(|e| MaildropError::io(folder, e))?;
            while let Some(entry) = dir.read() {
                let entry = entry.map_err(|e| MaildropError::io(folder, e))?;
                let Ok(name) = entry.file_name().to_str() else {
                    continue;
                };
                if name.starts_with('.') || !is_regular(&fd, name, entry.file_type()) {
                    continue;
                }
                if index.len() > 2 * MAX_MESSAGES {
                    return Err(MaildropError::TooLarge(format!(
                        "more than {MAX_MESSAGES} messages"
                    )));
                }
                let unique = name.split(':').next().unwrap_or(name).to_string();
                index.entry(unique).or_insert((folder, name.to_string()));
            }
        }
        Ok(index)
    }

    /// `new/NAME` or `cur/NAME` into the folder, opened, and a plain file name.
    fn split<'a>(&self, name: &'a str) -> Result<(OwnedFd, &'a str), MaildropError> {
        let (folder, file) = parse_name(name)?;
        Ok((self.folder(folder)?, file))
    }
}

/// The folder (`new` or `cur`) and file of a message name, or why the host refuses it.
fn parse_name(name: &str) -> Result<(&'static str, &str), MaildropError> {
    let invalid = || MaildropError::InvalidName(name.to_string());
    let (folder, file) = name.split_once('/').ok_or_else(invalid)?;
    if file.is_empty() || file.starts_with('.') || file.contains('/') || file.contains('\0') {
        return Err(invalid());
    }
    match folder {
        "new" => Ok(("new", file)),
        "cur" => Ok(("cur", file)),
        _ => Err(invalid()),
    }
}

/// Whether `name` in `folder` is a regular file, as its directory entry says (or, where
/// the file system does not say, as `stat` without following a symlink does): a link or
/// a fifo is no message to delete.
fn is_regular(folder: &OwnedFd, name: &str, listed: FileType) -> bool {
    match listed {
        FileType::Unknown => rustix::fs::statat(folder, name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile),
        listed => listed == FileType::RegularFile,
    }
}

/// Regular, visible files of one folder with their sizes.
fn list(fd: &OwnedFd) -> Result<Vec<(String, u64)>, MaildropError> {
    let mut dir = Dir::read_from(fd).map_err(|e| MaildropError::io("list", e))?;
    let mut out = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry.map_err(|e| MaildropError::io("list", e))?;
        let Ok(name) = entry.file_name().to_str() else {
            // No Maildir writer makes such names, and the contract's names are strings.
            tracing::warn!(file = ?entry.file_name(), "a Maildir entry's name is not UTF-8: skipped");
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let name = name.to_string();
        let stat = match rustix::fs::statat(fd, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(rustix::io::Errno::NOENT) => continue, // deleted meanwhile
            Err(e) => {
                // One bad entry (EIO) must not hide the whole maildrop.
                tracing::warn!(file = %name, "a Maildir entry cannot be read, skipped: {e}");
                continue;
            }
        };
        if FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile {
            out.push((name, stat.st_size as u64));
        } else {
            tracing::warn!(file = %name, "not a regular file in a Maildir folder: skipped");
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
    use crate::capabilities::files::{FileGrant, GrantKind};

    fn permit() -> DescriptorPermit {
        crate::meter::Descriptors::new(16, crate::meter::ProcessDescriptors::new(1 << 16))
            .try_take()
            .unwrap()
    }

    fn root_with_maildir() -> (tempfile::TempDir, Opened) {
        let dir = tempfile::tempdir().unwrap();
        for folder in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(dir.path().join("u/Maildir").join(folder)).unwrap();
        }
        std::fs::write(dir.path().join("u/Maildir/new/1.M1.h"), b"one\n").unwrap();
        std::fs::write(dir.path().join("u/Maildir/cur/2.M2.h:2,S"), b"two\n").unwrap();
        let grant = FileGrant {
            option: "maildrop_root".into(),
            path: dir.path().to_path_buf(),
            kind: GrantKind::Directory,
        };
        let fd = rustix::fs::open(
            dir.path(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        let root = Opened {
            grant,
            fd: Arc::new(fd),
        };
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
        let maildir = Maildir::open(&root, "u/Maildir", permit()).unwrap();
        let names: Vec<String> = maildir
            .messages()
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(names, ["new/1.M1.h", "cur/2.M2.h:2,S"]);
        assert_eq!(maildir.read("new/1.M1.h", 1, 10).unwrap(), b"ne\n");
        assert!(matches!(
            Maildir::open(&root, "u/Maildir", permit()),
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
            Maildir::open(&root, "u/Maildir", permit()).is_ok(),
            "the lock goes with the maildir"
        );
    }

    #[test]
    fn a_symlink_to_another_maildir_beneath_the_root_is_refused() {
        let (dir, root) = root_with_maildir();
        std::fs::create_dir(dir.path().join("v")).unwrap();
        std::os::unix::fs::symlink("../u/Maildir", dir.path().join("v/Maildir")).unwrap();
        assert!(matches!(
            Maildir::open(&root, "v/Maildir", permit()),
            Err(MaildropError::OutsideRoot(_))
        ));
        std::fs::create_dir(dir.path().join("w")).unwrap();
        std::os::unix::fs::symlink("../u", dir.path().join("w/link")).unwrap();
        assert!(matches!(
            Maildir::open(&root, "w/link/Maildir", permit()),
            Err(MaildropError::OutsideRoot(_))
        ));
    }

    #[test]
    fn a_fifo_in_place_of_a_message_is_refused_at_once() {
        let (dir, root) = root_with_maildir();
        let fifo = dir.path().join("u/Maildir/new/3.M3.h");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let maildir = Maildir::open(&root, "u/Maildir", permit()).unwrap();
        assert!(
            maildir
                .messages()
                .unwrap()
                .iter()
                .all(|m| m.name != "new/3.M3.h"),
            "not listed"
        );
        assert!(matches!(
            maildir.read("new/3.M3.h", 0, 10),
            Err(MaildropError::NotAFile(_))
        ));
    }

    #[test]
    fn a_symlink_out_of_the_root_is_refused() {
        let (dir, root) = root_with_maildir();
        std::os::unix::fs::symlink("/", dir.path().join("out")).unwrap();
        assert!(matches!(
            Maildir::open(&root, "out", permit()),
            Err(MaildropError::OutsideRoot(_))
        ));
        assert!(matches!(
            Maildir::open(&root, "missing", permit()),
            Err(MaildropError::NotFound(_))
        ));
    }

    /// A client asking to delete many names that are no longer where they were listed
    /// costs one reading of the folders, not one per name: 30 000 names over 3000
    /// renamed messages took 21 s (debug build) when each missing name reread both
    /// folders, and take 0.4 s.
    #[test]
    fn deleting_many_moved_or_missing_names_reads_the_folders_once() {
        let (dir, root) = root_with_maildir();
        let maildir_path = dir.path().join("u/Maildir");
        let mut names = Vec::new();
        for n in 0..3000 {
            // Listed in new/, since moved to cur/ with flags by another client.
            std::fs::write(maildir_path.join(format!("cur/{n}.M{n}.x:2,S")), b"m\n").unwrap();
            names.push(format!("new/{n}.M{n}.x"));
        }
        names.extend((0..27_000).map(|n| format!("new/gone{n}.M.x")));
        let maildir = Maildir::open(&root, "u/Maildir", permit()).unwrap();
        let started = std::time::Instant::now();
        assert_eq!(maildir.delete(&names).unwrap(), 3000);
        let took = started.elapsed();
        eprintln!("deleting took {took:?}");
        assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
        let left: Vec<String> = maildir
            .messages()
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(
            left,
            ["new/1.M1.h", "cur/2.M2.h:2,S"],
            "only what was not asked for"
        );
    }

    /// A message that cannot be unlinked (here a directory where a message was listed)
    /// kept every message after it at every QUIT; a bad name deleted the ones before it.
    #[test]
    fn one_undeletable_message_keeps_no_other_and_a_bad_name_deletes_none() {
        let (dir, root) = root_with_maildir();
        std::fs::create_dir(dir.path().join("u/Maildir/new/0.M0.h")).unwrap();
        let maildir = Maildir::open(&root, "u/Maildir", permit()).unwrap();
        let bad = ["new/1.M1.h", "tmp/3.M3.h"].map(String::from);
        assert!(matches!(
            maildir.delete(&bad),
            Err(MaildropError::InvalidName(_))
        ));
        assert_eq!(maildir.messages().unwrap().len(), 2, "nothing deleted");
        let names = ["new/0.M0.h", "new/1.M1.h", "cur/2.M2.h:2,S"].map(String::from);
        let error = maildir.delete(&names).unwrap_err();
        assert!(
            matches!(&error, MaildropError::Io(m) if m.contains("0.M0.h")),
            "{error:?}"
        );
        assert!(
            maildir.messages().unwrap().is_empty(),
            "the two after it were deleted"
        );
    }
}
