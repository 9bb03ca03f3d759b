//! TLS 1.3 on the host API and the dashboard (docs/SECURITY.md): rustls with the ring provider,
//! the gateway's certificate chain and key from PEM files, and client certificates required and
//! checked against `client_ca` when it is set (mutual TLS).
//!
//! ```toml
//! [tls]
//! cert = "/etc/wasmbed/gateway.crt"       # PEM chain, leaf first
//! key = "/etc/wasmbed/gateway.key"        # PEM private key, mode 0600
//! client_ca = "/etc/wasmbed/clients.crt"  # optional: require client certificates it signed
//! plaintext_loopback = false              # optional: also serve plaintext to 127.0.0.1 / ::1
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use serde::Deserialize;

/// The first byte of a TLS handshake record: how a TLS host is told from a JSON-lines one.
pub const HANDSHAKE_RECORD: u8 = 0x16;

/// The `[tls]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain of the gateway (leaf first).
    pub cert: PathBuf,
    /// PEM private key of the gateway (must not be readable by group or others).
    pub key: PathBuf,
    /// PEM CA certificate(s): when set, hosts must present a client certificate signed by one
    /// of them (mutual TLS).
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// Also serve plaintext JSON lines to hosts on the loopback interface (legacy `host.py`,
    /// local scripts). Off by default: with mutual TLS it would let every local user past it.
    #[serde(default)]
    pub plaintext_loopback: bool,
}

impl TlsConfig {
    /// True when client certificates are required.
    pub fn mutual(&self) -> bool {
        self.client_ca.is_some()
    }
}

/// A loaded TLS setup, shared by the listeners.
#[derive(Clone)]
pub struct Tls {
    /// The acceptor (rustls server config).
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// Serve plaintext to loopback peers too.
    pub plaintext_loopback: bool,
    /// Client certificates required.
    pub mutual: bool,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("plaintext_loopback", &self.plaintext_loopback)
            .field("mutual", &self.mutual)
            .finish()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "tls.{key}: cannot read certificates from {}: {e}",
                path.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "tls.{key}: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

impl Tls {
    /// Loads certificates and key; errors name the file and the config key.
    pub fn load(cfg: &TlsConfig) -> Result<Tls, String> {
        let chain = certs(&cfg.cert, "cert")?;
        crate::run::check_private(&cfg.key, "TLS key file").map_err(|e| format!("tls.key: {e}"))?;
        let key = PrivateKeyDer::from_pem_file(&cfg.key).map_err(|e| {
            format!(
                "tls.key: cannot read a PEM private key from {}: {e}",
                cfg.key.display()
            )
        })?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| format!("TLS 1.3 unavailable: {e}"))?;
        let builder = match &cfg.client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for c in certs(ca, "client_ca")? {
                    roots.add(c).map_err(|e| {
                        format!("tls.client_ca: {} is not a usable CA: {e}", ca.display())
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(|e| format!("tls.client_ca: {}: {e}", ca.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder.with_single_cert(chain, key).map_err(|e| {
            format!(
                "tls.cert / tls.key: {} and {} do not make a usable pair: {e}",
                cfg.cert.display(),
                cfg.key.display()
            )
        })?;
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            plaintext_loopback: cfg.plaintext_loopback,
            mutual: cfg.mutual(),
        })
    }

    /// True when a plaintext connection from `peer` is served.
    pub fn plaintext_allowed(&self, peer: SocketAddr) -> bool {
        self.plaintext_loopback && peer.ip().is_loopback()
    }
}

/// The dashboard's listener over TLS: connections are accepted and their handshakes run in a
/// task of their own (a host that stalls its handshake holds up nobody), at most
/// `max_handshakes` at once, each within `handshake_timeout`.
pub struct HttpListener {
    rx: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        SocketAddr,
    )>,
    local: SocketAddr,
    accept_task: tokio::task::JoinHandle<()>,
}

impl HttpListener {
    /// Starts accepting on `listener`.
    pub fn new(
        listener: tokio::net::TcpListener,
        tls: Tls,
        handshake_timeout: std::time::Duration,
        max_handshakes: usize,
    ) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let slots = Arc::new(tokio::sync::Semaphore::new(max_handshakes.max(1)));
        let accept = tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!("HTTP accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "refusing HTTP connection: {max_handshakes} TLS handshakes in progress");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (tx, acceptor) = (tx.clone(), tls.acceptor.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => {
                            drop(permit);
                            let _ = tx.send((s, peer)).await;
                        }
                        Ok(Err(e)) => tracing::info!(%peer, "HTTP TLS handshake failed: {e}"),
                        Err(_) => tracing::info!(%peer, "HTTP TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self {
            rx,
            local,
            accept_task: accept,
        })
    }
}

impl Drop for HttpListener {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl axum::serve::Listener for HttpListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(x) => x,
            // The accept task ended (it does not): wait forever like an idle listener.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
