//! TLS settings: the collector's CA is the only trust root (never the system store), and the device
//! certificate from enrolment is offered as the client certificate. `ring` is the crypto provider, as
//! in the rest of the workspace, because it cross-builds to Windows and ARM without a C toolchain dance.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::ClientError;

/// The crypto provider every TLS config here uses.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses every certificate in a PEM text.
pub(crate) fn certs_from_pem(
    what: &str,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ClientError::Config(format!("{what}: not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(ClientError::Config(format!(
            "{what}: no certificate in the PEM text"
        )));
    }
    Ok(certs)
}

/// A client config that trusts only `ca_pem` and, when given, presents `client` (certificate chain
/// and private key, PEM).
pub(crate) fn client_config(
    ca_pem: &[u8],
    client: Option<(&[u8], &[u8])>,
) -> Result<Arc<ClientConfig>, ClientError> {
    let mut roots = RootCertStore::empty();
    for cert in certs_from_pem("collector CA", ca_pem)? {
        roots
            .add(cert)
            .map_err(|e| ClientError::Config(format!("collector CA: unusable certificate: {e}")))?;
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Config(format!("TLS setup: {e}")))?
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert_pem, key_pem)) => {
            let chain = certs_from_pem("device certificate", cert_pem)?;
            let key = PrivateKeyDer::from_pem_slice(key_pem)
                .map_err(|e| ClientError::Config(format!("device key: not a PEM key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| ClientError::Config(format!("device certificate and key: {e}")))?
        }
    };
    Ok(Arc::new(config))
}

/// The name the collector's certificate must carry: a DNS name or an IP address from the URL.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, ClientError> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|_| ClientError::Config(format!("`{host}` is not a valid host name")))
}
