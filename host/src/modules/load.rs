//! Loading a module: compile (through the cache), apply the contract version rule, link,
//! then call `describe` and `construct`, each in its own fresh instance.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serverkit_c11n::SectionSpec;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use super::source::ModuleSource;
use crate::capabilities::log::{MAX_LOG_MESSAGE_BYTES, truncate};
use crate::contract::bindings::ModulePre;
use crate::contract::bindings::types::Descriptor;
use crate::contract::version;
use crate::engine::ComponentCache;
use crate::holdings::{Holdings, ModuleContext};
use crate::instance::{self, HOOK_CPU_BUDGET, InstanceState, Phase};
use crate::meter::{CpuBudget, ModuleMeter, ProcessDescriptors, Refill};
use crate::options::{session, vocabulary};

/// A compiled, linked and described module.
pub struct LoadedModule {
    /// Where it came from, for messages.
    pub label: String,
    /// Its file in `modules/`, for modules loaded from one (what a hot swap rereads).
    pub path: Option<std::path::PathBuf>,
    /// SHA-256 of its bytes, in hex: a swap skips a file whose content is unchanged.
    pub digest: String,
    /// The compiled component.
    pub component: Component,
    /// The component linked against the host's imports.
    pub pre: ModulePre<InstanceState>,
    /// What `describe` returned.
    pub descriptor: Descriptor,
    /// Its c11n section, host session options included.
    pub spec: SectionSpec,
}

impl LoadedModule {
    /// The module's name, which is also its c11n section name.
    pub fn name(&self) -> &str {
        &self.descriptor.name
    }
}

/// What loading needs from the host.
pub struct Loader<'a> {
    /// The process's engine.
    pub engine: &'a Engine,
    /// The linker with every host interface.
    pub linker: &'a Linker<InstanceState>,
    /// Compiled modules on disk.
    pub cache: &'a ComponentCache,
}

impl Loader<'_> {
    /// Loads one module. Call from an async context with the epoch ticker running, or a
    /// hook that loops forever is never interrupted.
    pub async fn load(&self, source: &ModuleSource) -> Result<LoadedModule> {
        let label = &source.label;
        let component = self.cache.component(self.engine, &source.wasm, label)?;
        let imported = version::imported_contract(self.engine, &component);
        if let Some(v) = &imported
            && let Some(warning) = version::check(label, v)?
        {
            tracing::warn!("{warning}");
        }
        let pre = self.linker.instantiate_pre(&component).map_err(anyhow::Error::from).with_context(|| {
            format!("module {label} needs imports this serverkit does not provide (it speaks {}@{})", version::PACKAGE, version::display(&version::CONTRACT))
        })?;
        let pre = ModulePre::new(pre)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "module {label} does not export the hooks of the {} world",
                    version::PACKAGE
                )
            })?;

        let descriptor = self.describe(&pre, label).await?;
        if !vocabulary::valid_module_name(&descriptor.name) {
            bail!(
                "module {label} calls itself `{}`, which is not a valid module name ([a-z][a-z0-9_]*, not `database` or `metrics`)",
                descriptor.name
            );
        }
        version::check(&descriptor.name, &descriptor.contract)?;
        if let Some(v) = &imported
            && v.major != descriptor.contract.major
        {
            bail!(
                "module {label} claims contract {} but imports {}@{}",
                version::display(&descriptor.contract),
                version::PACKAGE,
                version::display(v)
            );
        }
        let spec = vocabulary::section_spec(&descriptor)?;
        let loaded = LoadedModule {
            label: label.clone(),
            path: source.path.clone(),
            digest: digest(&source.wasm),
            component,
            pre,
            descriptor,
            spec,
        };
        loaded.construct(self.engine).await?;
        Ok(loaded)
    }

    async fn describe(&self, pre: &ModulePre<InstanceState>, label: &str) -> Result<Descriptor> {
        let state = hook_state(unconfigured(label), Phase::Unprivileged)?;
        let call = async {
            let (mut store, module) = instance::create(self.engine, pre, state).await?;
            module
                .call_describe(&mut store)
                .await
                .map_err(anyhow::Error::from)
                .with_context(|| format!("module {label} failed in describe"))
        };
        instance::within_hook_wall(label, "describe", call).await
    }
}

impl LoadedModule {
    async fn construct(&self, engine: &Engine) -> Result<()> {
        let state = hook_state(unconfigured(self.name()), Phase::Unprivileged)?;
        let call = async {
            let (mut store, module) = instance::create(engine, &self.pre, state).await?;
            module
                .call_construct(&mut store)
                .await
                .map_err(anyhow::Error::from)
                .with_context(|| format!("module `{}` trapped in construct", self.name()))
        };
        let label = format!("`{}`", self.name());
        instance::within_hook_wall(&label, "construct", call)
            .await?
            .map_err(|message| {
                let message = truncate(&message, MAX_LOG_MESSAGE_BYTES);
                anyhow::anyhow!("module `{}` failed to construct: {message}", self.name())
            })
    }
}

/// SHA-256 of a module's bytes, in hex.
pub fn digest(wasm: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(wasm)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A module before its configuration is read: nothing granted, the default budgets.
fn unconfigured(name: &str) -> Arc<ModuleContext> {
    let meter = ModuleMeter::new(session::defaults().budgets, ProcessDescriptors::default());
    ModuleContext::new(name, None, Arc::new(Holdings::none(meter)))
}

/// The state of an instance running a lifecycle hook, with [`HOOK_CPU_BUDGET`].
pub fn hook_state(context: Arc<ModuleContext>, phase: Phase) -> Result<InstanceState> {
    let cpu = CpuBudget::new(HOOK_CPU_BUDGET, Refill::PerWait);
    let name = context.name.clone();
    InstanceState::new(context, phase, cpu).with_context(|| {
        format!("module `{name}` has no host memory left for another instance (`host_memory_mb`)")
    })
}
