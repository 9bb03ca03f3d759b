//! TLS 1.3 to a gateway whose host API runs `[tls]` (docs/SECURITY.md): `--gateway
//! tls://HOST:PORT` with `--ca FILE` (the CA that signed the gateway's certificate) and, for
//! mutual TLS, `--cert FILE` and `--key FILE`. rustls with the ring provider.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{AlertDescription, CertificateError, ClientConfig, RootCertStore};

use crate::error::HostError;

/// The address prefix that selects TLS.
pub const SCHEME: &str = "tls://";

/// Splits `tls://ADDR` into `(true, ADDR)`; other addresses are `(false, addr)`.
pub fn split_scheme(addr: &str) -> (bool, &str) {
    match addr.trim().strip_prefix(SCHEME) {
        Some(rest) => (true, rest),
        None => (false, addr),
    }
}

fn read_error(path: &Path, e: impl std::fmt::Display) -> HostError {
    HostError::ReadFile {
        path: path.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// The client side: trusts the CA(s) in `ca`; presents `cert` + `key` when given.
pub fn client_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, HostError> {
    let mut roots = RootCertStore::empty();
    let cas = CertificateDer::pem_file_iter(ca)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| read_error(ca, e))?;
    if cas.is_empty() {
        return Err(read_error(ca, "no PEM certificate in it (--ca)"));
    }
    for c in cas {
        roots
            .add(c)
            .map_err(|e| read_error(ca, format!("not a usable CA certificate: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| HostError::Internal(format!("TLS 1.3 unavailable: {e}")))?
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| read_error(cert, e))?;
            if chain.is_empty() {
                return Err(read_error(cert, "no PEM certificate in it (--cert)"));
            }
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| read_error(key, e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| HostError::Usage(format!("--cert / --key: {e}")))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The name the gateway's certificate must carry: the host part of `host:port`.
pub fn server_name(addr: &str) -> Result<ServerName<'static>, HostError> {
    let host = match addr.rsplit_once(':') {
        Some((h, _)) => h,
        None => addr,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|e| HostError::Usage(format!("`{host}` is not a TLS server name: {e}")))
}

/// The rustls error inside an IO error, if there is one.
pub fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// Explains a failed TLS connection: what happened and what to do.
pub fn explain(addr: &str, e: &rustls::Error) -> HostError {
    let (reason, help) = match e {
        rustls::Error::InvalidCertificate(CertificateError::NotValidForName)
        | rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => (
            format!("the gateway's certificate is not valid for this address ({e})"),
            "connect with a name or address the gateway's certificate (tls.cert) lists",
        ),
        rustls::Error::InvalidCertificate(_) => (
            format!("the gateway's certificate is not trusted ({e})"),
            "pass with --ca FILE the CA that signed the gateway's certificate (tls.cert)",
        ),
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => (
            "the gateway requires a client certificate".to_string(),
            "pass --cert FILE and --key FILE, a certificate signed by the gateway's tls.client_ca",
        ),
        rustls::Error::AlertReceived(
            a @ (AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::AccessDenied
            | AlertDescription::DecryptError),
        ) => (
            format!("the gateway refused this client certificate ({a:?})"),
            "use a --cert signed by the CA in the gateway's tls.client_ca, within its validity",
        ),
        rustls::Error::InvalidMessage(_) => (
            format!("the gateway did not answer in TLS ({e})"),
            "this gateway port speaks plaintext: connect without tls://",
        ),
        _ => (
            format!("TLS failed: {e}"),
            "check the gateway's log and its [tls] settings",
        ),
    };
    HostError::Tls {
        addr: format!("{SCHEME}{addr}"),
        reason,
        help: help.to_string(),
    }
}
