//! Artifact files in the cache's per-uid subdirectory, always reached through its
//! descriptor (`openat`), never by path. The subdirectory belongs to the service user,
//! so what is found there is untrusted: read only from a regular file (no symlink, no
//! FIFO to block on), up to a bounded size, and into memory, where the seal is checked on
//! the very bytes that are then loaded.

use std::io::{Read, Write};
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, ensure};
use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Uid};
use rustix::io::Errno;

/// Largest artifact file read back (seal included). Bounds the memory a file planted in
/// the cache makes the host allocate before its seal is refused; a componentize-py module
/// compiles to about 35 MB, so this leaves room for far larger modules.
pub const MAX_ARTIFACT_BYTES: u64 = 1 << 30;

/// The bytes of artifact `name`, `None` when there is none.
pub fn read(dir: BorrowedFd<'_>, name: &str) -> Result<Option<Vec<u8>>> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e).context("failed to open it"),
    };
    let stat = rustix::fs::fstat(&fd).context("failed to stat it")?;
    ensure!(
        FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile,
        "it is not a regular file"
    );
    let size = stat.st_size as u64;
    ensure!(
        size <= MAX_ARTIFACT_BYTES,
        "it holds {size} bytes, more than the {MAX_ARTIFACT_BYTES} an artifact may"
    );
    let mut bytes = Vec::with_capacity(size as usize);
    std::fs::File::from(fd)
        .take(MAX_ARTIFACT_BYTES + 1)
        .read_to_end(&mut bytes)
        .context("failed to read it")?;
    ensure!(
        bytes.len() as u64 <= MAX_ARTIFACT_BYTES,
        "it grew past {MAX_ARTIFACT_BYTES} bytes while read"
    );
    Ok(Some(bytes))
}

/// Writes `parts` as artifact `name`: into a new temporary file beside it (`O_EXCL`, no
/// symlink followed), given to `owner` when root writes for the service user, then renamed
/// over `name`. A reader never sees half a file, and a failed write (a full disk) removes
/// what it left.
pub fn write(dir: BorrowedFd<'_>, name: &str, parts: &[&[u8]], owner: Option<u32>) -> Result<()> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let tmp = format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    );
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, &tmp, flags, Mode::RUSR | Mode::WUSR)
        .with_context(|| format!("failed to create {tmp}"))?;
    let written = (|| -> Result<()> {
        if let Some(uid) = owner {
            rustix::fs::fchown(&fd, Some(Uid::from_raw(uid)), None::<Gid>)
                .with_context(|| format!("failed to give {tmp} to uid {uid}"))?;
        }
        let mut file = std::fs::File::from(fd);
        for part in parts {
            file.write_all(part)
                .with_context(|| format!("failed to write {tmp}"))?;
        }
        rustix::fs::renameat(dir, &tmp, dir, name)
            .with_context(|| format!("failed to rename {tmp} to {name}"))?;
        Ok(())
    })();
    if written.is_err() {
        let _ = rustix::fs::unlinkat(dir, &tmp, AtFlags::empty());
    }
    written
}

/// Removes artifact `name`; one that is already gone is no error.
pub fn remove(dir: BorrowedFd<'_>, name: &str) -> Result<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e).context("failed to remove it"),
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsFd, OwnedFd};

    use super::*;

    fn open(dir: &std::path::Path) -> OwnedFd {
        rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap()
    }

    #[test]
    fn written_parts_read_back_whole_and_leave_no_temporary_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = open(tmp.path());
        write(dir.as_fd(), "a.cwasm", &[b"seal", b"code"], None).unwrap();
        assert_eq!(read(dir.as_fd(), "a.cwasm").unwrap().unwrap(), b"sealcode");
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.cwasm"]);
    }

    #[test]
    fn a_missing_artifact_is_none_and_removing_it_is_no_error() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = open(tmp.path());
        assert!(read(dir.as_fd(), "none.cwasm").unwrap().is_none());
        remove(dir.as_fd(), "none.cwasm").unwrap();
    }

    #[test]
    fn a_symlink_or_a_fifo_in_place_of_an_artifact_is_an_error_not_a_wait() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = open(tmp.path());
        std::fs::write(tmp.path().join("target"), b"elsewhere").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("target"), tmp.path().join("l.cwasm")).unwrap();
        let err = format!("{:#}", read(dir.as_fd(), "l.cwasm").unwrap_err());
        assert!(err.starts_with("failed to open it"), "{err}");
        nix::unistd::mkfifo(&tmp.path().join("f.cwasm"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = read(dir.as_fd(), "f.cwasm").unwrap_err().to_string();
        assert_eq!(err, "it is not a regular file");
    }

    #[test]
    fn writing_over_a_planted_file_replaces_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = open(tmp.path());
        std::fs::write(tmp.path().join("a.cwasm"), b"planted").unwrap();
        write(dir.as_fd(), "a.cwasm", &[b"ours"], None).unwrap();
        assert_eq!(std::fs::read(tmp.path().join("a.cwasm")).unwrap(), b"ours");
    }
}
