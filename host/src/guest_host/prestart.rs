//! `serverkit:module/prestart`: privileged requests, performed by the host on the module's
//! behalf while it is still root, and only for what the module's section grants.

use std::net::IpAddr;

use crate::contract::bindings::prestart::{BindError, Host, ListenerId};
use crate::guest_host::state::{InstanceState, Phase};
use crate::listeners::{self, BoundListener};

impl Host for InstanceState {
    async fn bind_listener(
        &mut self,
        address: String,
        port: u16,
        backlog: u32,
    ) -> wasmtime::Result<Result<ListenerId, BindError>> {
        Ok(self.bind(&address, port, backlog))
    }
}

impl InstanceState {
    fn bind(&mut self, address: &str, port: u16, backlog: u32) -> Result<ListenerId, BindError> {
        let Phase::Prestart(results) = &mut self.phase else {
            return Err(BindError::NotInPrestart);
        };
        let ip: IpAddr = match address {
            "*" => IpAddr::from([0u8; 4]),
            other => other
                .parse()
                .map_err(|_| BindError::InvalidAddress(other.to_string()))?,
        };
        let grants = &self.module.grants;
        if !grants.ports.contains(&port) {
            return Err(BindError::NotGranted(format!(
                "port {port} is not the value of a port option of section `{}`",
                self.module.name
            )));
        }
        if !ip.is_unspecified() && !grants.addresses.contains(&ip) {
            return Err(BindError::NotGranted(format!(
                "address {address} is not the value of an address option of section `{}`",
                self.module.name
            )));
        }
        let id = results.listeners.len() as ListenerId;
        let listener = match listeners::bind(ip, port, backlog) {
            Ok(listener) => listener,
            Err(e) => {
                let message = format!("{e:#}");
                results.failures.push(e);
                return Err(BindError::OsError(message));
            }
        };
        tracing::info!(module = %self.module.name, address = %listener.local_addr, backlog, "listening");
        results.listeners.push(BoundListener { id, ..listener });
        Ok(id)
    }
}
