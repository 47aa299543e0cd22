//! The PROXY protocol session options: whether a module's listeners expect a PROXY header
//! (v1 or v2) from a load balancer before anything else, and which addresses may send one.
//! Like the other session options they are read once, when the module starts.

use std::fmt;
use std::net::IpAddr;

use anyhow::{Result, bail};
use serverkit_c11n::{OptionSpec, OptionType, Section, Value};

/// `proxy_protocol`: whether connections start with a PROXY header.
pub const PROXY_PROTOCOL_KEY: &str = "proxy_protocol";

/// `proxy_protocol_from`: the addresses and networks allowed to connect when it is on.
pub const PROXY_PROTOCOL_FROM_KEY: &str = "proxy_protocol_from";

/// The two options, as every module section accepts them.
pub fn option_specs() -> Vec<OptionSpec> {
    vec![
        OptionSpec::new(
            PROXY_PROTOCOL_KEY,
            OptionType::Bool,
            "Every connection starts with a PROXY protocol header (v1 or v2, as HAProxy's send-proxy and send-proxy-v2 write it) naming the real client; needs proxy_protocol_from",
        )
        .with_default(Value::Bool(false)),
        OptionSpec::new(
            PROXY_PROTOCOL_FROM_KEY,
            OptionType::List(Box::new(OptionType::String)),
            "Addresses and CIDR networks (such as 10.0.0.0/8) allowed to connect and send a PROXY header when proxy_protocol is on; connections from elsewhere are refused",
        ),
    ]
}

/// What a module's section says about the PROXY protocol.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyProtocol {
    /// Whether connections start with a header.
    pub enabled: bool,
    /// Who may connect (and so speak for clients) when enabled.
    pub from: Vec<Network>,
}

impl ProxyProtocol {
    /// Reads the two options of `section`; errors name `file`, line and column. On, it
    /// needs at least one address to trust; off, a list of addresses would mean nothing.
    pub fn from_section(file: &str, section: &Section) -> Result<Self> {
        let at = |key: &str| {
            let loc = section.location_of(key).unwrap_or(section.location);
            format!("{file}:{}:{}", loc.line, loc.column)
        };
        let enabled = section.bool(PROXY_PROTOCOL_KEY).unwrap_or(false);
        let listed = section.list(PROXY_PROTOCOL_FROM_KEY);
        let mut from = Vec::new();
        for item in listed.unwrap_or_default() {
            let text = item.as_str().unwrap_or_default();
            match Network::parse(text) {
                Ok(network) => from.push(network),
                Err(why) => bail!(
                    "{}: error: `{PROXY_PROTOCOL_FROM_KEY}` in section `{}`: {why}",
                    at(PROXY_PROTOCOL_FROM_KEY),
                    section.name
                ),
            }
        }
        match (enabled, listed.is_some()) {
            (true, _) if from.is_empty() => bail!(
                "{}: error: `{PROXY_PROTOCOL_KEY} = true` in section `{}` needs `{PROXY_PROTOCOL_FROM_KEY} = {{ ... }}`, the balancers allowed to name clients (such as {{127.0.0.1, 10.0.0.0/8}})",
                at(PROXY_PROTOCOL_KEY),
                section.name
            ),
            (false, true) => bail!(
                "{}: error: `{PROXY_PROTOCOL_FROM_KEY}` in section `{}` means nothing without `{PROXY_PROTOCOL_KEY} = true`",
                at(PROXY_PROTOCOL_FROM_KEY),
                section.name
            ),
            _ => Ok(ProxyProtocol { enabled, from }),
        }
    }

    /// Whether a connection from `ip` may send a header.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.from.iter().any(|network| network.contains(ip))
    }
}

/// An address or a CIDR network: `192.0.2.7`, `10.0.0.0/8`, `2001:db8::/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    /// Reads `text`; the error says why it is neither an address nor a network. A network
    /// with bits set past its prefix is refused: `10.0.0.1/8` most likely means a typo.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (address_text, prefix_text) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address_text.parse().map_err(|_| {
            format!("`{text}` is not an IP address or a CIDR network (such as 192.0.2.0/24)")
        })?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => bits,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("`{text}`: the prefix length must be 0 to {bits}"))?,
        };
        let network = Network { address, prefix };
        if network.masked() != address {
            return Err(format!(
                "`{text}` has address bits set past its /{prefix}: did you mean `{}/{prefix}`?",
                network.masked()
            ));
        }
        Ok(network)
    }

    /// Whether `ip` is in the network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_bits(u32::from(net).into(), 32, self.prefix)
                    == prefix_bits(u32::from(ip).into(), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_bits(net.into(), 128, self.prefix)
                    == prefix_bits(ip.into(), 128, self.prefix)
            }
            _ => false,
        }
    }

    /// The address with the bits past the prefix cleared.
    fn masked(&self) -> IpAddr {
        match self.address {
            IpAddr::V4(a) => {
                let bits = prefix_bits(u32::from(a).into(), 32, self.prefix);
                IpAddr::from((bits as u32).to_be_bytes())
            }
            IpAddr::V6(a) => IpAddr::from(prefix_bits(a.into(), 128, self.prefix).to_be_bytes()),
        }
    }
}

/// The first `prefix` bits of a `width`-bit number, the rest zero.
fn prefix_bits(value: u128, width: u32, prefix: u8) -> u128 {
    let cleared = width - u32::from(prefix);
    if cleared >= width {
        0
    } else {
        value >> cleared << cleared
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serverkit_c11n::{SectionSpec, Vocabulary};

    fn read(text: &str) -> Result<ProxyProtocol> {
        let mut vocabulary = Vocabulary::core();
        let mut spec = SectionSpec::new("m", "test module");
        spec.options = option_specs();
        vocabulary.add_section(spec);
        let config =
            serverkit_c11n::load("c11n", text, &vocabulary).map_err(|d| anyhow::anyhow!("{d}"))?;
        ProxyProtocol::from_section("c11n", config.section("m").unwrap())
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn off_by_default_and_trusting_no_one() {
        let p = read("m {\n}\n").unwrap();
        assert_eq!(p, ProxyProtocol::default());
        assert!(!p.trusts(ip("127.0.0.1")));
    }

    #[test]
    fn addresses_and_networks_are_trusted_as_written() {
        let p = read(
            "m {\n  proxy_protocol = true\n  proxy_protocol_from = {127.0.0.1, 10.0.0.0/8, \"2001:db8::/32\", 0.0.0.0/0}\n}\n",
        )
        .unwrap();
        assert!(p.enabled);
        assert_eq!(p.from.len(), 4);
        let p = read(
            "m {\n  proxy_protocol = true\n  proxy_protocol_from = {127.0.0.1, 10.0.0.0/8, \"2001:db8::/32\"}\n}\n",
        )
        .unwrap();
        for trusted in [
            "127.0.0.1",
            "10.255.0.3",
            "2001:db8:1::5",
            "::ffff:10.1.2.3",
        ] {
            assert!(p.trusts(ip(trusted)), "{trusted}");
        }
        for refused in [
            "127.0.0.2",
            "11.0.0.1",
            "2001:db9::1",
            "::1",
            "::ffff:127.0.0.2",
        ] {
            assert!(!p.trusts(ip(refused)), "{refused}");
        }
    }

    #[test]
    fn the_whole_space_and_single_hosts() {
        let any = Network::parse("0.0.0.0/0").unwrap();
        assert!(any.contains(ip("203.0.113.9")) && !any.contains(ip("::1")));
        let any6 = Network::parse("::/0").unwrap();
        assert!(any6.contains(ip("2001:db8::1")));
        let host6 = Network::parse("::1").unwrap();
        assert!(host6.contains(ip("::1")) && !host6.contains(ip("::2")));
        assert_eq!(
            Network::parse("192.0.2.0/24").unwrap().to_string(),
            "192.0.2.0/24"
        );
    }

    #[test]
    fn bad_lists_are_errors_with_a_location() {
        let err = |text: &str| read(text).unwrap_err().to_string();
        assert_eq!(
            err("m {\n  proxy_protocol = true\n}\n"),
            "c11n:2:20: error: `proxy_protocol = true` in section `m` needs `proxy_protocol_from = { ... }`, the balancers allowed to name clients (such as {127.0.0.1, 10.0.0.0/8})"
        );
        assert!(
            err("m {\n  proxy_protocol = true\n  proxy_protocol_from = {}\n}\n")
                .contains("needs `proxy_protocol_from")
        );
        assert_eq!(
            err("m {\n  proxy_protocol_from = {127.0.0.1}\n}\n"),
            "c11n:2:25: error: `proxy_protocol_from` in section `m` means nothing without `proxy_protocol = true`"
        );
        let e =
            err("m {\n  proxy_protocol = true\n  proxy_protocol_from = {balancer.example}\n}\n");
        assert!(
            e.starts_with("c11n:3:25: error: `proxy_protocol_from` in section `m`: `balancer.example` is not an IP address"),
            "{e}"
        );
        let e = err("m {\n  proxy_protocol = true\n  proxy_protocol_from = {10.0.0.0/33}\n}\n");
        assert!(
            e.ends_with("`10.0.0.0/33`: the prefix length must be 0 to 32"),
            "{e}"
        );
        let e = err("m {\n  proxy_protocol = true\n  proxy_protocol_from = {10.0.0.1/8}\n}\n");
        assert!(e.ends_with("did you mean `10.0.0.0/8`?"), "{e}");
    }
}
