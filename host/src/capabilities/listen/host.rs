//! `serverkit:module/prestart`: privileged requests, performed by the host on the module's
//! behalf while it is still root, and only for what the module's section grants: listeners
//! on its ports and addresses, and TLS with the certificate and key its options name
//! (read here, as root; the key never reaches the module).

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use wasmtime::component::HasData;

use super::ListenGrant;
use super::bind::{self, BoundListener};
use crate::capabilities::tls::{TlsGrant, TlsSource};
use crate::contract::bindings::prestart::{BindError, Host, ListenerId};

/// What a module's requests produced at prestart: its listeners, and the errors of refused
/// requests (kept so a failed prestart reports the operating system's error, not only the
/// guest's words).
#[derive(Default)]
pub struct PrestartResults {
    /// Listeners bound, in request order (their ids).
    pub listeners: Vec<BoundListener>,
    /// Errors of refused requests.
    pub failures: Vec<anyhow::Error>,
    /// The ALPN protocols TLS configurations loaded from now on offer (`offer-alpn`).
    pub alpn: Vec<Vec<u8>>,
}

/// What the prestart interface reaches of an instance.
pub struct PrestartView<'a> {
    /// The module's name, for messages.
    pub module: &'a str,
    /// What its section lets it bind.
    pub listen: &'a ListenGrant,
    /// Its certificate and key options.
    pub tls: &'a TlsGrant,
    /// Where `prepare-tls` keeps the configuration for `connection.start-tls`.
    pub prepared: &'a OnceLock<Arc<TlsSource>>,
    /// What its requests produced; `None` outside `prestart`, where every request is
    /// refused.
    pub results: Option<&'a mut PrestartResults>,
}

/// The prestart interface, for `add_to_linker`.
pub struct Prestart;

impl HasData for Prestart {
    type Data<'a> = PrestartView<'a>;
}

impl Host for PrestartView<'_> {
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
                let _ = self.prepared.set(config);
            }))
    }

    async fn offer_alpn(
        &mut self,
        protocols: Vec<String>,
    ) -> wasmtime::Result<Result<(), BindError>> {
        let Some(results) = self.results.as_deref_mut() else {
            return Ok(Err(BindError::NotInPrestart));
        };
        Ok(match crate::capabilities::tls::alpn(&protocols) {
            Ok(alpn) => {
                results.alpn = alpn;
                Ok(())
            }
            Err(why) => Err(BindError::TlsError(why)),
        })
    }
}

impl PrestartView<'_> {
    /// Reads and checks the certificate and key named by the two options (as root).
    fn tls_config(&mut self, cert: &str, key: &str) -> Result<Arc<TlsSource>, BindError> {
        let Some(results) = self.results.as_deref_mut() else {
            return Err(BindError::NotInPrestart);
        };
        let (cert, key) = self.tls.pair(cert, key).map_err(BindError::TlsError)?;
        TlsSource::load(&cert, &key, &results.alpn).map_err(|e| {
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
        let Some(results) = self.results.as_deref_mut() else {
            return Err(BindError::NotInPrestart);
        };
        let ip: IpAddr = match address {
            "*" => self.listen.wildcard(),
            other => other
                .parse()
                .map_err(|_| BindError::InvalidAddress(other.to_string()))?,
        };
        self.listen
            .allows(ip, port)
            .map_err(|why| BindError::NotGranted(format!("{why} of section `{}`", self.module)))?;
        let id = results.listeners.len() as ListenerId;
        let listener = match bind::bind(ip, port, backlog) {
            Ok(listener) => listener,
            Err(e) => {
                let message = format!("{e:#}");
                results.failures.push(e);
                return Err(BindError::OsError(message));
            }
        };
        let with_tls = tls.is_some();
        tracing::info!(module = %self.module, address = %listener.local_addr, backlog, tls = with_tls, "listening");
        results.listeners.push(BoundListener {
            id,
            tls,
            ..listener
        });
        Ok(id)
    }
}
