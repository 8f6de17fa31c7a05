//! Certificates for blocked names on the HTTPS port, so a managed device that is sent to the block
//! page for `https://blocked.example/` sees the page, not a certificate error.
//!
//! The school deploys its own CA to its managed devices; given that CA's certificate and key, the
//! collector mints a short-lived certificate for each blocked name a browser asks for (by SNI) and
//! keeps it in a bounded cache. Names that are the collector's own, a handshake without SNI, or a
//! collector with no school CA configured get the collector's usual certificate.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;

/// Most minted certificates kept; the cache starts again when full.
const CACHE_LIMIT: usize = 4096;
/// How long a minted certificate is valid.
const VALID_DAYS: i64 = 7;

/// The school's CA, able to sign certificates for blocked names.
pub struct SchoolCa {
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
}

impl std::fmt::Debug for SchoolCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchoolCa").finish_non_exhaustive()
    }
}

impl SchoolCa {
    /// Loads a CA certificate and its private key (PEM files).
    ///
    /// # Errors
    /// A file cannot be read or is not a CA certificate / private key.
    pub fn load(cert: &Path, key: &Path) -> anyhow::Result<SchoolCa> {
        let cert_pem = std::fs::read_to_string(cert)
            .with_context(|| format!("{}: cannot read", cert.display()))?;
        let key_pem = std::fs::read_to_string(key)
            .with_context(|| format!("{}: cannot read", key.display()))?;
        Self::from_pem(&cert_pem, &key_pem)
    }

    /// The CA from PEM text.
    ///
    /// # Errors
    /// The text is not a certificate and a matching key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> anyhow::Result<SchoolCa> {
        let key =
            KeyPair::from_pem(key_pem).context("the school CA key is not a usable private key")?;
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .context("the school CA certificate is not PEM")?
            .into_owned();
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .context("the school CA certificate cannot sign")?;
        Ok(SchoolCa { issuer, cert_der })
    }

    /// A certificate and key for one host name.
    fn mint(&self, host: &str) -> anyhow::Result<Arc<CertifiedKey>> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, host);
        params.subject_alt_names = vec![SanType::DnsName(host.to_string().try_into()?)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let today = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        let from = today.yesterday().unwrap_or(today);
        let until = today
            .checked_add(jiff::Span::new().days(VALID_DAYS))
            .unwrap_or(today);
        let ymd = |d: jiff::civil::Date| {
            rcgen::date_time_ymd(i32::from(d.year()), d.month() as u8, d.day() as u8)
        };
        params.not_before = ymd(from);
        params.not_after = ymd(until);
        let cert = params.signed_by(&key, &self.issuer)?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing = rustls::crypto::ring::sign::any_supported_type(&der)?;
        Ok(Arc::new(CertifiedKey::new(
            vec![cert.der().clone(), self.cert_der.clone()],
            signing,
        )))
    }
}

/// Chooses the certificate for a handshake: minted for blocked names, the collector's own otherwise.
pub struct HostCerts {
    own: Arc<dyn ResolvesServerCert>,
    own_names: Vec<String>,
    ca: SchoolCa,
    cache: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for HostCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostCerts").finish_non_exhaustive()
    }
}

impl HostCerts {
    /// Wraps the server's own certificate resolver.
    pub fn new(
        own: Arc<dyn ResolvesServerCert>,
        own_names: Vec<String>,
        ca: SchoolCa,
    ) -> HostCerts {
        HostCerts {
            own,
            own_names,
            ca,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn for_host(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        let host = host.to_ascii_lowercase();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = cache.get(&host) {
            return Some(found.clone());
        }
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        match self.ca.mint(&host) {
            Ok(minted) => {
                cache.insert(host, minted.clone());
                Some(minted)
            }
            Err(e) => {
                tracing::warn!(host, error = %e, "cannot mint a block-page certificate");
                None
            }
        }
    }
}

impl ResolvesServerCert for HostCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match hello.server_name() {
            Some(name)
                if !self
                    .own_names
                    .iter()
                    .any(|own| own.eq_ignore_ascii_case(name)) =>
            {
                self.for_host(name).or_else(|| self.own.resolve(hello))
            }
            _ => self.own.resolve(hello),
        }
    }
}

/// The server's TLS with blocked names answered by minted certificates, when a school CA is set.
///
/// # Errors
/// The school CA cannot be loaded.
pub fn attach(
    tls: crate::tls::Tls,
    config: &crate::config::Config,
) -> anyhow::Result<crate::tls::Tls> {
    let Some((cert, key)) = &config.ui.block_page_ca else {
        return Ok(tls);
    };
    let ca = SchoolCa::load(cert, key)?;
    let mut server = (*tls.config).clone();
    server.cert_resolver = Arc::new(HostCerts::new(
        server.cert_resolver.clone(),
        config.ui.settings.own_hostnames.clone(),
        ca,
    ));
    tracing::info!(ca = %cert.display(), "blocked names get certificates from the school CA");
    let mut tls = tls;
    tls.config = Arc::new(server);
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn school_ca() -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "Example Academy CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    /// A real handshake: a client that trusts only the school CA reaches `blocked.example`.
    #[tokio::test]
    async fn a_blocked_name_gets_a_certificate_from_the_school_ca() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (ca_pem, ca_key) = school_ca();
        let ca = SchoolCa::from_pem(&ca_pem, &ca_key).unwrap();
        let own = ca.mint("collector.school.example").unwrap();
        let own_resolver: Arc<dyn ResolvesServerCert> =
            Arc::new(rustls::server::AlwaysResolvesServerRawPublicKeys::new(own));
        let resolver = HostCerts::new(own_resolver, vec!["collector.school.example".into()], ca);
        let server = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let _ = tls.write_all(b"blocked").await;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
            .unwrap();
        let client = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        for host in ["blocked.example", "www.blocked.example", "blocked.example"] {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let name = ServerName::try_from(host.to_string()).unwrap();
            let mut tls = connector
                .connect(name, tcp)
                .await
                .expect("the browser trusts the minted certificate");
            let mut body = String::new();
            tls.read_to_string(&mut body).await.unwrap();
            assert_eq!(body, "blocked");
        }
    }
}
