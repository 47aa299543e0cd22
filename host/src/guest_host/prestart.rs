//! `serverkit:module/prestart`: privileged requests, performed by the host on the module's
//! behalf while it is still root, and only for what the module's section grants
//! (certificates and keys are read here, as root, for TLS listeners).

use std::net::IpAddr;
use std::sync::Arc;

use crate::contract::bindings::prestart::{BindError, Host, ListenerId};
use crate::guest_host::state::{InstanceState, Phase};
use crate::listeners::{self, BoundListener};
use crate::tls::TlsSource;

impl Host for InstanceState {
    async fn bind_listener(
        &mut self,
        address: String,
        port: u16,
        backlog: u32,
    ) -> wasmtime::Result<Result<ListenerId, BindError>> {
        Ok(self.bind(&address, port, backlog, None))
    }

    async fn bind_tls_listener(
        &mut self,
        address: String,
        port: u16,
        backlog: u32,
        certificate_option: String,
        key_option: String,
    ) -> wasmtime::Result<Result<ListenerId, BindError>> {
        let config = match self.tls_config(&certificate_option, &key_option) {
            Ok(config) => config,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self.bind(&address, port, backlog, Some(config)))
    }

    async fn prepare_tls(
        &mut self,
        certificate_option: String,
        key_option: String,
    ) -> wasmtime::Result<Result<(), BindError>> {
        Ok(self
            .tls_config(&certificate_option, &key_option)
            .map(|config| {
                // A second call keeps the first configuration.
                let _ = self.module.tls.set(config);
            }))
    }
}

impl InstanceState {
    /// Reads and checks the certificate and key named by the two options (as root).
    fn tls_config(&mut self, cert: &str, key: &str) -> Result<Arc<TlsSource>, BindError> {
        let Phase::Prestart(results) = &mut self.phase else {
            return Err(BindError::NotInPrestart);
        };
        let file = |option: &str| {
            results
                .tls_files
                .iter()
                .find(|(name, _)| name == option)
                .map(|(_, path)| path.clone())
                .ok_or_else(|| {
                    BindError::TlsError(format!(
                        "`{option}` is not a certificate or private-key option with a value"
                    ))
                })
        };
        let (cert, key) = (file(cert)?, file(key)?);
        TlsSource::load(&cert, &key).map_err(|e| {
            let message = format!("{e:#}");
            results.failures.push(e);
            BindError::TlsError(message)
        })
    }

    fn bind(
        &mut self,
        address: &str,
        port: u16,
        backlog: u32,
        tls: Option<Arc<TlsSource>>,
    ) -> Result<ListenerId, BindError> {
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
        let with_tls = tls.is_some();
        tracing::info!(module = %self.module.name, address = %listener.local_addr, backlog, tls = with_tls, "listening");
        results.listeners.push(BoundListener {
            id,
            tls,
            ..listener
        });
        Ok(id)
    }
}
