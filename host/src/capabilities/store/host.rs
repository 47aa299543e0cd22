//! `serverkit:module/store`, on a view of the instance: the module's keyed store. The
//! store charges its own budget (`store_mb`) on the module's meter, so the view needs
//! nothing else of the instance.

use wasmtime::component::HasData;

use super::{ModuleStore, now_ms};
use crate::contract::bindings::store::{Host, StoreError};

/// What the store interface reaches of an instance.
pub struct StoreView<'a> {
    /// The module's store.
    pub store: &'a ModuleStore,
}

/// The store interface, for `add_to_linker`.
pub struct Stores;

impl HasData for Stores {
    type Data<'a> = StoreView<'a>;
}

impl Host for StoreView<'_> {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(self.store.get(&key, now_ms()))
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<(), StoreError>> {
        Ok(self.store.set(&key, &value, ttl_ms, now_ms()).await)
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<bool> {
        Ok(self.store.delete(&key, now_ms()).await)
    }

    async fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<bool, StoreError>> {
        Ok(self
            .store
            .compare_and_swap(&key, expected.as_deref(), new.as_deref(), ttl_ms, now_ms())
            .await)
    }

    async fn list_keys(
        &mut self,
        prefix: String,
        after: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Vec<String>> {
        Ok(self.store.list(&prefix, after.as_deref(), limit, now_ms()))
    }
}
