//! Translation between the contract's types and c11n's: a module's descriptor becomes its
//! c11n section spec (plus the host's session options), and checked c11n values become
//! the `config-value`s the guest reads.

use anyhow::{Result, bail};
use serverkit_c11n::{OptionSpec, SectionSpec, Value};

use super::session::host_session_options;
use super::{Decided, OptionKind};
use crate::contract::bindings::types::{ConfigValue, Descriptor, OptionSpec as WitSpec};

/// The c11n section a module's descriptor declares, including the host's session options.
/// Refused, with every reason, when the module declares a host option, a default of the
/// wrong type, or a default for an option only the operator may grant.
pub fn section_spec(descriptor: &Descriptor) -> Result<SectionSpec> {
    let host_options = host_session_options();
    let mut problems = Vec::new();
    let mut options = Vec::new();
    for spec in &descriptor.vocabulary {
        if host_options.iter().any(|o| o.name == spec.name) {
            problems.push(format!(
                "it declares the option `{}`, which the host provides to every module section: remove it from the module's vocabulary",
                spec.name
            ));
            continue;
        }
        match option_spec(spec) {
            Ok(option) => options.push(option),
            Err(problem) => problems.push(problem),
        }
    }
    if !problems.is_empty() {
        bail!(
            "module `{}` is refused: {}",
            descriptor.name,
            problems.join("; ")
        );
    }
    options.extend(host_options);
    Ok(SectionSpec {
        name: descriptor.name.clone(),
        titled: false,
        repeatable: false,
        help: descriptor.description.clone(),
        options,
    })
}

/// One declared option as c11n checks it; why not, if its default may not stand.
fn option_spec(spec: &WitSpec) -> Result<OptionSpec, String> {
    let kind = OptionKind::of(spec.option_type);
    let ty = kind.c11n();
    let default = spec.default.as_ref().map(value_from_wit);
    if let Some(default) = &default {
        if kind.decided == Decided::ByOperatorOnly {
            return Err(format!(
                "the option `{}` ({ty}) has a default (`{default}`), but directories, files, terminals, certificates, private keys and database pools are granted only by what the operator writes in c11n: remove the default, and mark the option required if the module needs it",
                spec.name
            ));
        }
        ty.admits(default).map_err(|e| {
            format!(
                "the default of the option `{}` is not of its type: {e}",
                spec.name
            )
        })?;
    }
    Ok(OptionSpec {
        name: spec.name.clone(),
        ty,
        default,
        required: spec.required,
        help: spec.help.clone(),
    })
}

fn value_from_wit(value: &ConfigValue) -> Value {
    match value {
        ConfigValue::Boolean(b) => Value::Bool(*b),
        ConfigValue::Integer(i) => Value::Int(*i),
        ConfigValue::Text(s) => Value::Str(s.clone()),
        ConfigValue::TextList(items) => {
            Value::List(items.iter().cloned().map(Value::Str).collect())
        }
        ConfigValue::IntegerList(items) => {
            Value::List(items.iter().copied().map(Value::Int).collect())
        }
    }
}

/// The guest's view of a checked c11n value. Lists are homogeneous after checking; an
/// empty list is given as an empty text list.
pub fn value_to_wit(value: &Value) -> ConfigValue {
    match value {
        Value::Bool(b) => ConfigValue::Boolean(*b),
        Value::Int(i) => ConfigValue::Integer(*i),
        Value::Str(s) => ConfigValue::Text(s.clone()),
        Value::List(items)
            if items.iter().all(|v| matches!(v, Value::Int(_))) && !items.is_empty() =>
        {
            ConfigValue::IntegerList(
                items
                    .iter()
                    .filter_map(|v| {
                        if let Value::Int(i) = v {
                            Some(*i)
                        } else {
                            None
                        }
                    })
                    .collect(),
            )
        }
        Value::List(items) => ConfigValue::TextList(
            items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
                .collect(),
        ),
    }
}

/// The section the host's metrics endpoint is configured by (`crate::metrics`).
pub const METRICS_SECTION: &str = "metrics";

/// Sections of the core vocabulary: no module may take their names.
pub const CORE_SECTIONS: [&str; 2] = ["database", METRICS_SECTION];

/// Whether `name` is a valid module (and so section) name: `[a-z][a-z0-9_]*`, and not the
/// name of a core section.
pub fn valid_module_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && !CORE_SECTIONS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::bindings::types::OptionType as WitType;

    #[test]
    fn module_names() {
        assert!(valid_module_name("shttp"));
        assert!(valid_module_name("pop3_extra"));
        assert!(!valid_module_name("Pop"));
        assert!(!valid_module_name("9lives"));
        assert!(!valid_module_name(""));
        assert!(!valid_module_name("metrics"));
        assert!(!valid_module_name("database"));
    }

    fn declared(ty: WitType, default: Option<ConfigValue>) -> Descriptor {
        Descriptor {
            name: "m".into(),
            description: String::new(),
            version: crate::contract::version::CONTRACT,
            contract: crate::contract::version::CONTRACT,
            authors: vec![],
            vocabulary: vec![WitSpec {
                name: "x".into(),
                option_type: ty,
                default,
                required: false,
                help: String::new(),
            }],
        }
    }

    #[test]
    fn defaults_must_fit_their_type() {
        let text = || Some(ConfigValue::Text("1000".into()));
        let err = section_spec(&declared(WitType::Integer, text())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "module `m` is refused: the default of the option `x` is not of its type: expected an integer, found `1000`"
        );
        assert!(section_spec(&declared(WitType::Text, text())).is_ok());
        let port = Some(ConfigValue::Integer(70_000));
        assert!(section_spec(&declared(WitType::Port, port)).is_err());
    }

    #[test]
    fn only_the_operator_grants_files_terminals_keys_and_pools() {
        for ty in [
            WitType::Directory,
            WitType::File,
            WitType::Terminal,
            WitType::Certificate,
            WitType::PrivateKey,
            WitType::DatabaseRef,
        ] {
            let path = Some(ConfigValue::Text("/root/secret".into()));
            let err = section_spec(&declared(ty, path)).unwrap_err().to_string();
            assert!(
                err.contains("granted only by what the operator writes"),
                "{err}"
            );
            assert!(section_spec(&declared(ty, None)).is_ok());
        }
        let port = Some(ConfigValue::Integer(110));
        assert!(section_spec(&declared(WitType::Port, port)).is_ok());
    }

    #[test]
    fn values_round_trip() {
        for v in [Value::Bool(true), Value::Int(-3), Value::Str("x y".into())] {
            assert_eq!(value_from_wit(&value_to_wit(&v)), v);
        }
        assert!(
            matches!(value_to_wit(&Value::List(vec![Value::Int(1)])), ConfigValue::IntegerList(l) if l == [1])
        );
    }
}
