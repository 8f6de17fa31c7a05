//! The collector's own certificate authority.
//!
//! Created on first start in the data dir (`ca.pem`, and `ca-key.pem` readable by the collector only);
//! it signs the server certificate (fresh on every start, for the listen address and configured names)
//! and every device certificate at enrolment. Devices pin `ca.pem`. A device certificate proves only
//! "this CA signed it": whether the device may still talk is decided per request against the devices
//! table (its certificate fingerprint and revocation), so a revocation works at once.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};

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
            Authority::create(&cert_path, &key_path)?;
        }
        let read = |p: &PathBuf| {
            std::fs::read_to_string(p).with_context(|| format!("{}: cannot read", p.display()))
        };
        let (cert_pem, key_pem) = (read(&cert_path)?, read(&key_path)?);
        let key = KeyPair::from_pem(&key_pem)
            .with_context(|| format!("{}: not a PEM private key", key_path.display()))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
            .with_context(|| format!("{}: not a usable CA certificate", cert_path.display()))?;
        let cert_der = rustls_pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
            .with_context(|| format!("{}: not a PEM certificate", cert_path.display()))?;
        Ok(Authority {
            cert_pem,
            cert_der,
            issuer,
        })
    }

    fn create(cert_path: &Path, key_path: &Path) -> anyhow::Result<()> {
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
        // Key first: a crash in between leaves only a key, which the next start overwrites.
        crate::files::write_atomic(key_path, key.serialize_pem().as_bytes(), true)?;
        crate::files::write_atomic(cert_path, cert.pem().as_bytes(), false)?;
        tracing::info!(ca = %cert_path.display(), "created the collector CA");
        Ok(())
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
