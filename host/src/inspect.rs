//! `serverkit inspect`: what a module says about itself.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Result, bail};

use crate::contract::version::display;
use crate::engine::{self, ComponentCache};
use crate::instance::linker;
use crate::modules::builtin;
use crate::modules::load::{LoadedModule, Loader};
use crate::modules::source::ModuleSource;
use crate::options::{Decided, OptionKind};
use crate::startup::on_startup_thread;

/// What each interface a module may import lets it do, in the operator's words, by name
/// prefix, the more specific first. Anything not listed is shown as unknown (a module
/// importing it would not link).
const IMPORT_MEANINGS: &[(&str, &str)] = &[
    (
        "serverkit:module/types",
        "the contract's types (no capability)",
    ),
    (
        "serverkit:module/log",
        "write to the server's log (budgeted per instance)",
    ),
    ("serverkit:module/config", "read its own c11n section"),
    (
        "serverkit:module/prestart",
        "ask, at startup as root, for the listeners, terminal and TLS its section grants",
    ),
    (
        "serverkit:module/connection",
        "serve the connections the host accepts for it",
    ),
    (
        "serverkit:module/filesystem",
        "read files beneath the directories its section grants",
    ),
    (
        "serverkit:module/database",
        "query the database pools its section names",
    ),
    (
        "serverkit:module/maildrop",
        "read and change the Maildir folders beneath the directory its section grants",
    ),
    ("serverkit:module/stats", "read the server's status figures"),
    (
        "serverkit:module/heap",
        "keep data in its module heap, shared by its sessions",
    ),
    (
        "serverkit:module/store",
        "keep values under keys in its keyed store, shared by its sessions (store_mb)",
    ),
    (
        "wasi:io",
        "streams and polling (the connection's byte streams)",
    ),
    ("wasi:clocks", "read the time"),
    ("wasi:random", "random numbers"),
    (
        "wasi:cli/stdout",
        "standard output: each line goes to the server's log",
    ),
    (
        "wasi:cli/stderr",
        "standard error: each line goes to the server's log",
    ),
    ("wasi:cli/stdin", "standard input: always empty"),
    (
        "wasi:cli/environment",
        "environment and arguments: always empty",
    ),
    ("wasi:cli/exit", "exit: ends only its own instance"),
    ("wasi:cli/terminal", "terminal queries: never a terminal"),
    (
        "wasi:filesystem",
        "files: none preopened, so nothing reachable",
    ),
    ("wasi:sockets", "sockets: none permitted, so no network"),
];

/// One import of a module: the interface and what it lets the module do.
pub struct Import {
    /// `serverkit:module/log@1.0.0`, `wasi:io/streams@0.2.6`, ...
    pub name: String,
    /// What it grants, from [`IMPORT_MEANINGS`].
    pub meaning: &'static str,
}

/// The interfaces `module` imports: everything it could ask the host for.
pub fn imports(engine: &wasmtime::Engine, module: &LoadedModule) -> Vec<Import> {
    module
        .component
        .component_type()
        .imports(engine)
        .map(|(name, _)| {
            let unversioned = name.split('@').next().unwrap_or(name);
            let meaning = if !name.contains(':') {
                // A type the world itself imports, such as `connection`.
                "a type of the contract's world (no capability)"
            } else {
                IMPORT_MEANINGS
                    .iter()
                    .find(|(prefix, _)| unversioned.starts_with(prefix))
                    .map_or("unknown to this serverkit", |(_, meaning)| *meaning)
            };
            Import {
                name: name.to_string(),
                meaning,
            }
        })
        .collect()
}

fn render_imports(out: &mut String, imports: &[Import]) {
    let _ = writeln!(
        out,
        "imports ({}: what it could ask the host for):",
        imports.len()
    );
    for import in imports {
        let _ = writeln!(out, "  {}\n      {}", import.name, import.meaning);
    }
}

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
    let engine = engine::new(&engine::PoolPlan::SMALL)?;
    let linker = linker::build(&engine)?;
    let cache = ComponentCache::open(nix::unistd::geteuid().as_raw());
    let loader = Loader {
        engine: &engine,
        linker: &linker,
        cache: &cache,
    };
    let loaded = on_startup_thread(&engine, loader.load(&source))?;
    let mut out = render(&loaded);
    render_imports(&mut out, &imports(&engine, &loaded));
    Ok(out)
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
        let kind = OptionKind::of_c11n(&option.ty);
        if kind.decided != Decided::ByDefault {
            let _ = writeln!(out, "      reaches: {}", kind.reaches);
        }
    }
    out
}
