//! Building what `describe` returns: the descriptor, its versions and its vocabulary.

use crate::{ConfigValue, Descriptor, OptionSpec, OptionType, Version};

/// The `serverkit:module` version these bindings were generated from: the package
/// version in `wit/` (a unit test keeps the two equal). Every descriptor built with
/// [`Descriptor::new`] carries it, so the host's version rule sees the truth.
pub const CONTRACT: Version = Version::new(1, 1, 0);

/// The authors of the modules shipped with serverkit.
pub const SERVERKIT_AUTHORS: &str = "The serverkit developers";

impl Version {
    /// `major.minor.patch`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Version {
            major,
            minor,
            patch,
        }
    }
}

impl Descriptor {
    /// A module named `name` (also its c11n section name) at `version`, built against
    /// [`CONTRACT`], with no authors and no options yet.
    pub fn new(name: &str, description: &str, version: Version) -> Self {
        Descriptor {
            name: name.into(),
            description: description.into(),
            version,
            contract: CONTRACT,
            authors: Vec::new(),
            vocabulary: Vec::new(),
        }
    }

    /// Adds an author, e.g. `Ada Lovelace <ada@example.org>`.
    pub fn author(mut self, author: &str) -> Self {
        self.authors.push(author.into());
        self
    }

    /// Adds options to the vocabulary, in order.
    pub fn options(mut self, options: impl IntoIterator<Item = OptionSpec>) -> Self {
        self.vocabulary.extend(options);
        self
    }
}

/// An option of type `option_type`, optional and without a default; chain
/// [`OptionSpec::default_text`] and the like to give it one.
pub fn option(name: &str, option_type: OptionType, help: &str) -> OptionSpec {
    OptionSpec {
        name: name.into(),
        option_type,
        default: None,
        required: false,
        help: help.into(),
    }
}

impl OptionSpec {
    /// The operator must set it.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Its value when the key is absent: text (also addresses, paths, pool names).
    pub fn default_text(mut self, text: &str) -> Self {
        self.default = Some(ConfigValue::Text(text.into()));
        self
    }

    /// Its value when the key is absent: a number (also ports).
    pub fn default_integer(mut self, number: i64) -> Self {
        self.default = Some(ConfigValue::Integer(number));
        self
    }

    /// Its value when the key is absent: on or off.
    pub fn default_flag(mut self, flag: bool) -> Self {
        self.default = Some(ConfigValue::Boolean(flag));
        self
    }
}

/// `address`, read by [`crate::listen`]: where to listen, by default `default`.
pub fn address_option(default: &str) -> OptionSpec {
    option(
        crate::listen::ADDRESS,
        OptionType::Address,
        "Address to listen on",
    )
    .default_text(default)
}

/// `port`, read by [`crate::listen`]: the TCP port to listen on, by default `default`.
pub fn port_option(default: u16) -> OptionSpec {
    option(
        crate::listen::PORT,
        OptionType::Port,
        "TCP port to listen on",
    )
    .default_integer(default.into())
}

/// `backlog`, read by [`crate::listen`]: the listen backlog, by default `default`.
pub fn backlog_option(default: u32) -> OptionSpec {
    option(
        crate::listen::BACKLOG,
        OptionType::Integer,
        "Listen backlog passed to listen()",
    )
    .default_integer(default.into())
}

/// The three options [`crate::listen::plain`] reads: `address` (`0.0.0.0`), `port` and
/// `backlog`.
pub fn listen_options(port: u16, backlog: u32) -> [OptionSpec; 3] {
    [
        address_option("0.0.0.0"),
        port_option(port),
        backlog_option(backlog),
    ]
}

#[cfg(test)]
mod tests {
    use super::CONTRACT;

    /// `CONTRACT` must be the version of the package the bindings come from.
    #[test]
    fn contract_matches_the_wit_package() {
        let world = include_str!("../../../wit/world.wit");
        let expected = format!(
            "package serverkit:module@{}.{}.{};",
            CONTRACT.major, CONTRACT.minor, CONTRACT.patch
        );
        assert!(
            world.lines().any(|line| line.trim() == expected),
            "wit/world.wit does not declare `{expected}`"
        );
    }
}
