//! The commands besides `run` and `scan`: enrol, send-test-alert, status.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use ward_collector_client::{Client, Enrolment, Identity, Timeouts};
use ward_protocol::{Alert, AlertSource, Category, DeviceKind};

use crate::config::machine::{CaPin, EnrolRequest};
use crate::config::Config;
use crate::spool::{DiskFs, Pushed, Spool};
use crate::status::Status;

/// `ward-agent enrol`: obtains the device certificate; succeeds only when the collector said yes.
/// `ca` is the collector CA's PEM file or its SHA-256 fingerprint (see [`CaPin::parse`]).
///
/// # Errors
/// The CA file is unreadable, the collector refused the token or could not be reached.
pub async fn enrol(config: &Config, collector: &str, token: &str, ca: &Path) -> anyhow::Result<()> {
    let request = EnrolRequest {
        collector: collector.to_string(),
        token: token.to_string(),
        ca: CaPin::parse(&ca.to_string_lossy()),
    };
    let identity = enrol_with(&config.state_dir, &request).await?;
    println!(
        "enrolled as device {} (certificate in {})",
        identity.device_id,
        config.state_dir.display()
    );
    Ok(())
}

/// Enrols into `state_dir` as `request` says, pinning its CA.
///
/// # Errors
/// The CA cannot be read or fetched, the collector refused the token or could not be reached (the
/// [`ward_collector_client::ClientError`] is in the chain).
pub async fn enrol_with(state_dir: &Path, request: &EnrolRequest) -> anyhow::Result<Identity> {
    let ca_pem = match &request.ca {
        CaPin::Pem(path) => std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the collector CA", path.display()))?,
        CaPin::Sha256(sha) => ca_by_fingerprint(&request.collector, sha).await?,
    };
    let identity = Enrolment {
        collector: request.collector.clone(),
        token: request.token.clone(),
        ca_pem,
        hostname: crate::host::hostname(),
        os: crate::host::os(),
        kind: DeviceKind::Agent,
        program_version: env!("CARGO_PKG_VERSION").into(),
    }
    .enrol(state_dir)
    .await
    .context("enrolment failed")?;
    crate::config::machine::remember_collector(state_dir, &request.collector);
    Ok(identity)
}

/// The collector's CA certificate (PEM), taken from the chain its TLS handshake presents and kept
/// only if its SHA-256 is `sha256`. Nothing is sent but the handshake's first message; the caller
/// then enrols over a connection fully verified against this CA (chain and host name), so a
/// certificate that merely carries the fingerprint but did not sign the server's fails there.
async fn ca_by_fingerprint(collector: &str, sha256: &[u8; 32]) -> anyhow::Result<String> {
    let (host, port) = host_port(collector)
        .with_context(|| format!("{collector}: not an https://host:port URL"))?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(ChainRecorder {
        seen: Arc::clone(&seen),
        provider: Arc::clone(&provider),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS settings")?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let name = ServerName::try_from(host.clone()).context("collector host name")?;
    let fetch = async {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
        // The recorder refuses every chain, so the handshake ends right after the server's
        // certificates arrive: the error is expected.
        let _ = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await;
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(30), fetch)
        .await
        .map_err(|_| anyhow::anyhow!("{collector}: no TLS answer within 30 s"))?
        .with_context(|| format!("cannot reach the collector at {collector}"))?;
    let chain = std::mem::take(&mut *seen.lock().unwrap_or_else(|p| p.into_inner()));
    let ca = chain
        .iter()
        .find(|der| Sha256::digest(der).as_slice() == sha256)
        .with_context(|| {
            format!(
                "{collector}: none of the {} certificates it presented has the SHA-256 fingerprint {}",
                chain.len(),
                hex::encode(sha256)
            )
        })?;
    Ok(pem_certificate(ca))
}

/// `host` and `port` of an `https://host[:port][/...]` URL; IPv6 literals in brackets.
fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']')?;
            match after.strip_prefix(':') {
                Some(port) => (host, port.parse().ok()?),
                None if after.is_empty() => (host, 443),
                None => return None,
            }
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, port.parse().ok()?),
            None => (authority, 443),
        },
    };
    (!host.is_empty()).then(|| (host.to_string(), port))
}

fn pem_certificate(der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// A certificate "verifier" that only records the chain a server presents, then refuses it.
#[derive(Debug)]
struct ChainRecorder {
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for ChainRecorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.push(end_entity.to_vec());
        seen.extend(intermediates.iter().map(|c| c.to_vec()));
        Err(rustls::Error::General("chain recorded".into()))
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

/// The spool of `config`'s state folder.
///
/// # Errors
/// The folder cannot be created.
pub fn open_spool(config: &Config) -> anyhow::Result<Spool<DiskFs>> {
    let dir = config.spool_dir();
    let fs =
        DiskFs::open(&dir).with_context(|| format!("{}: cannot open the spool", dir.display()))?;
    Ok(Spool::new(fs, config.spool))
}

/// `ward-agent send-test-alert`: spools `count` clearly marked test alerts and prints their ids.
///
/// # Errors
/// The spool cannot be written.
pub fn send_test_alert(config: &Config, count: u32) -> anyhow::Result<()> {
    let spool = open_spool(config)?;
    let device = Identity::load(&config.state_dir)
        .map(|i| i.device_id)
        .unwrap_or_else(|_| crate::host::hostname());
    let host = crate::host::hostname();
    for n in 1..=count {
        let alert = Alert {
            id: Uuid::now_v7(),
            device: device.clone(),
            user: crate::host::user(config.user.as_deref()),
            time: jiff::Timestamp::now(),
            source: AlertSource::Device,
            category: Category::Test,
            severity: 1,
            phrase: "ward-agent test alert".into(),
            context: format!("test alert {n} of {count} from {host}: no action needed"),
            language: None,
            application: Some("ward-agent".into()),
            window_title: None,
            wordlist_version: None,
            client_ip: None,
            screenshot: None,
            no_screenshot_reason: Some("test alert".into()),
        };
        match spool.push(&alert).context("cannot spool the test alert")? {
            Pushed::Stored { .. } => println!("{}", alert.id),
            Pushed::Dropped => {
                anyhow::bail!("the spool is full of more severe alerts; test alert not stored")
            }
        }
    }
    Ok(())
}

/// `ward-agent status`.
///
/// # Errors
/// Output cannot be written.
pub async fn status(config: &Config, as_json: bool) -> anyhow::Result<()> {
    let enrolled = Identity::exists(&config.state_dir);
    let identity = Identity::load(&config.state_dir).ok();
    let (reachable, reach_error) = match &identity {
        Some(identity) => {
            let pinged = match Client::new(&config.collector, identity) {
                Ok(client) => client
                    .with_timeouts(Timeouts {
                        connect: Duration::from_secs(5),
                        request: Duration::from_secs(10),
                    })
                    .ping()
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match pinged {
                Ok(()) => (Some(true), None),
                Err(e) => (Some(false), Some(e)),
            }
        }
        None => (None, None),
    };
    let spool = config
        .spool_dir()
        .is_dir()
        .then(|| open_spool(config).ok())
        .flatten();
    let depth = spool.as_ref().and_then(|s| s.depth().ok()).unwrap_or(0);
    let ledger = spool
        .as_ref()
        .and_then(|s| s.ledger().ok())
        .unwrap_or_default();
    let saved = Status::read(&config.state_dir).unwrap_or_default();
    let wordlist_version = saved.wordlist_version.clone().or_else(|| {
        crate::reload::load_wordlists(&config.wordlists, config.local_wordlists.as_deref())
            .ok()
            .map(|d| d.version().to_string())
    });
    let report = json!({
        "enrolled": enrolled,
        "device_id": identity.as_ref().map(|i| i.device_id.clone()),
        "collector": config.collector,
        "collector_reachable": reachable,
        "collector_error": reach_error,
        "spool_depth": depth,
        "spool_dropped_total": ledger.dropped_total,
        "last_heartbeat": saved.last_heartbeat.map(|t| t.to_string()),
        "last_delivery": saved.last_delivery.map(|t| t.to_string()),
        "wordlist_version": wordlist_version,
        "notice_shown": saved.notice_shown.as_ref().map(|(t, u)| format!("{t} to {u}")),
        "state_dir": config.state_dir.display().to_string(),
        "enrolment": (!enrolled).then(|| {
            crate::config::machine::status_hint(&config.state_dir, &crate::config::machine::read())
        }),
    });
    if as_json {
        println!("{report}");
        return Ok(());
    }
    let show = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for key in [
        "enrolled",
        "enrolment",
        "device_id",
        "collector",
        "collector_reachable",
        "collector_error",
        "spool_depth",
        "spool_dropped_total",
        "last_heartbeat",
        "last_delivery",
        "wordlist_version",
        "notice_shown",
        "state_dir",
    ] {
        println!("{key:<20} {}", show(&report[key]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_urls_give_host_and_port() {
        let hp = host_port;
        assert_eq!(
            hp("https://ward.school.example:8443"),
            Some(("ward.school.example".into(), 8443))
        );
        assert_eq!(
            hp("https://ward.school.example/"),
            Some(("ward.school.example".into(), 443))
        );
        assert_eq!(hp("https://127.0.0.1:9/x"), Some(("127.0.0.1".into(), 9)));
        assert_eq!(hp("https://[::1]:8443"), Some(("::1".into(), 8443)));
        assert_eq!(hp("https://[::1]"), Some(("::1".into(), 443)));
        assert_eq!(hp("http://c:1"), None);
        assert_eq!(hp("https://:8443"), None);
        assert_eq!(hp("https://c:port"), None);
    }

    #[test]
    fn pem_wraps_at_64_columns() {
        let pem = pem_certificate(&[7u8; 100]);
        let body: Vec<&str> = pem.lines().collect();
        assert_eq!(body[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(body[1].len(), 64);
        assert_eq!(body.last(), Some(&"-----END CERTIFICATE-----"));
        use rustls_pki_types::pem::PemObject;
        assert_eq!(CertificateDer::pem_slice_iter(pem.as_bytes()).count(), 1);
    }
}
