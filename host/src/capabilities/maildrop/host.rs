//! `serverkit:module/maildrop`: Maildirs beneath the directories the host opened for this
//! module's `directory` options, on a view of the instance. Every call may wait for the
//! disk, so every call runs on the module's blocking threads (`files::blocking`); each open
//! Maildir holds one descriptor of the module's budget.

use wasmtime::component::{HasData, Resource, ResourceTable};

use super::maildir::{Maildir, MaildropError};
use crate::capabilities::files::blocking::off_worker;
use crate::capabilities::files::{GrantKind, GrantedFiles, Opened};
use crate::contract::bindings::maildrop::{Error, Host, HostMaildir, Message};
use crate::meter::InstanceMeter;

/// What the maildrop interface reaches of an instance.
pub struct MaildropView<'a> {
    /// The instance's resources.
    pub table: &'a mut ResourceTable,
    /// The directories its module's section grants, opened.
    pub granted: &'a GrantedFiles,
    /// Where descriptors are charged.
    pub meter: &'a InstanceMeter,
    /// The module's name, for messages.
    pub module: &'a str,
}

/// The maildrop interface, for `add_to_linker`.
pub struct Maildrops;

impl HasData for Maildrops {
    type Data<'a> = MaildropView<'a>;
}

impl Host for MaildropView<'_> {
    async fn open(
        &mut self,
        root_option: String,
        path: String,
    ) -> wasmtime::Result<Result<Resource<Maildir>, Error>> {
        let Some(root) = self.granted.get(&root_option, GrantKind::Directory) else {
            return Ok(Err(Error::NotGranted(format!(
                "`{root_option}` is not a directory option of section `{}` opened by the host",
                self.module
            ))));
        };
        let Some(descriptor) = self.meter.descriptor() else {
            return Ok(Err(Error::Io(
                "the module's descriptor budget (max_descriptors) is spent".into(),
            )));
        };
        let root = Opened {
            grant: root.grant.clone(),
            fd: root.fd.clone(),
        };
        let opened = off_worker(move || Maildir::open(&root, &path, descriptor)).await;
        Ok(match opened {
            Ok(maildir) => Ok(self.table.push(maildir)?),
            Err(e) => Err(to_wit(e)),
        })
    }
}

impl HostMaildir for MaildropView<'_> {
    async fn messages(
        &mut self,
        this: Resource<Maildir>,
    ) -> wasmtime::Result<Result<Vec<Message>, Error>> {
        let maildir = self.table.get(&this)?.clone();
        let listed = off_worker(move || maildir.messages()).await;
        Ok(listed
            .map(|files| {
                files
                    .into_iter()
                    .map(|f| Message {
                        name: f.name,
                        size: f.size,
                    })
                    .collect()
            })
            .map_err(to_wit))
    }

    async fn read(
        &mut self,
        this: Resource<Maildir>,
        name: String,
        offset: u64,
        length: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, Error>> {
        let maildir = self.table.get(&this)?.clone();
        Ok(off_worker(move || maildir.read(&name, offset, length))
            .await
            .map_err(to_wit))
    }

    async fn delete(
        &mut self,
        this: Resource<Maildir>,
        names: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let maildir = self.table.get(&this)?.clone();
        Ok(off_worker(move || maildir.delete(&names))
            .await
            .map_err(to_wit))
    }

    async fn drop(&mut self, this: Resource<Maildir>) -> wasmtime::Result<()> {
        // Dropping the last reference closes the descriptor and releases the lock.
        self.table.delete(this)?;
        Ok(())
    }
}

fn to_wit(e: MaildropError) -> Error {
    match e {
        MaildropError::NotGranted(m) => Error::NotGranted(m),
        MaildropError::OutsideRoot(m) => Error::OutsideRoot(m),
        MaildropError::NotFound(m) => Error::NotFound(m),
        MaildropError::InUse => Error::InUse,
        MaildropError::InvalidName(m) => Error::InvalidName(m),
        MaildropError::Io(m) => Error::Io(m),
        MaildropError::TooLarge(m) => Error::TooLarge(m),
        MaildropError::NotAFile(m) => Error::Io(format!("{m}: not a regular file")),
    }
}
