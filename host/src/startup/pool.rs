//! Sizing the instance pool from the personality. The engine must exist before the
//! modules load (they compile for it), and the pool is part of the engine, so its plan is
//! read from the c11n text as written, before the vocabulary exists; the full check that
//! follows verifies the checked options fit it ([`check_capacity`]).

use std::path::PathBuf;

use anyhow::{Result, bail};
use serverkit_c11n::Document;
use serverkit_c11n::syntax::{RawKind, RawValue};

use super::ConfiguredModule;
use crate::engine::{HOOK_INSTANCES_PER_MODULE, PoolPlan};
use crate::options::session::{DEFAULT_INSTANCE_MEMORY_MB, DEFAULT_MAX_SESSIONS, SessionOptions};
use crate::options::vocabulary::CORE_SECTIONS;

/// Core option: instances the pool holds; 0 (the default) to compute it from the
/// modules' `max_sessions`.
pub(super) const INSTANCE_CAPACITY_KEY: &str = "instance_capacity";

/// Room the computed pool keeps for a module file added while serving: one module with
/// the default `max_sessions`. Larger additions need `instance_capacity`.
const ADDED_MODULE_HEADROOM: u64 = DEFAULT_MAX_SESSIONS as u64 + HOOK_INSTANCES_PER_MODULE as u64;

/// The pool for `document`: `instance_capacity` when set, else every module section's
/// `max_sessions` plus [`HOOK_INSTANCES_PER_MODULE`], the defaults for each module file
/// whose name no section has (it may be a module run with its defaults), and
/// [`ADDED_MODULE_HEADROOM`]. A value that is not a number counts as its default here;
/// the full check reports it.
pub(super) fn pool_plan(document: &Document, module_files: &[PathBuf]) -> PoolPlan {
    let sections: Vec<_> = document
        .sections()
        .filter(|s| !CORE_SECTIONS.contains(&s.name.as_str()))
        .collect();
    let setting = |section: &serverkit_c11n::syntax::SectionBlock, key: &str, default: i64| {
        section
            .settings
            .iter()
            .find(|s| s.key == key)
            .and_then(|s| raw_int(&s.value))
            .filter(|v| *v > 0)
            .unwrap_or(default) as u64
    };
    let unnamed_files = module_files
        .iter()
        .filter(|f| {
            let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            !sections.iter().any(|s| s.name == stem)
        })
        .count() as u64;
    let per_module = u64::from(HOOK_INSTANCES_PER_MODULE);
    let computed = sections
        .iter()
        .map(|s| setting(s, "max_sessions", DEFAULT_MAX_SESSIONS) + per_module)
        .sum::<u64>()
        + unnamed_files * (DEFAULT_MAX_SESSIONS as u64 + per_module)
        + ADDED_MODULE_HEADROOM;
    let capacity = document
        .settings()
        .find(|s| s.key == INSTANCE_CAPACITY_KEY)
        .and_then(|s| raw_int(&s.value))
        .filter(|v| *v > 0)
        .map_or(computed, |v| v as u64);
    let mut memory_mb = sections
        .iter()
        .map(|s| setting(s, "instance_memory_mb", DEFAULT_INSTANCE_MEMORY_MB))
        .max()
        .unwrap_or(DEFAULT_INSTANCE_MEMORY_MB as u64);
    if unnamed_files > 0 {
        memory_mb = memory_mb.max(DEFAULT_INSTANCE_MEMORY_MB as u64);
    }
    PoolPlan {
        capacity: capacity.clamp(1, u64::from(u32::MAX / 4)) as u32,
        instance_memory: (memory_mb.min(4096) as usize) << 20,
    }
}

/// An integer written as a bare word (decimal or `0x` hexadecimal), as c11n reads them.
pub(super) fn raw_int(value: &RawValue) -> Option<i64> {
    let RawKind::Bare(word) = &value.kind else {
        return None;
    };
    match word.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => word.parse().ok(),
    }
}

/// Why modules do not fit the instance pool.
pub(super) enum Misfit {
    /// Their sessions and hook instances add up to more than the pool holds.
    Capacity { sessions: usize, hooks: usize },
    /// A module's `instance_memory_mb` is larger than the pool's slots.
    Memory { module: String, asked_mb: usize },
}

/// Whether `modules` (name and session options) fit `plan` beside `held` instances
/// already taken (sessions of removed modules draining): every live session, operator and
/// hook holds an instance, and every instance's memory limit must fit a slot.
pub(super) fn misfit<'a>(
    plan: &PoolPlan,
    modules: impl IntoIterator<Item = (&'a str, &'a SessionOptions)>,
    held: usize,
) -> Option<Misfit> {
    let (mut sessions, mut hooks) = (0, 0);
    for (name, options) in modules {
        if options.budgets.instance_memory > plan.instance_memory {
            return Some(Misfit::Memory {
                module: name.to_string(),
                asked_mb: options.budgets.instance_memory >> 20,
            });
        }
        sessions += options.max_sessions;
        hooks += HOOK_INSTANCES_PER_MODULE as usize;
    }
    (sessions + hooks + held > plan.capacity as usize)
        .then_some(Misfit::Capacity { sessions, hooks })
}

/// The checked options must fit the plan made from the text as written.
pub(super) fn check_capacity(
    file: &str,
    modules: &[ConfiguredModule],
    plan: &PoolPlan,
) -> Result<()> {
    let options = modules.iter().map(|m| (m.module.name(), &m.options));
    match misfit(plan, options, 0) {
        None => Ok(()),
        Some(Misfit::Capacity { sessions, hooks }) => bail!(
            "{file}: error: the modules' `max_sessions` add up to {sessions} sessions (plus {hooks} instances for operators and hooks), more than `{INSTANCE_CAPACITY_KEY}` = {}: raise `{INSTANCE_CAPACITY_KEY}` or lower `max_sessions`",
            plan.capacity
        ),
        Some(Misfit::Memory { module, asked_mb }) => bail!(
            "{file}: error: `instance_memory_mb` of module `{module}` ({asked_mb} MiB) is larger than the instance pool's slots ({} MiB)",
            plan.instance_memory >> 20
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str, files: &[&str]) -> PoolPlan {
        let document = serverkit_c11n::parse("c11n", text).unwrap();
        let files: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
        pool_plan(&document, &files)
    }

    #[test]
    fn the_pool_is_the_sum_of_max_sessions_and_hooks() {
        let p = plan(
            "database D {\n}\npop {\n max_sessions = 10000\n instance_memory_mb = 8\n}\nshttp {\n}\n",
            &["modules/shttp.wasm", "modules/extra.wasm"],
        );
        assert_eq!(p.capacity, 10_000 + 4 + 1000 + 4 + 1000 + 4 + 1004);
        assert_eq!(
            p.instance_memory,
            64 << 20,
            "shttp and extra keep the default"
        );
        let p = plan(
            "pop {\n max_sessions = 0x10\n instance_memory_mb = 8\n}\n",
            &[],
        );
        assert_eq!((p.capacity, p.instance_memory), (20 + 1004, 8 << 20));
    }

    #[test]
    fn instance_capacity_overrides_the_sum() {
        let p = plan(
            "instance_capacity = 50\necho {\n max_sessions = x\n}\n",
            &[],
        );
        assert_eq!(p.capacity, 50);
        let p = plan("echo {\n max_sessions = x\n}\n", &[]);
        assert_eq!(
            p.capacity, 2008,
            "an unreadable value counts as its default"
        );
    }
}
