//! The contract version rule, as ServerKit's: a module built against another major version
//! is refused; a newer minor loads with a warning; patch differences are ignored.

use anyhow::{Result, bail};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::bindings::types::Version;

/// The WIT package this host implements.
pub const PACKAGE: &str = "serverkit:module";

/// The contract version this host speaks: keep in step with the package version in `wit/`.
pub const CONTRACT: Version = Version {
    major: 1,
    minor: 1,
    patch: 0,
};

/// Displays a version as `major.minor.patch`.
pub fn display(v: &Version) -> String {
    format!("{}.{}.{}", v.major, v.minor, v.patch)
}

/// The contract version a component was built against, read from the versions of the
/// `serverkit:module/*` interfaces it imports (`None` if it imports none of them). This
/// works before instantiation, so a module built for another major gets a clear message
/// instead of a linker error.
pub fn imported_contract(engine: &Engine, component: &Component) -> Option<Version> {
    let prefix = format!("{PACKAGE}/");
    component
        .component_type()
        .imports(engine)
        .find_map(|(name, _)| {
            let rest = name.strip_prefix(&prefix)?;
            let (_, version) = rest.split_once('@')?;
            parse(version)
        })
}

fn parse(text: &str) -> Option<Version> {
    let mut parts = text.split(['.', '-', '+']).map(str::parse::<u32>);
    Some(Version {
        major: parts.next()?.ok()?,
        minor: parts.next()?.ok()?,
        patch: parts.next()?.ok()?,
    })
}

/// Applies the version rule to a module built against `built`. Returns a warning to log
/// when the module is newer in minor version than this host.
pub fn check(module: &str, built: &Version) -> Result<Option<String>> {
    if built.major != CONTRACT.major {
        bail!(
            "module `{module}` was built against contract {PACKAGE}@{}, but this serverkit speaks {PACKAGE}@{}: major versions must match; rebuild the module against the {}.x contract",
            display(built),
            display(&CONTRACT),
            CONTRACT.major
        );
    }
    if built.minor > CONTRACT.minor {
        return Ok(Some(format!(
            "module `{module}` was built against contract {PACKAGE}@{}, newer than this serverkit's {PACKAGE}@{}; loading it anyway",
            display(built),
            display(&CONTRACT)
        )));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32, minor: u32, patch: u32) -> Version {
        Version {
            major,
            minor,
            patch,
        }
    }

    #[test]
    fn same_major_and_older_minor_load_silently() {
        assert!(check("m", &v(1, 0, 0)).unwrap().is_none());
        assert!(check("m", &v(1, 0, 9)).unwrap().is_none());
    }

    #[test]
    fn newer_minor_warns() {
        let warning = check("m", &v(1, 3, 0)).unwrap().expect("a warning");
        assert!(warning.contains("newer"), "{warning}");
    }

    #[test]
    fn other_major_is_refused_with_both_versions_named() {
        let err = check("pop", &v(2, 0, 0)).unwrap_err().to_string();
        assert!(
            err.contains("serverkit:module@2.0.0") && err.contains("serverkit:module@1.1.0"),
            "{err}"
        );
        assert!(check("pop", &v(0, 9, 0)).is_err());
    }

    #[test]
    fn parses_import_versions() {
        let parsed = parse("1.2.3").unwrap();
        assert_eq!((parsed.major, parsed.minor, parsed.patch), (1, 2, 3));
        assert!(parse("1.x").is_none());
    }
}
