//! Listening: the ports and addresses a module's section grants (`port` and `address`
//! options), the sockets the host binds for it at prestart (`bind`), and the prestart
//! interface through which a module asks for them (`host`). A module never holds a socket.

pub mod bind;
pub mod host;

use std::net::IpAddr;

pub use bind::BoundListener;

/// What a module may bind: the values of its section's `port` and `address` options.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ListenGrant {
    /// Ports it may bind.
    pub ports: Vec<u16>,
    /// Addresses it may bind; the wildcard only if one of them is the wildcard.
    pub addresses: Vec<IpAddr>,
}

impl ListenGrant {
    /// Whether `ip:port` is granted. `ip` must be one of the granted addresses exactly:
    /// a section that says `127.0.0.1` does not let the module listen on every address.
    pub fn allows(&self, ip: IpAddr, port: u16) -> Result<(), String> {
        if !self.ports.contains(&port) {
            return Err(format!("port {port} is not the value of a port option"));
        }
        if !self.addresses.contains(&ip) {
            return Err(format!(
                "address {ip} is not the value of an address option"
            ));
        }
        Ok(())
    }

    /// The address `*` stands for: the granted wildcard, IPv4's if both are granted.
    pub fn wildcard(&self) -> IpAddr {
        let v4 = IpAddr::from([0u8; 4]);
        let v6 = IpAddr::from([0u16; 8]);
        if !self.addresses.contains(&v4) && self.addresses.contains(&v6) {
            v6
        } else {
            v4
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_granted_address_and_port_may_be_bound() {
        let grant = ListenGrant {
            ports: vec![8080],
            addresses: vec!["127.0.0.1".parse().unwrap()],
        };
        assert!(grant.allows("127.0.0.1".parse().unwrap(), 8080).is_ok());
        assert!(grant.allows("127.0.0.1".parse().unwrap(), 8081).is_err());
        let wildcard = grant.wildcard();
        assert!(
            grant.allows(wildcard, 8080).is_err(),
            "127.0.0.1 does not grant every address"
        );
        let everywhere = ListenGrant {
            ports: vec![80],
            addresses: vec!["::".parse().unwrap()],
        };
        assert!(everywhere.allows(everywhere.wildcard(), 80).is_ok());
    }
}
