//! Step 7: each module's `prestart`, serially, while the process is still root. The
//! module's requests (binds) are carried out by the host and kept by it.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use wasmtime::Engine;

use super::{ConfiguredModule, Loaded};
use crate::guest_host::state::{Phase, PrestartResults};
use crate::listeners::BoundListener;
use crate::maildrops::GrantedDirectory;
use crate::modules::instance;
use crate::modules::load::hook_state;

/// Runs every module's prestart (opening the directories its section grants first);
/// returns each module's listeners, in module order.
pub async fn prestart_all(loaded: &Loaded) -> Result<Vec<Vec<BoundListener>>> {
    let mut all = Vec::new();
    for configured in &loaded.modules {
        all.push(prestart_one(&loaded.engine, &loaded.dir, configured).await?);
    }
    Ok(all)
}

/// One module's prestart: its terminal and Maildir directories opened, then its hook run
/// with the binds its section grants. As root at startup; unprivileged for a module added
/// while serving, where the operating system refuses what needs root.
pub async fn prestart_one(
    engine: &Engine,
    dir: &Path,
    configured: &ConfiguredModule,
) -> Result<Vec<BoundListener>> {
    let name = configured.module.name();
    open_terminals(configured)?;
    let directories = configured
        .context
        .grants
        .directories
        .iter()
        .map(|(option, path)| GrantedDirectory::open(option, &dir.join(path)))
        .collect::<Result<Vec<_>>>()
        .with_context(|| format!("module `{name}`: prestart"))?;
    let _ = configured.context.directories.set(Arc::new(directories));
    let prestart = Phase::Prestart(PrestartResults {
        tls_files: configured.tls_files(dir),
        ..PrestartResults::default()
    });
    let state = hook_state(configured.context.clone(), prestart);
    let (mut store, instance) = instance::create(engine, &configured.module.pre, state).await?;
    let outcome = instance
        .call_prestart(&mut store)
        .await
        .map_err(anyhow::Error::from)
        .with_context(|| format!("module `{name}` trapped in prestart"))?;
    let Phase::Prestart(mut results) =
        std::mem::replace(&mut store.data_mut().phase, Phase::Unprivileged)
    else {
        unreachable!("the phase is Prestart until replaced here")
    };
    if let Err(message) = outcome {
        // Keep the operating system's error as the cause: it decides the exit code.
        let context = format!("module `{name}` failed in prestart: {message}");
        return Err(match results.failures.pop() {
            Some(cause) => cause.context(context),
            None => anyhow!(context),
        });
    }
    Ok(results.listeners)
}

/// Opens the module's terminal (write-only, not as a controlling terminal) while still
/// root: `/dev/tty12` belongs to root. A plain file is created if missing, and appended to.
fn open_terminals(configured: &ConfiguredModule) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    for path in configured.terminals() {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&path)
            .with_context(|| {
                format!(
                    "module `{}`: failed to open terminal `{path}`",
                    configured.module.name()
                )
            })?;
        tracing::info!(module = configured.module.name(), terminal = %path, "terminal opened");
        *configured
            .context
            .terminal
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(file);
    }
    Ok(())
}
