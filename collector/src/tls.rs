//! The server's TLS: a certificate from the collector's own CA, and a client-certificate request that
//! is optional at the handshake.
//!
//! One port serves the API and the review UI (browsers have no client certificate), so the handshake
//! asks for a certificate but lets a client without one in. Proof of key possession is still checked by
//! rustls during the handshake; whether the certificate chains to our CA is checked once per connection
//! here ([`PeerCert::chain`]), and whether the device may talk is checked per request against the
//! devices table by the API's authentication (`crate::api::auth`). A certificate from another CA thus
//! gets a clear HTTP refusal instead of an opaque handshake failure.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;

use crate::ca::{fingerprint, Authority};

/// Who is on the other end of a connection; put into every request's extensions.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Remote address.
    pub addr: SocketAddr,
    /// The client certificate, when one was presented.
    pub cert: Option<Arc<PeerCert>>,
}

/// A presented client certificate.
#[derive(Debug)]
pub struct PeerCert {
    /// Hex SHA-256 of its DER (the devices table's key).
    pub sha256: String,
    /// Whether it chains to this collector's CA, and if not, why.
    pub chain: Result<(), String>,
}

/// The TLS side of the server: the rustls config and the chain check for client certificates.
#[derive(Clone)]
pub struct Tls {
    /// The server config to accept with.
    pub config: Arc<ServerConfig>,
    chain: Arc<dyn ClientCertVerifier>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Tls {
    /// A server certificate for `names`, signed by `ca`, with an optional client-certificate request.
    ///
    /// # Errors
    /// A name is not a valid host name, or rustls refuses the settings.
    pub fn new(ca: &Authority, names: &[String]) -> anyhow::Result<Tls> {
        let (cert_pem, key_pem) = ca.server_certificate(names)?;
        let chain = vec![
            CertificateDer::from_pem_slice(cert_pem.as_bytes())?,
            ca.cert_der().clone(),
        ];
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
        let mut roots = RootCertStore::empty();
        roots.add(ca.cert_der().clone())?;
        let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| anyhow::anyhow!("client certificate verifier: {e}"))?;
        let verifier = Arc::new(OptionalClientCert {
            inner: webpki.clone(),
            provider: provider(),
        });
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            config: Arc::new(config),
            chain: webpki,
        })
    }

    /// Inspects the certificate chain a client presented.
    pub fn peer_cert(&self, chain: Option<&[CertificateDer<'static>]>) -> Option<PeerCert> {
        let (end_entity, intermediates) = chain?.split_first()?;
        let verdict = self
            .chain
            .verify_client_cert(end_entity, intermediates, UnixTime::now())
            .map(|_| ())
            .map_err(|e| e.to_string());
        Some(PeerCert {
            sha256: fingerprint(end_entity),
            chain: verdict,
        })
    }
}

/// Asks for a client certificate, does not require one, and defers the chain check to the request
/// (see the module docs). Handshake signatures are verified as usual.
#[derive(Debug)]
struct OptionalClientCert {
    inner: Arc<dyn ClientCertVerifier>,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for OptionalClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
