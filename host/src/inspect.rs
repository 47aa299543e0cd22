//! `serverkit inspect`: what a module says about itself.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Result, bail};

use crate::contract::version::display;
use crate::engine::{self, ComponentCache};
use crate::guest_host::linker;
use crate::modules::builtin;
use crate::modules::load::{LoadedModule, Loader};
use crate::modules::source::ModuleSource;
use crate::startup::on_startup_thread;

/// Loads `module` (a file or a built-in name) and renders its description.
pub fn inspect(module: &str) -> Result<String> {
    let source = if Path::new(module).exists() {
        ModuleSource::file(Path::new(module))?
    } else if let Some(source) = ModuleSource::builtin(module) {
        source
    } else {
        let names: Vec<&str> = builtin::names().collect();
        bail!(
            "`{module}` is neither a module file nor a built-in module (built-ins: {})",
            names.join(", ")
        );
    };
    let engine = engine::new()?;
    let linker = linker::build(&engine)?;
    let cache = ComponentCache::new(ComponentCache::default_dir());
    let loader = Loader {
        engine: &engine,
        linker: &linker,
        cache: &cache,
    };
    let loaded = on_startup_thread(&engine, loader.load(&source))?;
    Ok(render(&loaded))
}

fn render(module: &LoadedModule) -> String {
    let d = &module.descriptor;
    let mut out = String::new();
    let _ = writeln!(out, "module:      {}", d.name);
    let _ = writeln!(out, "from:        {}", module.label);
    let _ = writeln!(out, "description: {}", d.description);
    let _ = writeln!(out, "version:     {}", display(&d.version));
    let _ = writeln!(
        out,
        "contract:    serverkit:module@{}",
        display(&d.contract)
    );
    let _ = writeln!(out, "authors:     {}", d.authors.join(", "));
    let _ = writeln!(out, "vocabulary ({} section):", d.name);
    for option in &module.spec.options {
        let default = option
            .default
            .as_ref()
            .map(|v| format!(" = {v}"))
            .unwrap_or_default();
        let required = if option.required { " (required)" } else { "" };
        let _ = writeln!(
            out,
            "  {}: {}{default}{required}\n      {}",
            option.name, option.ty, option.help
        );
    }
    out
}
