//! The one blocking policy for file work: nothing that may wait for the disk runs on an
//! async worker, where it would stall every session of the worker. Work that can be done
//! from the kernel's caches is tried there first and never waits (`RESOLVE_CACHED`
//! lookups, `RWF_NOWAIT` reads); the rest runs on the module's blocking threads
//! (`max_threads - min_threads` of them). The exceptions are `sendfile(2)`, which has no
//! non-waiting form: like nginx without `aio threads`, it may wait for the disk on the
//! worker while the page cache fills; and the `pread` of a range `send-file` sends over
//! TLS (`connection/send_file.rs`), which waits the same way.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use rustix::fs::Stat;
use rustix::io::{Errno, ReadWriteFlags};

use super::beneath::{self, LookupError, Resolve};

/// The blocking thread running file work panicked or was cancelled.
#[derive(Debug)]
pub struct TaskFailed(pub String);

impl From<TaskFailed> for LookupError {
    fn from(e: TaskFailed) -> Self {
        LookupError::Os(e.0)
    }
}

/// Runs `work` on the blocking threads of the runtime it is awaited on.
pub async fn off_worker<T, E>(work: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, E>
where
    T: Send + 'static,
    E: From<TaskFailed> + Send + 'static,
{
    // What the work logs (a Maildir entry skipped, say) is charged as the caller's is.
    let share = crate::logging::owner::current();
    tokio::task::spawn_blocking(move || match share {
        Some(share) => crate::logging::owner::as_owner(&share, work),
        None => work(),
    })
    .await
    .unwrap_or_else(|e| Err(TaskFailed(format!("file task failed: {e}")).into()))
}

/// Opens `path` beneath `root` for reading (a regular file or a directory) and stats it:
/// from the caches on the worker if it can, else on the blocking threads.
pub async fn open_file(
    root: &Arc<OwnedFd>,
    path: &str,
    how: Resolve,
) -> Result<(OwnedFd, Stat), LookupError> {
    let cached = Resolve {
        cached_only: true,
        ..how
    };
    match beneath::open_file(root.as_fd(), path, cached) {
        Err(LookupError::WouldBlock) => {}
        done => return done,
    }
    let (root, path) = (root.clone(), path.to_string());
    off_worker(move || beneath::open_file(root.as_fd(), &path, how)).await
}

/// Reads up to `length` bytes of `fd` from `offset`: from the page cache on the worker if
/// they are all there, else on the blocking threads.
pub async fn read_at(
    fd: &Arc<OwnedFd>,
    offset: u64,
    length: usize,
) -> Result<Vec<u8>, LookupError> {
    let mut buf = vec![0u8; length];
    // 0 is the end of the file: RWF_NOWAIT fails with EAGAIN rather than read nothing.
    if let Some(n) = read_cached(fd.as_fd(), &mut buf, offset)? {
        buf.truncate(n);
        return Ok(buf);
    }
    let fd = fd.clone();
    off_worker(move || {
        let n = rustix::io::pread(fd.as_fd(), &mut buf, offset)?;
        buf.truncate(n);
        Ok(buf)
    })
    .await
}

/// Reads into `buf` from `offset` what the page cache holds, never waiting for the disk
/// (`RWF_NOWAIT`): how many bytes, or `None` when the read would wait (or the filesystem
/// cannot read without waiting).
pub fn read_cached(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    offset: u64,
) -> Result<Option<usize>, Errno> {
    let mut slices = [std::io::IoSliceMut::new(buf)];
    match rustix::io::preadv2(fd, &mut slices, offset, ReadWriteFlags::NOWAIT) {
        Ok(n) => Ok(Some(n)),
        Err(Errno::AGAIN) | Err(Errno::OPNOTSUPP) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{Mode, OFlags};

    #[tokio::test]
    async fn files_open_and_read_whether_cached_or_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), b"hello world").unwrap();
        let root = rustix::fs::open(
            dir.path(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        let root = Arc::new(root);
        let (fd, stat) = open_file(&root, "a.txt", Resolve::FOLLOW).await.unwrap();
        assert_eq!(stat.st_size, 11);
        let fd = Arc::new(fd);
        assert_eq!(read_at(&fd, 6, 100).await.unwrap(), b"world");
        assert!(read_at(&fd, 11, 10).await.unwrap().is_empty(), "the end");
        assert_eq!(
            open_file(&root, "../x", Resolve::FOLLOW).await.map(|_| ()),
            Err(LookupError::OutsideRoot)
        );
    }
}
