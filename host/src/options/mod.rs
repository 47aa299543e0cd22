//! What each kind of option means to the host, in one table: for every option type a
//! module may declare, how c11n parses it, whether it grants something privileged or
//! shared (and so whether a module's own default may stand for it), when the host opens
//! what it names, and whether a reload may change it. Startup, reload, `check`, `inspect`
//! and the vocabulary all read it here (ripgrep's `Flag` is the model: one definition
//! carries every aspect).
//!
//! - `session`: the host's own session options, added to every module's section.
//! - `proxy`: the PROXY protocol options among them, and the networks they trust.
//! - `vocabulary`: a module's descriptor as its c11n section, and values back to WIT.

pub mod proxy;
pub mod session;
pub mod vocabulary;

use serverkit_c11n::OptionType;

use crate::contract::bindings::types::OptionType as WitType;

/// Who may decide an option's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    /// The module's default stands when the operator says nothing: plain settings.
    ByDefault,
    /// What to listen on: the module's default stands, but only inside a section the
    /// operator wrote (a module nobody configured listens nowhere).
    InOperatorSection,
    /// Only a value the operator wrote grants it (files, directories, terminals, keys,
    /// pools): a module may not declare a default for it.
    ByOperatorOnly,
}

/// When the host acts on an option's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// Never: the module reads the value.
    Never,
    /// At prestart, as root (before the privilege drop), once; held for the module.
    AtPrestart,
    /// After the drop, once, shared by every module naming it (database pools).
    AtServe,
}

/// One kind of option and everything the host does with it.
#[derive(Debug)]
pub struct OptionKind {
    /// The type a module declares.
    pub wit: WitType,
    /// Who may decide its value.
    pub decided: Decided,
    /// When the host acts on it.
    pub opened: Opened,
    /// Whether a reload (SIGHUP, a hot swap) may change it: not for what was opened as
    /// root, since the new value could not be opened again after the drop.
    pub reloadable: bool,
    /// What it lets the module reach, as `serverkit inspect` says it.
    pub reaches: &'static str,
}

/// Every kind, in the order of `types.option-type` in `wit/types.wit`.
pub static KINDS: [OptionKind; 13] = [
    plain(WitType::Boolean),
    plain(WitType::Integer),
    plain(WitType::Text),
    plain(WitType::TextList),
    plain(WitType::IntegerList),
    OptionKind {
        wit: WitType::Port,
        decided: Decided::InOperatorSection,
        opened: Opened::AtPrestart,
        reloadable: false,
        reaches: "a listener the host binds on this port",
    },
    OptionKind {
        wit: WitType::Address,
        decided: Decided::InOperatorSection,
        opened: Opened::AtPrestart,
        reloadable: false,
        reaches: "listeners on this address (the wildcard only if this is the wildcard)",
    },
    granted(
        WitType::Directory,
        Opened::AtPrestart,
        "files beneath this directory, read-only",
    ),
    granted(
        WitType::File,
        Opened::AtPrestart,
        "this one file, read-only",
    ),
    granted(
        WitType::DatabaseRef,
        Opened::AtServe,
        "queries on this database pool",
    ),
    granted(
        WitType::Terminal,
        Opened::AtPrestart,
        "this terminal device as its operator's standard output",
    ),
    granted(
        WitType::Certificate,
        Opened::AtPrestart,
        "nothing: the host reads it for TLS",
    ),
    granted(
        WitType::PrivateKey,
        Opened::AtPrestart,
        "nothing: the host reads it for TLS, the key never reaches the module",
    ),
];

const fn plain(wit: WitType) -> OptionKind {
    OptionKind {
        wit,
        decided: Decided::ByDefault,
        opened: Opened::Never,
        reloadable: true,
        reaches: "nothing: a setting it reads",
    }
}

const fn granted(wit: WitType, opened: Opened, reaches: &'static str) -> OptionKind {
    OptionKind {
        wit,
        decided: Decided::ByOperatorOnly,
        opened,
        reloadable: false,
        reaches,
    }
}

impl OptionKind {
    /// The kind of a type a module declares.
    pub fn of(wit: WitType) -> &'static OptionKind {
        KINDS
            .iter()
            .find(|k| k.wit == wit)
            .expect("KINDS has a row for every WIT option type")
    }

    /// The kind of a c11n type in a module's section (`None` for the host's own options,
    /// which are all plain).
    pub fn of_c11n(ty: &OptionType) -> &'static OptionKind {
        KINDS.iter().find(|k| k.c11n() == *ty).unwrap_or(&KINDS[1])
    }

    /// How c11n parses and checks its values.
    pub fn c11n(&self) -> OptionType {
        match self.wit {
            WitType::Boolean => OptionType::Bool,
            WitType::Integer => OptionType::Integer,
            WitType::Text => OptionType::String,
            WitType::TextList => OptionType::List(Box::new(OptionType::String)),
            WitType::IntegerList => OptionType::List(Box::new(OptionType::Integer)),
            WitType::Port => OptionType::Port,
            WitType::Address => OptionType::Address,
            WitType::Directory => OptionType::Directory,
            WitType::File => OptionType::File,
            WitType::DatabaseRef => OptionType::DatabaseRef,
            WitType::Terminal => OptionType::Terminal,
            WitType::Certificate => OptionType::Certificate,
            WitType::PrivateKey => OptionType::PrivateKey,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wit_type_has_one_kind_and_round_trips_through_c11n() {
        for kind in &KINDS {
            assert!(std::ptr::eq(OptionKind::of(kind.wit), kind));
            assert!(std::ptr::eq(OptionKind::of_c11n(&kind.c11n()), kind));
        }
    }

    #[test]
    fn only_plain_settings_and_listen_options_take_module_defaults() {
        let operator_only: Vec<WitType> = KINDS
            .iter()
            .filter(|k| k.decided == Decided::ByOperatorOnly)
            .map(|k| k.wit)
            .collect();
        assert_eq!(
            operator_only,
            [
                WitType::Directory,
                WitType::File,
                WitType::DatabaseRef,
                WitType::Terminal,
                WitType::Certificate,
                WitType::PrivateKey
            ]
        );
        assert!(
            KINDS
                .iter()
                .all(|k| k.reloadable == (k.opened == Opened::Never))
        );
    }
}
