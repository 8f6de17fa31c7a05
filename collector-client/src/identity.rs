//! Enrolment and the files it leaves behind.
//!
//! The private key is generated here and never leaves the device: the collector only sees a
//! certificate signing request. The state dir then holds four small files, written atomically (temp
//! file, fsync, rename) so a crash mid-enrolment never leaves a key without its certificate:
//! `device-key.pem` (mode 0600), `device-cert.pem`, `ca.pem` (the collector CA to pin) and `device-id`.

use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use ward_protocol::{DeviceKind, EnrolRequest, EnrolResponse, PROTOCOL_VERSION};

use crate::{Client, ClientError};

const KEY_FILE: &str = "device-key.pem";
const CERT_FILE: &str = "device-cert.pem";
const CA_FILE: &str = "ca.pem";
const ID_FILE: &str = "device-id";

/// What a device holds after enrolment: its id, key, certificate and the collector CA it pins.
#[derive(Clone)]
pub struct Identity {
    /// The id the collector assigned; every alert's `device` field must carry it.
    pub device_id: String,
    /// The device's private key, PEM (PKCS#8).
    pub key_pem: String,
    /// The device certificate the collector signed, PEM.
    pub cert_pem: String,
    /// The collector's CA certificate, PEM.
    pub ca_pem: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: never in logs.
        f.debug_struct("Identity")
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Whether `state_dir` holds a complete enrolment.
    pub fn exists(state_dir: &Path) -> bool {
        [KEY_FILE, CERT_FILE, CA_FILE, ID_FILE]
            .iter()
            .all(|f| state_dir.join(f).is_file())
    }

    /// Reads the enrolment files from `state_dir`.
    ///
    /// # Errors
    /// [`ClientError::File`] naming the missing or unreadable file.
    pub fn load(state_dir: &Path) -> Result<Identity, ClientError> {
        let read = |name: &str| {
            let path = state_dir.join(name);
            std::fs::read_to_string(&path).map_err(|e| ClientError::file(&path, e))
        };
        Ok(Identity {
            device_id: read(ID_FILE)?.trim().to_string(),
            key_pem: read(KEY_FILE)?,
            cert_pem: read(CERT_FILE)?,
            ca_pem: read(CA_FILE)?,
        })
    }

    /// Writes the enrolment files into `state_dir` (created if missing), the key with mode 0600.
    ///
    /// # Errors
    /// [`ClientError::File`] naming the file that could not be written.
    pub fn save(&self, state_dir: &Path) -> Result<(), ClientError> {
        std::fs::create_dir_all(state_dir).map_err(|e| ClientError::file(state_dir, e))?;
        write_atomic(&state_dir.join(KEY_FILE), self.key_pem.as_bytes(), true)?;
        write_atomic(&state_dir.join(CERT_FILE), self.cert_pem.as_bytes(), false)?;
        write_atomic(&state_dir.join(CA_FILE), self.ca_pem.as_bytes(), false)?;
        // The id last: its presence marks a complete enrolment (see `exists`).
        write_atomic(&state_dir.join(ID_FILE), self.device_id.as_bytes(), false)?;
        Ok(())
    }

    /// Where the files live in `state_dir`, for status output.
    pub fn paths(state_dir: &Path) -> [PathBuf; 4] {
        [KEY_FILE, CERT_FILE, CA_FILE, ID_FILE].map(|f| state_dir.join(f))
    }
}

/// One enrolment: what the device says about itself, and the token an administrator created with
/// `ward-collector token create`.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// `https://host:port` of the collector.
    pub collector: String,
    /// The enrolment token.
    pub token: String,
    /// The collector CA to trust for this first contact (the `--ca PEM` the technician copied from
    /// `<data-dir>/ca.pem`).
    pub ca_pem: String,
    /// This device's host name.
    pub hostname: String,
    /// Its operating system, e.g. `linux` or `windows 11`.
    pub os: String,
    /// Agent or resolver.
    pub kind: DeviceKind,
    /// The enrolling program's version.
    pub program_version: String,
}

impl Enrolment {
    /// Generates a key pair, asks the collector to sign its certificate with the token, saves the
    /// result in `state_dir` and returns it. Nothing is written unless the collector said yes.
    ///
    /// # Errors
    /// [`ClientError::Refused`] for a bad or used-up token, [`ClientError::Transport`] when the
    /// collector cannot be reached or its certificate is not from `ca_pem`, [`ClientError::File`] when
    /// the state dir cannot be written.
    pub async fn enrol(&self, state_dir: &Path) -> Result<Identity, ClientError> {
        let key = KeyPair::generate()
            .map_err(|e| ClientError::Config(format!("cannot generate a key: {e}")))?;
        let csr_pem = certificate_request(&key, &self.hostname)?;
        let request = EnrolRequest {
            version: PROTOCOL_VERSION,
            token: self.token.clone(),
            csr_pem,
            hostname: self.hostname.clone(),
            os: self.os.clone(),
            kind: self.kind,
            program_version: self.program_version.clone(),
        };
        let client = Client::anonymous(&self.collector, self.ca_pem.as_bytes())?;
        let answer: EnrolResponse = client.post_json("/api/v1/enrol", &request).await?;
        // The certificate must work with the key we hold and chain to the CA we will pin.
        crate::tls::client_config(
            answer.ca_pem.as_bytes(),
            Some((
                answer.certificate_pem.as_bytes(),
                key.serialize_pem().as_bytes(),
            )),
        )
        .map_err(|e| ClientError::Protocol(format!("enrolment answer: {e}")))?;
        let identity = Identity {
            device_id: answer.device_id,
            key_pem: key.serialize_pem(),
            cert_pem: answer.certificate_pem,
            ca_pem: answer.ca_pem,
        };
        identity.save(state_dir)?;
        Ok(identity)
    }
}

/// A PEM certificate signing request for `key`, naming the host (the collector sets the real subject).
fn certificate_request(key: &KeyPair, hostname: &str) -> Result<String, ClientError> {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, hostname);
    params.distinguished_name = name;
    params
        .serialize_request(key)
        .and_then(|csr| csr.pem())
        .map_err(|e| ClientError::Config(format!("cannot build a certificate request: {e}")))
}

/// Writes `bytes` to `path` via a temporary file, fsync and rename.
fn write_atomic(path: &Path, bytes: &[u8], secret: bool) -> Result<(), ClientError> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(&tmp).map_err(|e| ClientError::file(&tmp, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| ClientError::file(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ClientError::file(path, e))?;
    if let Some(dir) = path.parent() {
        // Make the rename itself durable; not every platform can open a directory, so best effort.
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_files_round_trip_with_a_private_key() {
        let dir = std::env::temp_dir().join(format!("ward-identity-{}", std::process::id()));
        let identity = Identity {
            device_id: "ws-101-a1b2c3".into(),
            key_pem: "KEY".into(),
            cert_pem: "CERT".into(),
            ca_pem: "CA".into(),
        };
        assert!(!Identity::exists(&dir));
        identity.save(&dir).unwrap();
        assert!(Identity::exists(&dir));
        let back = Identity::load(&dir).unwrap();
        assert_eq!(back.device_id, "ws-101-a1b2c3");
        assert_eq!(back.key_pem, "KEY");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{identity:?}").contains("KEY"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn certificate_requests_are_pem() {
        let key = KeyPair::generate().unwrap();
        let csr = certificate_request(&key, "ws-101").unwrap();
        assert!(csr.contains("BEGIN CERTIFICATE REQUEST"));
    }
}
