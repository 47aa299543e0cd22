//! `serverkit:module/filesystem`: the granted directories and files as guest resources,
//! on a view of the instance holding only what the interface needs. Every lookup resolves
//! beneath a granted directory; every call that may wait for the disk follows the
//! blocking policy; every descriptor a guest holds is charged to its module; each call is
//! counted in its wait channel (open, opendir, readdir).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use rustix::fs::FileType;
use wasmtime::component::{HasData, Resource, ResourceTable};

use super::beneath::{self, LookupError, Resolve};
use super::{GrantKind, GrantedFiles, blocking};
use crate::contract::bindings::filesystem::{
    DirEntry, EntryKind, FsError, Host, HostDirectory, HostFile, Metadata,
};
use crate::meter::{Channel, DescriptorPermit, InstanceMeter};

/// Most bytes one `file.read` returns: what it defends is guest and host memory against
/// a guest asking for a whole large file at once.
pub const MAX_FILE_READ_BYTES: u64 = 64 * 1024;

/// What the filesystem interface reaches of an instance.
pub struct FilesView<'a> {
    /// The instance's resources.
    pub table: &'a mut ResourceTable,
    /// The directories and files its module's section grants, opened.
    pub granted: &'a GrantedFiles,
    /// Where descriptors and waits are charged.
    pub meter: &'a InstanceMeter,
}

/// The filesystem interface, for `add_to_linker`.
pub struct Files;

impl HasData for Files {
    type Data<'a> = FilesView<'a>;
}

/// An open file (or directory) handed to a guest.
pub struct GuestFile {
    /// The descriptor, shared with a transfer in progress.
    pub fd: Arc<OwnedFd>,
    /// Its metadata at open time.
    pub metadata: Metadata,
    /// Its place in the module's descriptor budget (none for a granted file, which the
    /// host holds anyway).
    _descriptor: Option<DescriptorPermit>,
}

/// A directory handle handed to a guest: lookups through it stay beneath.
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
            // A fifo or device is never served: to the guest it is a file it may not read.
            LookupError::AccessDenied | LookupError::NotAFile => FsError::AccessDenied,
            LookupError::OutsideRoot => FsError::OutsideRoot,
            LookupError::InvalidPath => FsError::InvalidPath,
            LookupError::NotADirectory => FsError::NotADirectory,
            LookupError::TooManyEntries => FsError::TooManyEntries,
            LookupError::NoDescriptors => {
                FsError::OsError("the module's descriptor budget (max_descriptors) is spent".into())
            }
            LookupError::WouldBlock => FsError::OsError("the lookup would block".into()),
            LookupError::Os(message) => FsError::OsError(message),
        }
    }
}

fn metadata(stat: &rustix::fs::Stat) -> Metadata {
    Metadata {
        kind: kind(beneath::kind_of(stat)),
        size: stat.st_size as u64,
        modified_seconds: stat.st_mtime,
        modified_nanoseconds: stat.st_mtime_nsec as u32,
        inode: stat.st_ino,
    }
}

impl FilesView<'_> {
    /// One descriptor from the module's budget, or the error the guest sees.
    fn descriptor(&self) -> Result<DescriptorPermit, LookupError> {
        self.meter.descriptor().ok_or(LookupError::NoDescriptors)
    }

    /// Opens `path` beneath `dir` for the guest: a file handle holding one descriptor of
    /// the module's budget, and its metadata.
    async fn open_guest_file(
        &mut self,
        dir: Resource<GuestDirectory>,
        path: String,
    ) -> wasmtime::Result<Result<(Resource<GuestFile>, Metadata), FsError>> {
        let root = self.table.get(&dir)?.fd.clone();
        let opened = match self.descriptor() {
            Ok(permit) => {
                let _waiting = self.meter.waits.enter(Channel::Open);
                blocking::open_file(&root, &path, Resolve::FOLLOW)
                    .await
                    .map(|(fd, stat)| (fd, stat, permit))
            }
            Err(e) => Err(e),
        };
        Ok(match opened {
            Ok((fd, stat, permit)) => {
                let metadata = metadata(&stat);
                let file = self.table.push(GuestFile {
                    fd: Arc::new(fd),
                    metadata,
                    _descriptor: Some(permit),
                })?;
                Ok((file, metadata))
            }
            Err(e) => Err(e.into()),
        })
    }
}

impl Host for FilesView<'_> {
    async fn granted_directory(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Option<Resource<GuestDirectory>>> {
        let Some(opened) = self.granted.get(&key, GrantKind::Directory) else {
            return Ok(None);
        };
        let fd = opened.fd.clone();
        Ok(Some(self.table.push(GuestDirectory { fd })?))
    }

    async fn granted_file(&mut self, key: String) -> wasmtime::Result<Option<Resource<GuestFile>>> {
        let Some(opened) = self.granted.get(&key, GrantKind::File) else {
            return Ok(None);
        };
        let Ok(stat) = rustix::fs::fstat(opened.fd.as_fd()) else {
            return Ok(None);
        };
        let file = GuestFile {
            fd: opened.fd.clone(),
            metadata: metadata(&stat),
            _descriptor: None,
        };
        Ok(Some(self.table.push(file)?))
    }
}

impl HostDirectory for FilesView<'_> {
    async fn open(
        &mut self,
        dir: Resource<GuestDirectory>,
        path: String,
    ) -> wasmtime::Result<Result<Resource<GuestFile>, FsError>> {
        Ok(self.open_guest_file(dir, path).await?.map(|(file, _)| file))
    }

    async fn open_with_metadata(
        &mut self,
        dir: Resource<GuestDirectory>,
        path: String,
    ) -> wasmtime::Result<Result<(Resource<GuestFile>, Metadata), FsError>> {
        self.open_guest_file(dir, path).await
    }

    async fn list_entries(
        &mut self,
        dir: Resource<GuestDirectory>,
        path: String,
    ) -> wasmtime::Result<Result<Vec<DirEntry>, FsError>> {
        let root = self.table.get(&dir)?.fd.clone();
        let permit = match self.descriptor() {
            Ok(permit) => permit,
            Err(e) => return Ok(Err(e.into())),
        };
        let listed = {
            // Opening and reading happen in one call; count it as readdir, and opendir
            // for the open part would need a split the guest does not see.
            let _opening = self.meter.waits.enter(Channel::Opendir);
            let _reading = self.meter.waits.enter(Channel::Readdir);
            blocking::off_worker(move || beneath::list(root.as_fd(), &path)).await
        };
        drop(permit);
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

impl HostFile for FilesView<'_> {
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
        let length = length.min(MAX_FILE_READ_BYTES) as usize;
        Ok(blocking::read_at(&fd, offset, length)
            .await
            .map_err(FsError::from))
    }

    async fn drop(&mut self, file: Resource<GuestFile>) -> wasmtime::Result<()> {
        self.table.delete(file)?;
        Ok(())
    }
}
