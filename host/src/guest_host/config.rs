//! `serverkit:module/config`: read access to the module's own checked c11n section.

use crate::contract::bindings::config::Host;
use crate::contract::bindings::types::ConfigValue;
use crate::contract::vocabulary::value_to_wit;
use crate::guest_host::state::InstanceState;

impl Host for InstanceState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<ConfigValue>> {
        Ok(self
            .module
            .section
            .as_ref()
            .and_then(|s| s.get(&key))
            .map(value_to_wit))
    }

    async fn keys(&mut self) -> wasmtime::Result<Vec<String>> {
        Ok(self
            .module
            .section
            .as_ref()
            .map(|s| s.values.keys().cloned().collect())
            .unwrap_or_default())
    }
}
impl crate::contract::bindings::types::Host for crate::guest_host::state::InstanceState {}
