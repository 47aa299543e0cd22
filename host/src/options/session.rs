//! The session options the host adds to every module's c11n section, and their meaning in
//! this design (see docs/architecture.md, "Threads and sessions"): threads, sessions,
//! timeouts, the module's budgets (`crate::meter`) and the PROXY protocol (`proxy`). Each
//! sizes the module's pool or its meter, or shapes its accept path, when it starts, so a
//! reload may not change them ("restart needed").

use std::time::Duration;

use anyhow::{Result, bail};
use serverkit_c11n::{OptionSpec, OptionType, Section, Value};

use super::proxy::{self, ProxyProtocol};
use crate::engine::HOOK_INSTANCES_PER_MODULE;
use crate::meter::{Budgets, ModuleMeter};

/// Default cap on live sessions per module, as the seed's shttp report shows (2000).
pub const DEFAULT_MAX_SESSIONS: i64 = 1000;

fn int_option(name: &str, default: i64, help: &str) -> OptionSpec {
    OptionSpec {
        name: name.into(),
        ty: OptionType::Integer,
        default: Some(Value::Int(default)),
        required: false,
        help: help.into(),
    }
}

/// Options every module section accepts, whatever the module declares.
pub fn host_session_options() -> Vec<OptionSpec> {
    let mut options = vec![
        int_option(
            "max_sessions",
            DEFAULT_MAX_SESSIONS,
            "Most sessions served at once; beyond it the host stops accepting (back-pressure)",
        ),
        int_option(
            "min_sessions",
            0,
            "Session records reserved at startup (the module's session heap starts with this many units)",
        ),
        int_option(
            "min_threads",
            1,
            "Worker threads of the module's pool: they run its sessions' wasm and network I/O",
        ),
        int_option(
            "max_threads",
            4,
            "Upper bound of the module's pool: min_threads workers plus up to (max_threads - min_threads) threads for blocking host work",
        ),
        int_option(
            "idle_timeout",
            300,
            "Seconds a session may pass without a byte read or written before the host ends it",
        ),
        int_option(
            "session_cpu_ms",
            10_000,
            "Milliseconds of wasm execution one session may use; a session over it is interrupted",
        ),
        int_option(
            "session_wall_seconds",
            DEFAULT_SESSION_WALL_SECONDS,
            "Seconds one session may last however busy it is; 0 for no bound",
        ),
        int_option(
            "instance_memory_mb",
            DEFAULT_INSTANCE_MEMORY_MB,
            "MiB of linear memory one instance (one session) may have",
        ),
        int_option(
            "module_memory_mb",
            0,
            "MiB of linear memory all the module's live instances may have together; 0 for no bound beyond max_sessions times instance_memory_mb",
        ),
        int_option(
            "max_handles",
            DEFAULT_MAX_HANDLES,
            "Host resources (connection, streams, files, pollables...) one instance may hold at once",
        ),
        int_option(
            "max_buffered_kb",
            DEFAULT_MAX_BUFFERED_KB,
            "KiB the host holds for one instance at a time: its write permit, a send-file head, a Maildir read",
        ),
        int_option(
            "max_log_events",
            DEFAULT_MAX_LOG_EVENTS,
            "Log events (log calls, stdout and stderr lines) one instance may emit; later ones are dropped and counted",
        ),
        int_option(
            "host_memory_mb",
            0,
            "MiB of host memory the module's instances may cause together (heaps, buffered output, resource tables); 0 for what max_sessions instances can hold plus 64 MiB",
        ),
        int_option(
            "max_descriptors",
            0,
            "Descriptors (client sockets, open files and Maildirs) the module's instances may hold together; 0 for 3 per session plus 64",
        ),
        int_option(
            "store_mb",
            DEFAULT_STORE_MB,
            "MiB the module's keyed store may hold (keys and values as allocated, and 128 bytes of bookkeeping per key), shared by its sessions; a write past it is refused",
        ),
        int_option(
            "store_max_key_bytes",
            DEFAULT_STORE_MAX_KEY_BYTES,
            "Longest key of the module's keyed store, in bytes",
        ),
        int_option(
            "store_max_value_kb",
            DEFAULT_STORE_MAX_VALUE_KB,
            "Longest value of the module's keyed store, in KiB",
        ),
        OptionSpec {
            name: "store_persist".into(),
            ty: OptionType::Bool,
            default: Some(Value::Bool(false)),
            required: false,
            help: "Keep the module's keyed store in an embedded SQLite database, store/<module>.sqlite under the personality, so it survives a restart".into(),
        },
    ];
    options.extend(proxy::option_specs());
    options
}

/// Default `session_wall_seconds`: an hour is longer than any mail download or page
/// visit, short enough that a session held open by a trickling client ends.
const DEFAULT_SESSION_WALL_SECONDS: i64 = 3600;

/// Default `instance_memory_mb`: the figure every module ran with before the option.
pub const DEFAULT_INSTANCE_MEMORY_MB: i64 = 64;

/// Largest `instance_memory_mb` accepted: a wasm32 memory cannot be larger than 4 GiB.
const MAX_INSTANCE_MEMORY_MB: i64 = 4096;

/// Default `max_handles`.
const DEFAULT_MAX_HANDLES: i64 = 1024;

/// Default `max_buffered_kb`: one 64 KiB write permit, what every module had before.
const DEFAULT_MAX_BUFFERED_KB: i64 = 64;

/// Largest `max_buffered_kb` accepted (the host's own read and send bounds are 1 MiB).
const MAX_BUFFERED_KB: i64 = 1024;

/// Default `store_mb`: room for about a hundred thousand small entries.
const DEFAULT_STORE_MB: i64 = 16;

/// Largest `store_mb` accepted: the store lives in host memory.
const MAX_STORE_MB: i64 = 64 << 10;

/// Default `store_max_key_bytes`.
const DEFAULT_STORE_MAX_KEY_BYTES: i64 = 1024;

/// Largest `store_max_key_bytes`: keys are listed up to 1000 at a time in one answer.
const MAX_STORE_KEY_BYTES: i64 = 64 << 10;

/// Default `store_max_value_kb`.
const DEFAULT_STORE_MAX_VALUE_KB: i64 = 1024;

/// Largest `store_max_value_kb`: one value crosses into a guest's memory in one call.
const MAX_STORE_VALUE_KB: i64 = 64 << 10;

/// Default `max_log_events`.
const DEFAULT_MAX_LOG_EVENTS: i64 = 1000;

/// Host memory the automatic `host_memory_mb` leaves for what instances keep beyond their
/// reservation: the module's heaps.
pub const HOST_MEMORY_FOR_HEAPS: usize = 64 << 20;

/// Descriptors per session the automatic `max_descriptors` allows: the client's socket, a
/// Maildir or a file being sent, and one being opened.
const DESCRIPTORS_PER_SESSION: usize = 3;

/// Descriptors the automatic `max_descriptors` adds for the operator and the hooks.
const DESCRIPTORS_BESIDES_SESSIONS: usize = 64;

/// The session options with every default: what hooks that run before the configuration
/// is read (`describe`, `construct`) and `serverkit inspect` get.
pub fn defaults() -> SessionOptions {
    let values = host_session_options()
        .into_iter()
        .filter_map(|o| Some((o.name, o.default?)))
        .collect();
    let section = Section {
        name: "defaults".into(),
        title: None,
        location: serverkit_c11n::Location::START,
        values,
        locations: Default::default(),
    };
    SessionOptions::from_section("(defaults)", &section)
        .expect("the defaults of the host session options are valid")
}

/// The session options of one module, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionOptions {
    /// Most live sessions.
    pub max_sessions: usize,
    /// Session records reserved at startup.
    pub min_sessions: usize,
    /// Async worker threads.
    pub min_threads: usize,
    /// Workers plus blocking threads.
    pub max_threads: usize,
    /// Longest silence on a connection.
    pub idle_timeout: Duration,
    /// What the module may use: memory, CPU, handles, buffered bytes, log events,
    /// wall-clock time, host memory, descriptors.
    pub budgets: Budgets,
    /// Whether connections start with a PROXY header, and from where.
    pub proxy: ProxyProtocol,
}

impl SessionOptions {
    /// Reads and checks the options of a module section (whose defaults c11n applied).
    /// Errors name `file`, line and column, as c11n's own do.
    pub fn from_section(file: &str, section: &Section) -> Result<Self> {
        let at = |key: &str| {
            let loc = section.location_of(key).unwrap_or(section.location);
            format!("{file}:{}:{}", loc.line, loc.column)
        };
        let get = |key: &str| -> Result<i64> {
            section.int(key).ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: error: section `{}` lacks the host option `{key}`",
                    at(key),
                    section.name
                )
            })
        };
        let positive = |key: &str| -> Result<usize> {
            let v = get(key)?;
            if v < 1 {
                bail!(
                    "{}: error: `{key}` in section `{}` must be at least 1, found `{v}`",
                    at(key),
                    section.name
                );
            }
            Ok(v as usize)
        };
        let at_most = |key: &str, max: i64| -> Result<usize> {
            let v = positive(key)?;
            if v as i64 > max {
                bail!(
                    "{}: error: `{key}` in section `{}` must be at most {max}, found `{v}`",
                    at(key),
                    section.name
                );
            }
            Ok(v)
        };
        let not_negative = |key: &str| -> Result<u64> {
            let v = get(key)?;
            if v < 0 {
                bail!(
                    "{}: error: `{key}` in section `{}` must not be negative, found `{v}`",
                    at(key),
                    section.name
                );
            }
            Ok(v as u64)
        };
        let wall = not_negative("session_wall_seconds")?;
        let module_memory = not_negative("module_memory_mb")?;
        let max_sessions = positive("max_sessions")?;
        let mut budgets = Budgets {
            instance_memory: at_most("instance_memory_mb", MAX_INSTANCE_MEMORY_MB)? << 20,
            module_memory: (module_memory > 0).then_some((module_memory as usize) << 20),
            wall: (wall > 0).then(|| Duration::from_secs(wall)),
            cpu: Duration::from_millis(positive("session_cpu_ms")? as u64),
            handles: at_most("max_handles", 1 << 20)?,
            buffered: at_most("max_buffered_kb", MAX_BUFFERED_KB)? << 10,
            log_events: at_most("max_log_events", u32::MAX as i64)? as u32,
            host_memory: (not_negative("host_memory_mb")? as usize).saturating_mul(1 << 20),
            descriptors: not_negative("max_descriptors")? as usize,
            store: at_most("store_mb", MAX_STORE_MB)? << 20,
            store_key: at_most("store_max_key_bytes", MAX_STORE_KEY_BYTES)?,
            store_value: at_most("store_max_value_kb", MAX_STORE_VALUE_KB)? << 10,
        };
        let instances = max_sessions + HOOK_INSTANCES_PER_MODULE as usize;
        let reservation = ModuleMeter::instance_reservation(&budgets);
        if budgets.host_memory == 0 {
            budgets.host_memory = instances * reservation + HOST_MEMORY_FOR_HEAPS;
        } else if budgets.host_memory < reservation {
            bail!(
                "{}: error: `host_memory_mb` in section `{}` is below what one instance reserves ({} KiB: its resource table of `max_handles` entries and its write permit of `max_buffered_kb`)",
                at("host_memory_mb"),
                section.name,
                reservation.div_ceil(1024)
            );
        }
        if budgets.descriptors == 0 {
            budgets.descriptors =
                max_sessions * DESCRIPTORS_PER_SESSION + DESCRIPTORS_BESIDES_SESSIONS;
        }
        if let Some(module) = budgets.module_memory
            && module < budgets.instance_memory
        {
            bail!(
                "{}: error: `module_memory_mb` ({}) is below `instance_memory_mb` ({}) in section `{}`: no instance could use its own limit",
                at("module_memory_mb"),
                module >> 20,
                budgets.instance_memory >> 20,
                section.name
            );
        }
        let min_sessions = get("min_sessions")?;
        if min_sessions < 0 {
            bail!(
                "{}: error: `min_sessions` must not be negative, found `{min_sessions}`",
                at("min_sessions")
            );
        }
        let options = SessionOptions {
            max_sessions,
            min_sessions: min_sessions as usize,
            min_threads: positive("min_threads")?,
            max_threads: positive("max_threads")?,
            idle_timeout: Duration::from_secs(positive("idle_timeout")? as u64),
            budgets,
            proxy: ProxyProtocol::from_section(file, section)?,
        };
        if options.min_sessions > options.max_sessions {
            bail!(
                "{}: error: `min_sessions` ({}) exceeds `max_sessions` ({}) in section `{}`",
                at("min_sessions"),
                options.min_sessions,
                options.max_sessions,
                section.name
            );
        }
        if options.min_threads > options.max_threads {
            bail!(
                "{}: error: `min_threads` ({}) exceeds `max_threads` ({}) in section `{}`",
                at("min_threads"),
                options.min_threads,
                options.max_threads,
                section.name
            );
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serverkit_c11n::{SectionSpec, Vocabulary};

    fn options(text: &str) -> Result<SessionOptions> {
        let mut vocabulary = Vocabulary::core();
        let mut spec = SectionSpec::new("m", "test module");
        spec.options = host_session_options();
        vocabulary.add_section(spec);
        let config =
            serverkit_c11n::load("c11n", text, &vocabulary).map_err(|d| anyhow::anyhow!("{d}"))?;
        SessionOptions::from_section("c11n", config.section("m").unwrap())
    }

    #[test]
    fn the_defaults_alone_are_valid() {
        assert_eq!(defaults(), options("m {\n}\n").unwrap());
    }

    #[test]
    fn defaults_apply() {
        let o = options("m {\n}\n").unwrap();
        assert_eq!(
            (o.max_sessions, o.min_sessions, o.min_threads, o.max_threads),
            (1000, 0, 1, 4)
        );
        assert_eq!(o.idle_timeout, Duration::from_secs(300));
        let b = o.budgets;
        assert_eq!((b.instance_memory, b.module_memory), (64 << 20, None));
        assert_eq!(
            (b.cpu, b.wall),
            (Duration::from_secs(10), Some(Duration::from_secs(3600)))
        );
        assert_eq!(
            (b.handles, b.buffered, b.log_events),
            (1024, 64 << 10, 1000)
        );
        let per_instance = ModuleMeter::instance_reservation(&b);
        assert_eq!(b.host_memory, 1004 * per_instance + HOST_MEMORY_FOR_HEAPS);
        assert_eq!(b.descriptors, 3064);
        assert_eq!(
            (b.store, b.store_key, b.store_value),
            (16 << 20, 1024, 1 << 20)
        );
    }

    #[test]
    fn limits_are_read_in_their_units() {
        let o = options(
            "m {\n  instance_memory_mb = 8\n  module_memory_mb = 20\n  session_wall_seconds = 0\n  max_handles = 64\n  max_buffered_kb = 16\n  max_log_events = 5\n}\n",
        )
        .unwrap();
        let l = o.budgets;
        assert_eq!(
            (l.instance_memory, l.module_memory),
            (8 << 20, Some(20 << 20))
        );
        assert_eq!(
            (l.wall, l.handles, l.buffered, l.log_events),
            (None, 64, 16 << 10, 5)
        );
        let o = options(
            "m {\n  store_mb = 2\n  store_max_key_bytes = 16\n  store_max_value_kb = 4\n}\n",
        )
        .unwrap();
        assert_eq!(
            (o.budgets.store, o.budgets.store_key, o.budgets.store_value),
            (2 << 20, 16, 4 << 10)
        );
        let o = options("m {\n  host_memory_mb = 3\n  max_descriptors = 40\n}\n").unwrap();
        assert_eq!(
            (o.budgets.host_memory, o.budgets.descriptors),
            (3 << 20, 40)
        );
        let err = options("m {\n  max_buffered_kb = 1024\n  host_memory_mb = 1\n}\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("c11n:3:20: error: `host_memory_mb` in section `m` is below what one instance reserves"),
            "{err}"
        );
        let err = options("m {\n  instance_memory_mb = 16\n  module_memory_mb = 8\n}\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("c11n:3:22: error: `module_memory_mb` (8) is below"),
            "{err}"
        );
        let err = options("m {\n  instance_memory_mb = 5000\n}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be at most 4096"), "{err}");
    }

    #[test]
    fn inverted_bounds_are_errors_with_a_location() {
        let err = options("m {\n  min_threads = 5\n  max_threads = 2\n}\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "c11n:2:17: error: `min_threads` (5) exceeds `max_threads` (2) in section `m`"
        );
        let err = options("m {\n  max_sessions = 0\n}\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c11n:2:18: error: `max_sessions`"), "{err}");
    }
}
