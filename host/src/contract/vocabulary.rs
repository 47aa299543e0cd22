//! Translation between the contract's types and c11n's: a module's descriptor becomes its
//! c11n section spec (plus the host's session options), and checked c11n values become
//! the `config-value`s the guest reads.

use anyhow::{Result, bail};
use serverkit_c11n::{OptionSpec, OptionType, SectionSpec, Value};

use super::bindings::types::{ConfigValue, Descriptor, OptionType as WitType};
use crate::sessions::options::host_session_options;

/// The c11n section a module's descriptor declares, including the host's session options.
pub fn section_spec(descriptor: &Descriptor) -> Result<SectionSpec> {
    let host_options = host_session_options();
    let mut options = Vec::new();
    for spec in &descriptor.vocabulary {
        if host_options.iter().any(|o| o.name == spec.name) {
            bail!(
                "module `{}` declares the option `{}`, which the host provides to every module section; remove it from the module's vocabulary",
                descriptor.name,
                spec.name
            );
        }
        options.push(OptionSpec {
            name: spec.name.clone(),
            ty: option_type(spec.option_type),
            default: spec.default.as_ref().map(value_from_wit),
            required: spec.required,
            help: spec.help.clone(),
        });
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

fn option_type(ty: WitType) -> OptionType {
    match ty {
        WitType::Boolean => OptionType::Bool,
        WitType::Integer => OptionType::Integer,
        WitType::Text => OptionType::String,
        WitType::TextList => OptionType::List(Box::new(OptionType::String)),
        WitType::IntegerList => OptionType::List(Box::new(OptionType::Integer)),
        WitType::Port => OptionType::Port,
        WitType::Address => OptionType::Address,
        WitType::Directory => OptionType::Directory,
        WitType::File => OptionType::File,
        // A device path the host opens itself in prestart; not a file grant.
        WitType::Terminal => OptionType::String,
        // Read by the host only, in prestart, for a TLS listener; never a file grant.
        WitType::Certificate | WitType::PrivateKey => OptionType::String,
        WitType::DatabaseRef => OptionType::DatabaseRef,
    }
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
        Value::List(items) => ConfigValue::TextList(items.iter().map(|v| v.to_string()).collect()),
    }
}

/// Whether `name` is a valid module (and so section) name: `[a-z][a-z0-9_]*`.
pub fn valid_module_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names() {
        assert!(valid_module_name("shttp"));
        assert!(valid_module_name("pop3_extra"));
        assert!(!valid_module_name("Pop"));
        assert!(!valid_module_name("9lives"));
        assert!(!valid_module_name(""));
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
