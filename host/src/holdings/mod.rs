//! What a module holds, decided in one place and built once. [`Grants::decide`] reads the
//! section the operator wrote through the option-kind table (`crate::options`): only values
//! the operator wrote grant directories, files, terminals, certificates, keys and pools, and
//! a module nobody configured is granted nothing, not even a listener. [`Holdings`] is what
//! the host opened and keeps for the module (its granted files, terminal, TLS for STARTTLS,
//! pools, heaps, keyed store and meter), built at prestart as one value and carried whole to every new
//! generation: a reload or a swap changes only the section, and only where the table
//! allows.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result};
use serverkit_c11n::{Section, SectionSpec, Value};

use crate::capabilities::auth::Logins;
use crate::capabilities::database::DatabaseGrant;
use crate::capabilities::files::{FileGrant, GrantKind, GrantedFiles};
use crate::capabilities::heap::GuestHeaps;
use crate::capabilities::listen::ListenGrant;
use crate::capabilities::stats::ReportSource;
use crate::capabilities::store::{ModuleStore, StoreGrant};
use crate::capabilities::terminal::{self, TerminalGrant};
use crate::capabilities::tls::{TlsGrant, TlsSource};
use crate::contract::bindings::types::OptionType as WitType;
use crate::databases::Databases;
use crate::meter::ModuleMeter;
use crate::options::{Decided, OptionKind};

/// What a module's section lets it have, by capability.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Grants {
    /// Ports and addresses it may listen on.
    pub listen: ListenGrant,
    /// Directories and files the host opens for it.
    pub files: Vec<FileGrant>,
    /// Certificates and keys the host reads for its TLS.
    pub tls: TlsGrant,
    /// The terminal its operator writes to.
    pub terminal: Option<TerminalGrant>,
    /// The database pools it may query.
    pub databases: DatabaseGrant,
    /// Where its keyed store is kept (`store_persist`).
    pub store: StoreGrant,
}

impl Grants {
    /// What `section` grants, whose types `spec` gives; relative paths are resolved against
    /// the personality directory `base`. `written` says whether the operator wrote the
    /// section: a module without one is granted nothing. Inside it, a module's default for
    /// a `port` (an `address`) option stands only where the operator named no port (no
    /// address) at all: once the operator says where the module listens, that is all it
    /// gets, and a second option defaulting to the wildcard or another port grants nothing.
    pub fn decide(spec: &SectionSpec, section: &Section, written: bool, base: &Path) -> Grants {
        let mut grants = Grants::default();
        if !written {
            return grants;
        }
        let named = |wit: WitType| {
            spec.options.iter().any(|o| {
                OptionKind::of_c11n(&o.ty).wit == wit && section.location_of(&o.name).is_some()
            })
        };
        if section.bool("store_persist") == Some(true) {
            let file = format!("store/{}.sqlite", section.name);
            grants.store.persist = Some(base.join(file));
        }
        let (ports_named, addresses_named) = (named(WitType::Port), named(WitType::Address));
        for option in &spec.options {
            let kind = OptionKind::of_c11n(&option.ty);
            if kind.decided == Decided::ByDefault {
                continue;
            }
            let defaulted = section.location_of(&option.name).is_none();
            let overridden = match kind.wit {
                WitType::Port => ports_named,
                WitType::Address => addresses_named,
                _ => false,
            };
            if defaulted && overridden {
                continue;
            }
            let name = option.name.clone();
            match (kind.wit, section.get(&option.name)) {
                (WitType::Port, Some(Value::Int(p))) => {
                    grants.listen.ports.extend(u16::try_from(*p).ok())
                }
                (WitType::Address, Some(Value::Str(a))) => grants
                    .listen
                    .addresses
                    .extend(a.parse::<std::net::IpAddr>().ok()),
                (WitType::Directory | WitType::File, Some(Value::Str(path))) => {
                    let kind = match kind.wit {
                        WitType::Directory => GrantKind::Directory,
                        _ => GrantKind::File,
                    };
                    let path = base.join(path);
                    grants.files.push(FileGrant {
                        option: name,
                        path,
                        kind,
                    });
                }
                (WitType::Certificate, Some(Value::Str(path))) => {
                    grants.tls.certificates.push((name, base.join(path)))
                }
                (WitType::PrivateKey, Some(Value::Str(path))) => {
                    grants.tls.keys.push((name, base.join(path)))
                }
                (WitType::Terminal, Some(Value::Str(path))) => {
                    grants.terminal = Some(TerminalGrant {
                        option: name,
                        path: base.join(path),
                    })
                }
                (WitType::DatabaseRef, Some(Value::Str(pool))) => {
                    grants.databases.pools.push(pool.clone())
                }
                _ => {}
            }
        }
        grants
    }
}

impl Grants {
    /// What differs from `held`, as the operator names it: options, or what they grant.
    pub fn changes_from(&self, held: &Grants) -> Vec<String> {
        let mut changes = Vec::new();
        if self.listen != held.listen {
            changes.push("ports or addresses".to_string());
        }
        let file_options = |g: &Grants| {
            let mut names: Vec<String> = g.files.iter().map(|f| f.option.clone()).collect();
            names.sort();
            names
        };
        for option in file_options(self).into_iter().chain(file_options(held)) {
            let find = |g: &Grants| g.files.iter().find(|f| f.option == option).cloned();
            let name = format!("`{option}`");
            if find(self) != find(held) && !changes.contains(&name) {
                changes.push(name);
            }
        }
        if self.tls != held.tls {
            changes.push("certificates or keys".to_string());
        }
        if self.terminal != held.terminal {
            changes.push("the terminal".to_string());
        }
        if self.databases != held.databases {
            changes.push("database pools".to_string());
        }
        if self.store != held.store {
            changes.push("`store_persist`".to_string());
        }
        changes
    }
}

/// What the host holds for one module, shared by every instance of every generation.
pub struct Holdings {
    /// What its section grants.
    pub grants: Grants,
    /// Its granted directories and files, each opened once.
    pub files: GrantedFiles,
    /// Its terminal, opened at prestart: its operator's standard output.
    pub terminal: Option<std::fs::File>,
    /// The TLS configuration its `prestart` prepared, for `connection.start-tls`.
    pub starttls: OnceLock<Arc<TlsSource>>,
    /// The personality's database pools, once open (after the privilege drop); only those
    /// its grant names are reachable.
    pub databases: OnceLock<Arc<Databases>>,
    /// The status report, once serving (for the `stats` interface).
    pub report: OnceLock<Arc<dyn ReportSource>>,
    /// Its heaps.
    pub heaps: GuestHeaps,
    /// Its logins: failures and unauthenticated sessions per client address.
    pub logins: Arc<Logins>,
    /// Its keyed store.
    pub store: ModuleStore,
    /// Its budgets and what its instances use.
    pub meter: Arc<ModuleMeter>,
}

impl Holdings {
    /// Opens what `grants` names that the host opens at prestart (directories, files, the
    /// terminal): as root at startup, unprivileged for a module added while serving.
    pub fn open(module: &str, grants: Grants, meter: Arc<ModuleMeter>) -> Result<Self> {
        let files = GrantedFiles::open(&grants.files)
            .with_context(|| format!("module `{module}`: granted files"))?;
        let terminal = match &grants.terminal {
            Some(grant) => {
                let file = terminal::open(&grant.path)
                    .with_context(|| format!("module `{module}`: option `{}`", grant.option))?;
                tracing::info!(module, terminal = %grant.path.display(), "terminal opened");
                Some(file)
            }
            None => None,
        };
        let store = ModuleStore::open(module, &grants.store, meter.clone())?;
        Ok(Holdings {
            grants,
            files,
            terminal,
            store,
            ..Holdings::none(meter)
        })
    }

    /// Holdings with nothing granted: for the hooks that run before the configuration is
    /// read (`describe`, `construct`).
    pub fn none(meter: Arc<ModuleMeter>) -> Self {
        Holdings {
            grants: Grants::default(),
            files: GrantedFiles::default(),
            terminal: None,
            starttls: OnceLock::new(),
            databases: OnceLock::new(),
            report: OnceLock::new(),
            heaps: GuestHeaps::default(),
            logins: Arc::default(),
            store: ModuleStore::in_memory(meter.clone()),
            meter,
        }
    }

    /// A handle on the terminal, if one was opened.
    pub fn terminal(&self) -> Option<std::fs::File> {
        self.terminal.as_ref().and_then(|f| f.try_clone().ok())
    }
}

/// What an instance knows about its module: its name, its checked section, and what the
/// host holds for it.
pub struct ModuleContext {
    /// Module (and section) name.
    pub name: String,
    /// The module's checked c11n section (its defaults when the operator wrote none);
    /// `None` while describing, before c11n is read.
    pub section: Option<Arc<Section>>,
    /// What the host holds for it.
    pub holdings: Arc<Holdings>,
}

impl ModuleContext {
    /// A context.
    pub fn new(name: &str, section: Option<Arc<Section>>, holdings: Arc<Holdings>) -> Arc<Self> {
        Arc::new(ModuleContext {
            name: name.to_string(),
            section,
            holdings,
        })
    }

    /// The same module with a new section: what the host holds is carried whole.
    pub fn reconfigured(&self, section: Section) -> Arc<Self> {
        ModuleContext::new(&self.name, Some(Arc::new(section)), self.holdings.clone())
    }
}

#[cfg(test)]
mod tests {
    use serverkit_c11n::{OptionSpec, OptionType};

    use super::*;

    fn spec() -> SectionSpec {
        SectionSpec::new("m", "test")
            .option(OptionSpec::new("port", OptionType::Port, "").with_default(Value::Int(7)))
            .option(OptionSpec::new("address", OptionType::Address, ""))
            .option(OptionSpec::new("root", OptionType::Directory, ""))
            .option(OptionSpec::new("db", OptionType::DatabaseRef, ""))
            .option(OptionSpec::new("tty", OptionType::Terminal, ""))
            .option(OptionSpec::new("cert", OptionType::Certificate, ""))
            .option(OptionSpec::new("name", OptionType::String, ""))
    }

    fn section(values: &[(&str, Value)]) -> Section {
        Section {
            name: "m".into(),
            title: None,
            location: serverkit_c11n::Location::START,
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            locations: Default::default(),
        }
    }

    #[test]
    fn a_written_section_grants_what_its_typed_options_name() {
        let s = section(&[
            ("port", Value::Int(7)),
            ("address", Value::Str("127.0.0.1".into())),
            ("root", Value::Str("www".into())),
            ("db", Value::Str("users".into())),
            ("tty", Value::Str("/dev/tty12".into())),
            ("cert", Value::Str("cert.pem".into())),
            ("name", Value::Str("not a grant".into())),
        ]);
        let grants = Grants::decide(&spec(), &s, true, Path::new("/p"));
        assert_eq!(grants.listen.ports, [7]);
        assert_eq!(
            grants.listen.addresses,
            ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(grants.files[0].path, Path::new("/p/www"));
        assert_eq!(grants.databases.pools, ["users"]);
        assert_eq!(grants.terminal.unwrap().path, Path::new("/dev/tty12"));
        assert_eq!(grants.tls.certificates[0].1, Path::new("/p/cert.pem"));
    }

    #[test]
    fn changes_name_what_a_reload_may_not_do() {
        let base = Path::new("/p");
        let one = section(&[("port", Value::Int(7)), ("root", Value::Str("www".into()))]);
        let other = section(&[("port", Value::Int(8)), ("root", Value::Str("www2".into()))]);
        let held = Grants::decide(&spec(), &one, true, base);
        assert!(
            Grants::decide(&spec(), &one, true, base)
                .changes_from(&held)
                .is_empty()
        );
        let changes = Grants::decide(&spec(), &other, true, base).changes_from(&held);
        assert_eq!(changes, ["ports or addresses", "`root`"]);
        let none = Grants::decide(&spec(), &one, false, base).changes_from(&held);
        assert_eq!(none, ["ports or addresses", "`root`"], "a section removed");
    }

    #[test]
    fn listen_defaults_stand_only_where_the_operator_named_none() {
        let spec = spec()
            .option(
                OptionSpec::new("alt_port", OptionType::Port, "").with_default(Value::Int(1020)),
            )
            .option(
                OptionSpec::new("alt_address", OptionType::Address, "")
                    .with_default(Value::Str("0.0.0.0".into())),
            );
        let mut written = section(&[
            ("port", Value::Int(8080)),
            ("address", Value::Str("127.0.0.1".into())),
            ("alt_port", Value::Int(1020)),
            ("alt_address", Value::Str("0.0.0.0".into())),
        ]);
        for key in ["port", "address"] {
            written
                .locations
                .insert(key.into(), serverkit_c11n::Location::START);
        }
        let grants = Grants::decide(&spec, &written, true, Path::new("/p"));
        assert_eq!(grants.listen.ports, [8080]);
        assert_eq!(
            grants.listen.addresses,
            ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
        );
        // Nothing named: the module's conventional defaults stand.
        let defaults = section(&[("port", Value::Int(7)), ("alt_port", Value::Int(1020))]);
        let grants = Grants::decide(&spec, &defaults, true, Path::new("/p"));
        assert_eq!(grants.listen.ports, [7, 1020]);
    }

    #[test]
    fn store_persist_grants_a_file_under_the_personality_and_a_change_needs_a_restart() {
        let base = Path::new("/p");
        let persisted = section(&[("store_persist", Value::Bool(true))]);
        let grants = Grants::decide(&spec(), &persisted, true, base);
        assert_eq!(
            grants.store.persist.as_deref(),
            Some(Path::new("/p/store/m.sqlite"))
        );
        let in_memory = Grants::decide(&spec(), &section(&[]), true, base);
        assert_eq!(in_memory.store.persist, None);
        assert_eq!(in_memory.changes_from(&grants), ["`store_persist`"]);
        let unwritten = Grants::decide(&spec(), &persisted, false, base);
        assert_eq!(unwritten.store.persist, None, "no section, no file");
    }

    #[test]
    fn a_module_nobody_configured_is_granted_nothing() {
        let defaults = section(&[("port", Value::Int(7))]);
        let grants = Grants::decide(&spec(), &defaults, false, Path::new("/p"));
        assert_eq!(grants, Grants::default());
    }
}
