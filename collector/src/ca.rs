//! The collector's own certificate authority.
//!
//! On SQLite it is created on first start in the data dir (`ca.pem`, and `ca-key.pem` readable by the
//! collector only). On PostgreSQL it lives in the database (`collector_ca`, see
//! `crate::store::postgres::shared`), so every collector of a trust signs with the same CA and accepts
//! the devices the others enrolled: the first collector to start creates it (or imports the data dir's
//! files, when a school moves from one collector to several), the others load it; only the certificate
//! is copied to the data dir, as `ca.pem`, for devices to pin.
//!
//! It signs the server certificate (fresh on every start, for this collector's listen address and
//! configured names) and every device certificate at enrolment. A device certificate proves only
//! "this CA signed it": whether the device may still talk is decided per request against the devices
//! table (its certificate fingerprint and revocation), so a revocation works at once.

use std::net::IpAddr;
use std::path::Path;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};

use crate::seal::{self, Secret};
use crate::store::postgres::shared::SharedCa;

/// File names in the data dir.
pub const CA_CERT_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca-key.pem";

/// A loaded CA: its certificate and the key that signs with it.
pub struct Authority {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

/// A device certificate just issued.
#[derive(Debug, Clone)]
pub struct Issued {
    /// PEM text handed to the device.
    pub pem: String,
    /// Hex SHA-256 of the DER, the key of the devices table.
    pub sha256: String,
    /// Hex serial number.
    pub serial: String,
}

/// Hex SHA-256 of a DER certificate.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

impl Authority {
    /// Loads the CA from `data_dir`, creating it on first start.
    ///
    /// # Errors
    /// The files cannot be read, written or parsed.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Authority> {
        let cert_path = data_dir.join(CA_CERT_FILE);
        let key_path = data_dir.join(CA_KEY_FILE);
        if !cert_path.exists() && !key_path.exists() {
            let (cert_pem, key_pem) = generate()?;
            // Key first: a crash in between leaves only a key, and no certificate it could pair with.
            crate::files::write_atomic(&key_path, key_pem.as_bytes(), true)?;
            crate::files::write_atomic(&cert_path, cert_pem.as_bytes(), false)?;
            tracing::info!(ca = %cert_path.display(), "created the collector CA");
        }
        let (cert_pem, key_pem) = (read(&cert_path)?, read(&key_path)?);
        tighten_key_mode(&key_path);
        Authority::from_pem(&cert_pem, &key_pem, &cert_path.display().to_string())
    }

    /// Loads the CA every collector on this PostgreSQL database shares, creating it (or importing
    /// `ca.pem`/`ca-key.pem` from `data_dir`) when the database has none yet. Refuses a data dir whose
    /// CA is not the database's: devices enrolled against one would be refused by the other. Leaves a
    /// copy of the certificate (never the key) in `data_dir` as `ca.pem` for devices to pin.
    ///
    /// # Errors
    /// The database cannot be reached, the files cannot be read or written, or the two CAs differ.
    pub fn load_or_create_shared(
        data_dir: &Path,
        url: &str,
        secret_file: Option<&Path>,
    ) -> anyhow::Result<Authority> {
        let secret = secret_file.map(Secret::load).transpose()?;
        let cert_path = data_dir.join(CA_CERT_FILE);
        let key_path = data_dir.join(CA_KEY_FILE);
        let local_cert = cert_path.exists().then(|| read(&cert_path)).transpose()?;
        let local_key = key_path.exists().then(|| read(&key_path)).transpose()?;
        if local_key.is_some() {
            tighten_key_mode(&key_path);
        }
        let offer = offer(
            &cert_path,
            local_cert.as_deref(),
            local_key.as_deref(),
            secret.as_ref(),
        )?;
        let shared = crate::store::postgres::shared::ca(url, offer)
            .context("cannot load the collector CA from the database (database.url)")?;
        let Some(shared) = shared else {
            let (there, missing) = if local_cert.is_some() {
                (&cert_path, &key_path)
            } else {
                (&key_path, &cert_path)
            };
            anyhow::bail!(
                "{} is there without {}, so there is no CA to import into the database, which has \
                 none yet: restore {}, or move {} aside to create a new CA",
                there.display(),
                missing.display(),
                missing.display(),
                there.display()
            );
        };
        let key_pem = unseal(url, &shared, secret.as_ref())?;
        let authority = Authority::from_pem(&shared.cert_pem, &key_pem, "the database's CA")?;
        if shared.created_now {
            tracing::info!(origin = %shared.origin, "stored the collector CA in the database");
        }
        match local_cert {
            Some(cert) => same_ca(&cert_path, &cert, &authority, &shared.origin)?,
            None => crate::files::write_atomic(&cert_path, authority.cert_pem.as_bytes(), false)?,
        }
        Ok(authority)
    }

    /// A CA from its certificate and key, PEM; `what` names them in errors.
    fn from_pem(cert_pem: &str, key_pem: &str, what: &str) -> anyhow::Result<Authority> {
        let key = KeyPair::from_pem(key_pem)
            .with_context(|| format!("{what}: the key is not a PEM private key"))?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)
            .with_context(|| format!("{what}: not a usable CA certificate"))?;
        let cert_der = Authority::from_pem_cert(cert_pem, what)?;
        Ok(Authority {
            cert_pem: cert_pem.to_string(),
            cert_der,
            issuer,
        })
    }

    fn from_pem_cert(cert_pem: &str, what: &str) -> anyhow::Result<CertificateDer<'static>> {
        rustls_pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
            .with_context(|| format!("{what}: not a PEM certificate"))
    }

    /// The CA certificate, PEM (what devices pin).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// A fresh server certificate and key (PEM) for these names and addresses.
    ///
    /// # Errors
    /// A name is not a valid DNS name.
    pub fn server_certificate(&self, names: &[String]) -> anyhow::Result<(String, String)> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name("Ward collector");
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => {
                    Ok(SanType::DnsName(n.clone().try_into().with_context(
                        || format!("`{n}` is not a valid host name"),
                    )?))
                }
            })
            .collect::<anyhow::Result<_>>()?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.serial_number = Some(serial());
        set_validity(&mut params, 2);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Signs a device's certificate request. Only the public key is taken from the request: the
    /// subject (the device id), usage and lifetime are the collector's.
    ///
    /// # Errors
    /// The request does not parse or its signature is wrong.
    pub fn sign_device(&self, csr_pem: &str, device_id: &str) -> Result<Issued, String> {
        let request = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| format!("certificate request: {e}"))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(device_id);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let serial = serial();
        let serial_hex = hex::encode(serial.to_bytes());
        params.serial_number = Some(serial);
        set_validity(&mut params, 10);
        let cert = params
            .signed_by(&request.public_key, &self.issuer)
            .map_err(|e| format!("cannot sign: {e}"))?;
        Ok(Issued {
            pem: cert.pem(),
            sha256: fingerprint(cert.der()),
            serial: serial_hex,
        })
    }
}

/// What this collector would put in an empty `collector_ca` table: the data dir's pair (imported) or
/// a new CA, its key sealed when a secret is configured; `None` when the data dir holds half a pair.
type Offer = Option<(String, String, String)>;

fn offer(
    cert_path: &Path,
    local_cert: Option<&str>,
    local_key: Option<&str>,
    secret: Option<&Secret>,
) -> anyhow::Result<Offer> {
    let (cert, key, origin) = match (local_cert, local_key) {
        (Some(cert), Some(key)) => {
            Authority::from_pem(cert, key, &cert_path.display().to_string())?;
            let origin = format!("imported from {}", cert_path.display());
            (cert.to_string(), key.to_string(), origin)
        }
        (None, None) => {
            let (cert, key) = generate()?;
            (cert, key, "created".to_string())
        }
        _ => return Ok(None),
    };
    let key = match secret {
        Some(secret) => secret.seal(&key, &cert)?,
        None => key,
    };
    Ok(Some((cert, key, origin)))
}

/// The database's CA key in PEM: opened with the trust's secret when it is sealed, and sealed in
/// place when a secret is configured but the key is still plain.
fn unseal(url: &str, shared: &SharedCa, secret: Option<&Secret>) -> anyhow::Result<String> {
    match (secret, seal::is_sealed(&shared.key_pem)) {
        (Some(secret), true) => secret.open(&shared.key_pem, &shared.cert_pem),
        (None, true) => anyhow::bail!(
            "the CA key in the database is sealed: set database.ca_key_secret_file to the secret \
             the trust's other collectors use"
        ),
        (Some(secret), false) => {
            // Stored before the trust chose to seal it: seal it now, for every collector.
            let sealed = secret.seal(&shared.key_pem, &shared.cert_pem)?;
            crate::store::postgres::shared::seal_ca_key(url, &shared.key_pem, &sealed)
                .context("cannot seal the CA key in the database")?;
            tracing::info!(secret = %secret.file().display(), "sealed the CA key in the database");
            Ok(shared.key_pem.clone())
        }
        (None, false) => Ok(shared.key_pem.clone()),
    }
}

/// Refuses a data dir whose `ca.pem` is not the database's CA (`origin` says where that came from).
fn same_ca(
    cert_path: &Path,
    cert_pem: &str,
    shared: &Authority,
    origin: &str,
) -> anyhow::Result<()> {
    let local = Authority::from_pem_cert(cert_pem, &cert_path.display().to_string())?;
    let (here, there) = (fingerprint(&local), fingerprint(shared.cert_der()));
    if here != there {
        anyhow::bail!(
            "the CA in the data dir ({}, SHA-256 {here}) is not the CA in the database (table \
             collector_ca, SHA-256 {there}, {origin}): devices enrolled with one would be refused \
             by the other. Move ca.pem and ca-key.pem out of {} to use the database's CA, or point \
             database.url at the database that holds this one",
            cert_path.display(),
            cert_path.parent().unwrap_or(cert_path).display()
        );
    }
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))
}

/// A key file left readable by others (copied in by hand, say) is narrowed to the collector alone.
fn tighten_key_mode(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
                    Ok(()) => {
                        tracing::warn!(file = %path.display(), "the CA key was readable by others: now mode 0600")
                    }
                    Err(e) => {
                        tracing::error!(file = %path.display(), error = %e, "the CA key is readable by others and its mode cannot be changed")
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// A new CA: (certificate, key), PEM.
fn generate() -> anyhow::Result<(String, String)> {
    let key = KeyPair::generate().context("cannot generate the CA key")?;
    let mut params = CertificateParams::default();
    params.distinguished_name = name("Ward collector CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.serial_number = Some(serial());
    set_validity(&mut params, 20);
    let cert = params
        .self_signed(&key)
        .context("cannot create the CA certificate")?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Ward");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f; // positive
    bytes[0] |= 0x01; // and 16 bytes long
    SerialNumber::from_slice(&bytes)
}

/// From a day ago (clock skew between collector and devices) to `years` ahead.
fn set_validity(params: &mut CertificateParams, years: i16) {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let from = today.yesterday().unwrap_or(today);
    params.not_before =
        rcgen::date_time_ymd(i32::from(from.year()), from.month() as u8, from.day() as u8);
    params.not_after = rcgen::date_time_ymd(
        i32::from(today.year() + years),
        today.month() as u8,
        (today.day() as u8).min(28),
    );
}
