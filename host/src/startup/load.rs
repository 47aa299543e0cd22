//! Steps 1-3: find the personality's modules, load them, and check `c11n` against the
//! combined vocabulary. Shared by `run` and `check`; binds nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use serverkit_c11n::{
    Config, Document, OptionSpec, OptionType, Parsed, Section, Value, Vocabulary,
};
use wasmtime::Engine;

use super::pool::{INSTANCE_CAPACITY_KEY, check_capacity, pool_plan, raw_int};
use super::{
    ConfiguredModule, Loaded, SHUTDOWN_TIMEOUT_KEY, SWAP_DRAIN_TIMEOUT_KEY, on_startup_thread,
};
use crate::contract::version;
use crate::engine::{self, ComponentCache};
use crate::instance::linker;
use crate::logging::syslog::Format;
use crate::modules::builtin;
use crate::modules::load::{LoadedModule, Loader};
use crate::modules::source::{ModuleSource, module_files};
use crate::options::session::SessionOptions;
use crate::options::vocabulary::CORE_SECTIONS;
use crate::personality::{Personality, shown};

/// Steps 1-3: load the modules and check the configuration.
pub fn load(personality: &Personality) -> Result<Loaded> {
    load_with(personality, None)
}

/// Steps 1-3 with `candidate`, a module file, loaded as if it were in `modules/`: it
/// stands in for the module file of its name, which is not loaded (`serverkit check
/// --module`, a preflight before a hot swap, also after a refused one).
pub fn load_with(personality: &Personality, candidate: Option<&Path>) -> Result<Loaded> {
    let c11n_file = shown(&personality.c11n_path());
    let text = personality.read_c11n()?;
    // Parsed with recovery: the section names say which built-ins to load and size the
    // instance pool, and syntax errors are reported together with vocabulary errors.
    let parsed = Parsed::new(&c11n_file, &text);
    let mut files = module_files(&personality.modules_dir())?;
    if let Some(candidate) = candidate {
        files.push(candidate.to_path_buf());
    }
    let pool = pool_plan(&parsed.document, &files);
    let engine = engine::new(&pool)?;
    tracing::debug!(
        capacity = pool.capacity,
        instance_memory_mb = pool.instance_memory >> 20,
        "instance pool"
    );
    let cache = Arc::new(ComponentCache::open(serving_uid(&parsed.document)));
    let (config, modules) = on_startup_thread(
        &engine,
        load_modules(
            personality,
            &engine,
            &cache,
            &parsed,
            files,
            candidate,
            &pool,
        ),
    )?;
    let syslog = syslog_settings(&config)?;
    Ok(Loaded {
        engine,
        pool,
        cache,
        config,
        modules,
        syslog,
        dir: personality.dir.clone(),
        text,
    })
}

/// Whether `file` in `modules/` is the one a candidate called `name`, from `path`, would
/// replace: the candidate itself, a file of the same file name, or one named after the
/// module. Such a file is not even loaded: it may be the broken file a refused swap left
/// behind, which the candidate is meant to fix.
fn replaced_by_candidate(file: &Path, path: &Path, name: &str) -> bool {
    let same_file = match (file.canonicalize(), path.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => file == path,
    };
    same_file
        || file.file_name() == path.file_name()
        || file.file_stem().and_then(|s| s.to_str()) == Some(name)
}

async fn load_modules(
    personality: &Personality,
    engine: &Engine,
    cache: &ComponentCache,
    parsed: &Parsed,
    files: Vec<PathBuf>,
    candidate: Option<&Path>,
    pool: &engine::PoolPlan,
) -> Result<(Config, Vec<ConfiguredModule>)> {
    let c11n_file = &parsed.document.file;
    let section_names = parsed.document.section_names();

    let linker = linker::build(engine)?;
    let loader = Loader {
        engine,
        linker: &linker,
        cache,
    };
    let mut modules: Vec<LoadedModule> = Vec::new();
    let candidate = match candidate {
        Some(path) => {
            let module = loader.load(&ModuleSource::file(path)?).await;
            let module = module.with_context(|| format!("candidate `{}`", path.display()))?;
            Some((path, module))
        }
        None => None,
    };
    for file in files {
        if let Some((path, new)) = &candidate
            && replaced_by_candidate(&file, path, new.name())
        {
            tracing::info!(module = new.name(), replaced = %file.display(), "the candidate stands in for it");
            continue;
        }
        let module = loader.load(&ModuleSource::file(&file)?).await?;
        if let Some((_, new)) = &candidate
            && new.name() == module.name()
        {
            tracing::info!(module = new.name(), replaced = %module.label, "the candidate stands in for it");
            continue;
        }
        add_module(&mut modules, module)?;
    }
    if let Some((_, module)) = candidate {
        add_module(&mut modules, module)?;
    }
    // A section naming a built-in module that no file provides loads the built-in.
    for name in &section_names {
        if !modules.iter().any(|m| m.name() == name)
            && let Some(source) = ModuleSource::builtin(name)
        {
            let loaded = loader.load(&source).await?;
            if let Some(note) = shadowed_file_note(name, &modules) {
                tracing::warn!(module = %name, "{note}");
            }
            add_module(&mut modules, loaded)?;
        }
    }

    let config = parsed.check(&vocabulary(&modules)).map_err(|d| {
        let unknown = section_names.iter().any(|n| {
            !CORE_SECTIONS.contains(&n.as_str()) && !modules.iter().any(|m| m.name() == n)
        });
        let note = if unknown {
            module_note(personality)
        } else {
            String::new()
        };
        let files = modules.iter().map(|m| (m.path.as_deref(), m.name()));
        let misnamed = misnamed_note(&section_names, files);
        anyhow!("invalid configuration `{c11n_file}`:\n{d}{misnamed}{note}")
    })?;
    let mut configured = Vec::new();
    for module in modules {
        let (section, written) = module_section(&config, &module)?;
        let options = SessionOptions::from_section(&config.file, &section)?;
        let base = &personality.dir;
        configured.push(ConfiguredModule::new(
            module, section, written, options, base,
        ));
    }
    check_capacity(&config.file, &configured, pool)?;
    Ok((config, configured))
}

/// The uid modules will be served as, for the compile cache (which must be opened before
/// the privilege drop, and before `c11n` is checked: loading compiles): the `uid` that
/// root drops to, else the current one. The root policy itself is applied, and its
/// errors reported, at step 4.
fn serving_uid(document: &Document) -> u32 {
    let euid = nix::unistd::geteuid().as_raw();
    if euid != 0 {
        return euid;
    }
    document
        .settings()
        .find(|s| s.key == "uid")
        .and_then(|s| raw_int(&s.value))
        .and_then(|uid| u32::try_from(uid).ok())
        .unwrap_or(0)
}

/// The remote syslog settings, when `bypass_libc_syslog` is on.
fn syslog_settings(config: &Config) -> Result<Option<(String, Format)>> {
    let globals = &config.globals;
    if !globals.bool("bypass_libc_syslog").unwrap_or(false) {
        return Ok(None);
    }
    let at = |key: &str| {
        let loc = globals.location_of(key).unwrap_or(globals.location);
        format!("{}:{}:{}", config.file, loc.line, loc.column)
    };
    let Some(address) = globals.str("libc_syslog_bypass_address") else {
        bail!(
            "{}: error: `bypass_libc_syslog = true` needs `libc_syslog_bypass_address` (host[:port])",
            at("bypass_libc_syslog")
        );
    };
    let format = Format::parse(globals.str(SYSLOG_FORMAT_KEY).unwrap_or("rfc5424"))
        .map_err(|e| anyhow!("{}: error: {e}", at(SYSLOG_FORMAT_KEY)))?;
    Ok(Some((address.to_string(), format)))
}

/// Core option: the syslog datagram format.
const SYSLOG_FORMAT_KEY: &str = "syslog_format";

/// Core options, `database` sections, the host's core options and `metrics` section, and one
/// section per module.
pub(super) fn vocabulary<'a>(modules: impl IntoIterator<Item = &'a LoadedModule>) -> Vocabulary {
    let mut vocabulary = Vocabulary::core();
    vocabulary.options.push(
        OptionSpec::new(
            SHUTDOWN_TIMEOUT_KEY,
            OptionType::Integer,
            "Seconds live sessions get to finish after SIGTERM or SIGINT",
        )
        .with_default(Value::Int(10)),
    );
    vocabulary.options.push(
        OptionSpec::new(
            SWAP_DRAIN_TIMEOUT_KEY,
            OptionType::Integer,
            "Seconds sessions on a module version replaced by a hot swap may still run; 0 for no bound",
        )
        .with_default(Value::Int(0)),
    );
    vocabulary.options.push(
        OptionSpec::new(
            INSTANCE_CAPACITY_KEY,
            OptionType::Integer,
            "Module instances the server holds at once; 0 to add up every module's max_sessions plus its operator and hooks",
        )
        .with_default(Value::Int(0)),
    );
    vocabulary.options.push(
        OptionSpec::new(
            SYSLOG_FORMAT_KEY,
            OptionType::String,
            "Syslog datagram format with bypass_libc_syslog: rfc5424 or rfc3164",
        )
        .with_default(Value::Str("rfc5424".into())),
    );
    vocabulary.add_section(crate::metrics::section_spec());
    for module in modules {
        vocabulary.add_section(module.spec.clone());
    }
    vocabulary
}

/// Where module sections come from, for an unknown section.
fn module_note(personality: &Personality) -> String {
    let builtins: Vec<&str> = builtin::names().collect();
    format!(
        "\nnote: a section configures the module of its name: a file in `{}` or a built-in ({})",
        personality.modules_dir().display(),
        builtins.join(", ")
    )
}

/// For a section named after a module file whose module calls itself something else
/// (`kv.wasm` holding `kvstore`): the section names the module, not the file, and the
/// error alone ("no loaded module ... is named `kv`") does not say where `kv` came from.
fn misnamed_note<'a>(
    sections: &[String],
    modules: impl Iterator<Item = (Option<&'a Path>, &'a str)>,
) -> String {
    let mut note = String::new();
    for (path, name) in modules {
        let Some(path) = path else { continue };
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if stem != name && sections.iter().any(|s| s == stem) && !sections.iter().any(|s| s == name)
        {
            note.push_str(&format!(
                "\nnote: `{}` holds a module that calls itself `{name}` (its describe name): \
                 its section is `{name} {{ ... }}`, whatever the file is called",
                path.display()
            ));
        }
    }
    note
}

/// When section `name` gets the built-in module because `modules/<name>.wasm` holds a
/// module of another name: the operator most likely meant that file to serve it.
fn shadowed_file_note(name: &str, modules: &[LoadedModule]) -> Option<String> {
    modules.iter().find_map(|m| {
        let path = m.path.as_deref()?;
        (path.file_stem()? == name && m.name() != name).then(|| {
            format!(
                "section `{name}` is served by the built-in {name}: `{}` holds a module that \
                 calls itself `{}` (its describe name), so it does not replace the built-in",
                path.display(),
                m.name()
            )
        })
    })
}

fn add_module(modules: &mut Vec<LoadedModule>, module: LoadedModule) -> Result<()> {
    if let Some(other) = modules.iter().find(|m| m.name() == module.name()) {
        bail!(
            "modules {} and {} are both named `{}`: remove one",
            other.label,
            module.label,
            module.name()
        );
    }
    tracing::info!(
        module = module.name(),
        from = %module.label,
        version = %version::display(&module.descriptor.version),
        "module loaded"
    );
    modules.push(module);
    Ok(())
}

/// The module's section and `true`, or its defaults and `false` when the file has none
/// (then it is granted nothing: see `holdings::Grants::decide`).
pub(super) fn module_section(config: &Config, module: &LoadedModule) -> Result<(Section, bool)> {
    if let Some(section) = config.section(module.name()) {
        return Ok((section.clone(), true));
    }
    let required: Vec<&str> = module
        .spec
        .options
        .iter()
        .filter(|o| o.required)
        .map(|o| o.name.as_str())
        .collect();
    if !required.is_empty() {
        bail!(
            "{}: error: module `{}` needs a `{} {{ ... }}` section setting {}",
            config.file,
            module.name(),
            module.name(),
            required.join(", ")
        );
    }
    let values = module
        .spec
        .options
        .iter()
        .filter_map(|o| Some((o.name.clone(), o.default.clone()?)))
        .collect();
    let section = Section {
        name: module.name().to_string(),
        title: None,
        location: config.globals.location,
        values,
        locations: Default::default(),
    };
    Ok((section, false))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::misnamed_note;

    #[test]
    fn a_section_named_after_the_file_names_what_the_module_calls_itself() {
        let sections = vec!["kv".to_string()];
        let modules = [
            (Some(Path::new("p/modules/kv.wasm")), "kvstore"),
            (Some(Path::new("p/modules/echo.wasm")), "echo"),
            (None, "shttp"),
        ];
        let note = misnamed_note(&sections, modules.into_iter());
        assert_eq!(
            note,
            "\nnote: `p/modules/kv.wasm` holds a module that calls itself `kvstore` (its \
             describe name): its section is `kvstore { ... }`, whatever the file is called"
        );
    }

    #[test]
    fn no_note_when_the_module_has_its_section() {
        let sections = vec!["kv".to_string(), "kvstore".to_string()];
        let modules = [(Some(Path::new("m/kv.wasm")), "kvstore")];
        assert_eq!(misnamed_note(&sections, modules.into_iter()), "");
    }
}

#[cfg(test)]
mod candidate_tests {
    use std::path::Path;

    use super::replaced_by_candidate;

    #[test]
    fn a_candidate_stands_in_for_the_file_of_its_name_or_its_module_name() {
        let candidate = Path::new("target/release/kv.wasm");
        assert!(replaced_by_candidate(
            Path::new("p/modules/kv.wasm"),
            candidate,
            "kvstore"
        ));
        assert!(replaced_by_candidate(
            Path::new("p/modules/kvstore.wasm"),
            candidate,
            "kvstore"
        ));
        assert!(!replaced_by_candidate(
            Path::new("p/modules/echo.wasm"),
            candidate,
            "kvstore"
        ));
    }
}
