//! The vocabulary: which options and sections a file may use, with their types, defaults
//! and help. ServerKit's core contributes its part; each loaded module adds a section.

use std::fmt;

use crate::value::Value;

/// The type of an option: what it accepts, and which [`Value`] variant it yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionType {
    /// `true`/`false`, `yes`/`no`, `on`/`off`, any case, unquoted. Yields [`Value::Bool`].
    Bool,
    /// A decimal integer with optional sign, or `0x` hexadecimal, unquoted. Yields
    /// [`Value::Int`].
    Integer,
    /// Any scalar, taken as text: a bare word (`110` stays the text `110`), a bare value
    /// running to the end of its line, or a quoted string. Yields [`Value::Str`].
    String,
    /// `{a, b}` whose elements are of the inner type. Yields [`Value::List`].
    List(Box<OptionType>),
    /// An integer from 1 to 65535. Yields [`Value::Int`].
    Port,
    /// An IPv4 or IPv6 literal such as `192.0.2.1` or `::1`, bare or quoted. Yields
    /// [`Value::Str`] as written.
    Address,
    /// A non-empty directory path. Yields [`Value::Str`]; whether it exists is for the
    /// user of the value to find out.
    Directory,
    /// A non-empty file path. Yields [`Value::Str`].
    File,
    /// The title of a `database TITLE { ... }` section defined in the same file. Yields
    /// [`Value::Str`].
    DatabaseRef,
    /// A non-empty path of a terminal device (a character device such as `/dev/tty12`).
    /// Yields [`Value::Str`].
    Terminal,
    /// A non-empty path of a PEM certificate chain file. Yields [`Value::Str`].
    Certificate,
    /// A non-empty path of a PEM private key file. Yields [`Value::Str`].
    PrivateKey,
}

impl OptionType {
    /// Whether `value` is one this type yields: what a default set in code must be, since
    /// it skips the checking the file's values get. The error says what was expected.
    pub fn admits(&self, value: &Value) -> Result<(), String> {
        let fits = match (self, value) {
            (OptionType::Bool, Value::Bool(_)) | (OptionType::Integer, Value::Int(_)) => true,
            (OptionType::Port, Value::Int(port)) => (1..=65535).contains(port),
            (OptionType::String, Value::Str(_)) => true,
            (OptionType::Address, Value::Str(text)) => text.parse::<std::net::IpAddr>().is_ok(),
            (self_, Value::Str(text)) if self_.is_path_or_title() => !text.is_empty(),
            (OptionType::List(inner), Value::List(items)) => {
                return items.iter().try_for_each(|item| inner.admits(item));
            }
            _ => false,
        };
        if fits {
            Ok(())
        } else {
            Err(format!("expected {self}, found `{value}`"))
        }
    }

    /// Types whose value is a non-empty path or a `database` title.
    pub(crate) fn is_path_or_title(&self) -> bool {
        matches!(
            self,
            OptionType::Directory
                | OptionType::File
                | OptionType::DatabaseRef
                | OptionType::Terminal
                | OptionType::Certificate
                | OptionType::PrivateKey
        )
    }

    /// The plural, for "a list of ..." in messages.
    fn plural(&self) -> String {
        match self {
            OptionType::Bool => "booleans".to_owned(),
            OptionType::Integer => "integers".to_owned(),
            OptionType::String => "strings".to_owned(),
            OptionType::List(inner) => format!("lists of {}", inner.plural()),
            OptionType::Port => "port numbers (1-65535)".to_owned(),
            OptionType::Address => "IP addresses".to_owned(),
            OptionType::Directory => "directory paths".to_owned(),
            OptionType::File => "file paths".to_owned(),
            OptionType::DatabaseRef => "`database` section titles".to_owned(),
            OptionType::Terminal => "terminal device paths".to_owned(),
            OptionType::Certificate => "certificate file paths".to_owned(),
            OptionType::PrivateKey => "private key file paths".to_owned(),
        }
    }
}

/// What the option expects, as messages say it: "`port` expects {type}".
impl fmt::Display for OptionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionType::Bool => f.write_str("a boolean"),
            OptionType::Integer => f.write_str("an integer"),
            OptionType::String => f.write_str("a string"),
            OptionType::List(inner) => write!(f, "a list of {}", inner.plural()),
            OptionType::Port => f.write_str("a port number (1-65535)"),
            OptionType::Address => f.write_str("an IP address"),
            OptionType::Directory => f.write_str("a directory path"),
            OptionType::File => f.write_str("a file path"),
            OptionType::DatabaseRef => f.write_str("the title of a `database` section"),
            OptionType::Terminal => f.write_str("a terminal device path"),
            OptionType::Certificate => f.write_str("a certificate file path"),
            OptionType::PrivateKey => f.write_str("a private key file path"),
        }
    }
}

/// One option: `name = value`.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionSpec {
    /// The key.
    pub name: String,
    /// What it accepts.
    pub ty: OptionType,
    /// The value when the option is absent. It comes from code, not from the file; a
    /// caller taking it from code it does not trust checks it with
    /// [`OptionType::admits`].
    pub default: Option<Value>,
    /// Whether leaving it out is an error (pointless together with a default).
    pub required: bool,
    /// One or two sentences for operators.
    pub help: String,
}

impl OptionSpec {
    /// An optional option without default.
    pub fn new(name: &str, ty: OptionType, help: &str) -> OptionSpec {
        OptionSpec {
            name: name.to_owned(),
            ty,
            default: None,
            required: false,
            help: help.to_owned(),
        }
    }

    /// The same option with a default.
    pub fn with_default(mut self, value: Value) -> OptionSpec {
        self.default = Some(value);
        self
    }

    /// The same option, required.
    pub fn required(mut self) -> OptionSpec {
        self.required = true;
        self
    }
}

/// One section: `name { ... }`, or `name TITLE { ... }` when titled.
#[derive(Debug, Clone, PartialEq)]
pub struct SectionSpec {
    /// The section name: `database`, or the name of the module it configures.
    pub name: String,
    /// Whether the header carries a title, as in `database FOOFOO { ... }`.
    pub titled: bool,
    /// Whether the section may appear more than once (titled sections then need
    /// distinct titles).
    pub repeatable: bool,
    /// One or two sentences for operators.
    pub help: String,
    /// The options inside the section.
    pub options: Vec<OptionSpec>,
}

impl SectionSpec {
    /// An untitled section that may appear once, without options yet.
    pub fn new(name: &str, help: &str) -> SectionSpec {
        SectionSpec {
            name: name.to_owned(),
            titled: false,
            repeatable: false,
            help: help.to_owned(),
            options: Vec::new(),
        }
    }

    /// The same section, titled.
    pub fn titled(mut self) -> SectionSpec {
        self.titled = true;
        self
    }

    /// The same section, allowed more than once.
    pub fn repeatable(mut self) -> SectionSpec {
        self.repeatable = true;
        self
    }

    /// The same section with one more option.
    pub fn option(mut self, option: OptionSpec) -> SectionSpec {
        self.options.push(option);
        self
    }
}

/// Everything a file may say: top-level options and sections.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vocabulary {
    /// Options allowed at the top level.
    pub options: Vec<OptionSpec>,
    /// Sections allowed at the top level.
    pub sections: Vec<SectionSpec>,
}

/// The default size of a database pool. ServerKit documented no defaults; these keep a
/// small personality working without tuning: two connections kept open, ten at most.
pub const DEFAULT_POOL_MIN: i64 = 2;
/// See [`DEFAULT_POOL_MIN`].
pub const DEFAULT_POOL_MAX: i64 = 10;
/// The default `driver` of a `database` section: ServerKit spoke only MySQL, so a c11n
/// file written for it (the seed's `database FOOFOO`) keeps its meaning unchanged.
pub const DEFAULT_DRIVER: &str = "mysql";

impl Vocabulary {
    /// ServerKit's core vocabulary: the top-level options and the `database` section.
    /// Help texts are ServerKit's own, from its documentation.
    pub fn core() -> Vocabulary {
        use OptionType::{Bool, Integer, String};
        let options = vec![
            OptionSpec::new("identity", String, "This setting gets appended to \"server.\" in the argv[0] of the server process, so if you set this to say \"pop\", ps auxc will show \"server.pop\" for this personality. This is less important if you only run a single ServerKit personality, but when running multiple personalities on the same system it makes it simple to identify which process belongs to which personality."),
            OptionSpec::new("executes_as_root", Bool, "Set to true if this personality is to be started by root, if you enable this you should probably also use the uid & gid options. If left false and run by root server will abort with an error. Defaults to false.")
                .with_default(Value::Bool(false)),
            // ServerKit's table ends this text with "Defaults to false.", a slip copied
            // from the row above: uid has no default.
            OptionSpec::new("uid", Integer, "The uid to switch to after completing the prestart phase of startup, this will require root so executes_as_root needs to be true for this setting to work."),
            OptionSpec::new("gid", Integer, "Same as uid but switches the gid."),
            OptionSpec::new("bypass_libc_syslog", Bool, "Set to true to enable the direct udp-based remote syslog logging. Defaults to false.")
                .with_default(Value::Bool(false)),
            OptionSpec::new("libc_syslog_bypass_address", String, "Set to the address of the syslog collection host when bypass_libc_syslog is set to true."),
            // Not ServerKit's: serverkit's system call filter, installed after the drop.
            OptionSpec::new("seccomp", Bool, "Set to false to run without the seccomp filter that, from the privilege drop on, makes the kernel refuse system calls the server never needs (running programs, ptrace, mount, namespaces, kernel modules, bpf...). Only for debugging; read at startup. Defaults to true.")
                .with_default(Value::Bool(true)),
        ];
        let database = SectionSpec::new("database", "A section which configures a database pool.")
            .titled()
            .repeatable()
            .option(OptionSpec::new("name", String, "Name of database to use."))
            .option(OptionSpec::new(
                "user",
                String,
                "User name for database authentication.",
            ))
            .option(OptionSpec::new(
                "password",
                String,
                "Password for database authentication.",
            ))
            .option(OptionSpec::new(
                "host",
                String,
                "Hostname or address of database server.",
            ))
            .option(
                OptionSpec::new(
                    "driver",
                    String,
                    "Which database server this pool talks to: `mysql` (MySQL or MariaDB), `postgres`, or `sqlite` (embedded; `name` is then the database file, relative to the personality). Defaults to mysql, ServerKit's only database, so its c11n files keep their meaning.",
                )
                .with_default(Value::Str(DEFAULT_DRIVER.to_owned())),
            )
            .option(OptionSpec::new(
                "port",
                Integer,
                "TCP port of the database server; the driver's standard port (3306, 5432) when absent.",
            ))
            .option(OptionSpec::new(
                "socket",
                String,
                "Unix socket to reach the server through instead of TCP: the socket file for mysql, the socket directory for postgres.",
            ))
            .option(
                OptionSpec::new(
                    "pool_min",
                    Integer,
                    "Minimum database connections to keep open in the database pool.",
                )
                .with_default(Value::Int(DEFAULT_POOL_MIN)),
            )
            .option(
                OptionSpec::new(
                    "pool_max",
                    Integer,
                    "Maximum database connections to allow in the database pool.",
                )
                .with_default(Value::Int(DEFAULT_POOL_MAX)),
            );
        Vocabulary {
            options,
            sections: vec![database],
        }
    }

    /// Adds a section, replacing any section of the same name: the caller (the host,
    /// adding one section per module) decides whether a clash is an error, with
    /// [`Vocabulary::section`] to find out.
    pub fn add_section(&mut self, spec: SectionSpec) {
        self.sections.retain(|s| s.name != spec.name);
        self.sections.push(spec);
    }

    /// The section of that name.
    pub fn section(&self, name: &str) -> Option<&SectionSpec> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The top-level option of that name.
    pub fn option(&self, name: &str) -> Option<&OptionSpec> {
        self.options.iter().find(|o| o.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_read_well_in_messages() {
        assert_eq!(OptionType::Port.to_string(), "a port number (1-65535)");
        assert_eq!(OptionType::Integer.to_string(), "an integer");
        let list = OptionType::List(Box::new(OptionType::Address));
        assert_eq!(list.to_string(), "a list of IP addresses");
    }

    #[test]
    fn defaults_are_checked_against_their_type() {
        assert!(OptionType::Integer.admits(&Value::Int(3)).is_ok());
        let err = OptionType::Integer
            .admits(&Value::Str("1000".into()))
            .unwrap_err();
        assert_eq!(err, "expected an integer, found `1000`");
        assert!(OptionType::Port.admits(&Value::Int(0)).is_err());
        assert!(
            OptionType::Address
                .admits(&Value::Str("::1".into()))
                .is_ok()
        );
        assert!(
            OptionType::Address
                .admits(&Value::Str("localhost".into()))
                .is_err()
        );
        assert!(
            OptionType::Terminal
                .admits(&Value::Str(String::new()))
                .is_err()
        );
        let ports = OptionType::List(Box::new(OptionType::Port));
        assert!(ports.admits(&Value::List(vec![Value::Int(80)])).is_ok());
        assert!(ports.admits(&Value::List(vec![Value::Int(0)])).is_err());
    }

    #[test]
    fn core_has_seed_options_and_database() {
        let core = Vocabulary::core();
        for name in [
            "identity",
            "executes_as_root",
            "uid",
            "gid",
            "bypass_libc_syslog",
            "seccomp",
        ] {
            assert!(core.option(name).is_some(), "{name}");
        }
        assert_eq!(
            core.option("seccomp").unwrap().default,
            Some(Value::Bool(true)),
            "the filter is on unless turned off"
        );
        let database = core.section("database").unwrap();
        assert!(database.titled && database.repeatable);
        let pool_max = database
            .options
            .iter()
            .find(|o| o.name == "pool_max")
            .unwrap();
        assert_eq!(pool_max.default, Some(Value::Int(DEFAULT_POOL_MAX)));
    }

    #[test]
    fn add_section_replaces_same_name() {
        let mut vocab = Vocabulary::core();
        vocab.add_section(SectionSpec::new("pop", "first"));
        vocab.add_section(SectionSpec::new("pop", "second"));
        assert_eq!(vocab.sections.len(), 2);
        assert_eq!(vocab.section("pop").unwrap().help, "second");
    }
}
