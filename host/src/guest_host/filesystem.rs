//! `serverkit:module/filesystem`: the granted directories and files as guest resources.
//! Every lookup goes through `directories` (openat2 beneath the granted root); each call
//! is counted in its wait channel (open, opendir, readdir).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use rustix::fs::FileType;
use wasmtime::component::Resource;

use crate::contract::bindings::filesystem::{
    DirEntry, EntryKind, FsError, Host, HostDirectory, HostFile, Metadata,
};
use crate::directories::{self, LookupError};
use crate::guest_host::state::InstanceState;
use crate::sessions::waits::Channel;

/// Most bytes one `file.read` returns: what it defends is guest and host memory against
/// a guest asking for a whole large file at once.
pub const MAX_FILE_READ_BYTES: u64 = 64 * 1024;

/// An open file (or directory) handed to a guest.
pub struct GuestFile {
    /// The descriptor, shared with a transfer in progress.
    pub fd: Arc<OwnedFd>,
    /// Its metadata at open time.
    pub metadata: Metadata,
}

/// A directory handle handed to a guest: the root lookups stay beneath.
pub struct GuestDirectory {
    fd: Arc<OwnedFd>,
}

fn kind(kind: FileType) -> EntryKind {
    match kind {
        FileType::RegularFile => EntryKind::File,
        FileType::Directory => EntryKind::Directory,
        _ => EntryKind::Other,
    }
}

impl From<LookupError> for FsError {
    fn from(e: LookupError) -> Self {
        match e {
            LookupError::NotFound => FsError::NotFound,
            LookupError::AccessDenied => FsError::AccessDenied,
            LookupError::OutsideRoot => FsError::OutsideRoot,
            LookupError::InvalidPath => FsError::InvalidPath,
            LookupError::NotADirectory => FsError::NotADirectory,
            LookupError::TooManyEntries => FsError::TooManyEntries,
            LookupError::Os(message) => FsError::OsError(message),
        }
    }
}

fn metadata(stat: &rustix::fs::Stat) -> Metadata {
    Metadata {
        kind: kind(directories::kind_of(stat)),
        size: stat.st_size as u64,
        modified_seconds: stat.st_mtime,
        modified_nanoseconds: stat.st_mtime_nsec as u32,
        inode: stat.st_ino,
    }
}

impl Host for InstanceState {
    async fn granted_directory(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Option<Resource<GuestDirectory>>> {
        let Some(fd) = self.module.grants.fs.directories.get(&key).cloned() else {
            return Ok(None);
        };
        Ok(Some(self.table.push(GuestDirectory { fd })?))
    }

    async fn granted_file(&mut self, key: String) -> wasmtime::Result<Option<Resource<GuestFile>>> {
        let Some(fd) = self.module.grants.fs.files.get(&key).cloned() else {
            return Ok(None);
        };
        let stat = match rustix::fs::fstat(fd.as_fd()) {
            Ok(stat) => stat,
            Err(_) => return Ok(None),
        };
        let metadata = metadata(&stat);
        Ok(Some(self.table.push(GuestFile { fd, metadata })?))
    }
}

impl HostDirectory for InstanceState {
    async fn open(
        &mut self,
        dir: Resource<GuestDirectory>,
        path: String,
    ) -> wasmtime::Result<Result<Resource<GuestFile>, FsError>> {
        let root = self.table.get(&dir)?.fd.clone();
        let opened = {
            let _waiting = self.waits.enter(Channel::Open);
            directories::open_file(root.as_fd(), &path)
        };
        Ok(match opened {
            Ok((fd, stat)) => Ok(self.table.push(GuestFile {
                fd: Arc::new(fd),
                metadata: metadata(&stat),
            })?),
            Err(e) => Err(e.into()),
        })
    }

    async fn list_entries(
        &mut self,
        dir: Resource<GuestDirectory>,
        path: String,
    ) -> wasmtime::Result<Result<Vec<DirEntry>, FsError>> {
        let root = self.table.get(&dir)?.fd.clone();
        let listed = {
            // Opening and reading happen in one call; count it as readdir, and opendir
            // for the open part would need a split the guest does not see.
            let _opening = self.waits.enter(Channel::Opendir);
            let _reading = self.waits.enter(Channel::Readdir);
            directories::list(root.as_fd(), &path)
        };
        Ok(listed
            .map(|entries| {
                entries
                    .into_iter()
                    .map(|e| {
                        let name = String::from_utf8_lossy(&e.name).into_owned();
                        DirEntry {
                            exact: name.as_bytes() == e.name,
                            name,
                            kind: kind(e.kind),
                        }
                    })
                    .collect()
            })
            .map_err(FsError::from))
    }

    async fn drop(&mut self, dir: Resource<GuestDirectory>) -> wasmtime::Result<()> {
        self.table.delete(dir)?;
        Ok(())
    }
}

impl HostFile for InstanceState {
    async fn metadata(&mut self, file: Resource<GuestFile>) -> wasmtime::Result<Metadata> {
        Ok(self.table.get(&file)?.metadata)
    }

    async fn read(
        &mut self,
        file: Resource<GuestFile>,
        offset: u64,
        length: u64,
    ) -> wasmtime::Result<Result<Vec<u8>, FsError>> {
        let fd = self.table.get(&file)?.fd.clone();
        let mut buf = vec![0u8; length.min(MAX_FILE_READ_BYTES) as usize];
        Ok(match rustix::io::pread(fd.as_fd(), &mut buf, offset) {
            Ok(n) => {
                buf.truncate(n);
                Ok(buf)
            }
            Err(e) => Err(LookupError::from(e).into()),
        })
    }

    async fn drop(&mut self, file: Resource<GuestFile>) -> wasmtime::Result<()> {
        self.table.delete(file)?;
        Ok(())
    }
}
