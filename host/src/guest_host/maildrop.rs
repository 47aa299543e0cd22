//! `serverkit:module/maildrop`: Maildirs beneath the directories the host opened for this
//! module's `directory` options. File work runs on the module's blocking threads.

use wasmtime::component::Resource;

use crate::contract::bindings::maildrop::{Error, Host, HostMaildir, Message};
use crate::guest_host::state::InstanceState;
use crate::maildrops::{Maildir, MaildropError};

impl Host for InstanceState {
    async fn open(
        &mut self,
        root_option: String,
        path: String,
    ) -> wasmtime::Result<Result<Resource<Maildir>, Error>> {
        let Some(root) = self
            .module
            .directories()
            .iter()
            .find(|d| d.option == root_option)
            .cloned()
        else {
            return Ok(Err(Error::NotGranted(format!(
                "`{root_option}` is not a directory option of section `{}` opened by the host",
                self.module.name
            ))));
        };
        let opened = blocking(move || Maildir::open(&root, &path)).await;
        Ok(match opened {
            Ok(maildir) => Ok(self.table.push(maildir)?),
            Err(e) => Err(to_wit(e)),
        })
    }
}

impl HostMaildir for InstanceState {
    async fn messages(
        &mut self,
        this: Resource<Maildir>,
    ) -> wasmtime::Result<Result<Vec<Message>, Error>> {
        let maildir = self.table.get(&this)?.clone();
        let listed = blocking(move || maildir.messages()).await;
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
        Ok(blocking(move || maildir.read(&name, offset, length))
            .await
            .map_err(to_wit))
    }

    async fn delete(
        &mut self,
        this: Resource<Maildir>,
        names: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let maildir = self.table.get(&this)?.clone();
        Ok(blocking(move || maildir.delete(&names))
            .await
            .map_err(to_wit))
    }

    async fn drop(&mut self, this: Resource<Maildir>) -> wasmtime::Result<()> {
        // Dropping the last reference closes the descriptor and releases the lock.
        self.table.delete(this)?;
        Ok(())
    }
}

/// Runs blocking file work off the async worker threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, MaildropError> + Send + 'static,
) -> Result<T, MaildropError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(MaildropError::Io(format!("file task failed: {e}"))))
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
    }
}
