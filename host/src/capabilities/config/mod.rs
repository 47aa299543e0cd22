//! `serverkit:module/config`: read access to the module's own checked c11n section, on a
//! view holding only that section; and the contract's `types` interface, which has no
//! functions.

use serverkit_c11n::Section;
use wasmtime::component::HasData;

use crate::contract::bindings::config::Host;
use crate::contract::bindings::types::ConfigValue;
use crate::options::vocabulary::value_to_wit;

/// What the config interface reaches: the module's section (its defaults when the
/// operator wrote none; `None` while describing, before c11n is read).
pub struct ConfigView<'a> {
    /// The section.
    pub section: Option<&'a Section>,
}

/// The config interface, for `add_to_linker`.
pub struct Config;

impl HasData for Config {
    type Data<'a> = ConfigView<'a>;
}

impl Host for ConfigView<'_> {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<ConfigValue>> {
        Ok(self.section.and_then(|s| s.get(&key)).map(value_to_wit))
    }

    async fn keys(&mut self) -> wasmtime::Result<Vec<String>> {
        Ok(self
            .section
            .map(|s| s.values.keys().cloned().collect())
            .unwrap_or_default())
    }

    async fn entries(&mut self) -> wasmtime::Result<Vec<(String, ConfigValue)>> {
        Ok(self
            .section
            .map(|s| {
                s.values
                    .iter()
                    .map(|(key, value)| (key.clone(), value_to_wit(value)))
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// The `types` interface: types only, no state.
pub struct Types;

/// Its (empty) view.
pub struct TypesView;

impl HasData for Types {
    type Data<'a> = TypesView;
}

impl crate::contract::bindings::types::Host for TypesView {}
