//! Sealing the CA key at rest in a shared database. With PostgreSQL the CA key is in a table, so
//! anyone who can read the database or its backups could read it; a trust that sets
//! `database.ca_key_secret_file` (a systemd credential, say: `LoadCredential=`) stores it sealed
//! instead, with AES-256-GCM under a key derived from that file, bound to the CA certificate it
//! belongs to. Reading the table (or a backup) then yields nothing usable without the file, which
//! lives only on the collectors' hosts.

use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use sha2::{Digest, Sha256};

/// How a sealed key begins, so a plain PEM key and a sealed one are told apart.
const PREFIX: &str = "ward-sealed-v1:";
/// A secret shorter than this is refused: it would be guessable.
const MIN_SECRET_CHARS: usize = 32;

/// The sealing key, from the secret file.
pub struct Secret {
    key: LessSafeKey,
    file: PathBuf,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// Whether a stored key is sealed.
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

impl Secret {
    /// Reads the secret (surrounding white space ignored).
    ///
    /// # Errors
    /// The file cannot be read or holds fewer than 32 characters.
    pub fn load(path: &Path) -> anyhow::Result<Secret> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the CA key secret", path.display()))?;
        let text = text.trim();
        if text.chars().count() < MIN_SECRET_CHARS {
            anyhow::bail!(
                "{}: the CA key secret must be at least {MIN_SECRET_CHARS} characters (for \
                 example `openssl rand -base64 48`)",
                path.display()
            );
        }
        let mut hash = Sha256::new();
        hash.update(b"ward collector CA key seal v1\0");
        hash.update(text.as_bytes());
        let key = UnboundKey::new(&AES_256_GCM, &hash.finalize())
            .map_err(|_| anyhow::anyhow!("cannot make the sealing key"))?;
        Ok(Secret {
            key: LessSafeKey::new(key),
            file: path.to_path_buf(),
        })
    }

    /// The file it came from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// `key_pem` sealed, bound to `cert_pem`.
    ///
    /// # Errors
    /// Sealing fails (it does not for keys of any sane size).
    pub fn seal(&self, key_pem: &str, cert_pem: &str) -> anyhow::Result<String> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut sealed = key_pem.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Sha256::digest(cert_pem.as_bytes()).as_slice()),
                &mut sealed,
            )
            .map_err(|_| anyhow::anyhow!("cannot seal the CA key"))?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(format!("{PREFIX}{}", STANDARD.encode(out)))
    }

    /// The key PEM from a sealed `stored` value bound to `cert_pem`.
    ///
    /// # Errors
    /// It is not sealed, or not with this secret for this certificate.
    pub fn open(&self, stored: &str, cert_pem: &str) -> anyhow::Result<String> {
        let wrong = || {
            anyhow::anyhow!(
                "the CA key in the database cannot be unsealed with {}: it was sealed with a \
                 different secret (every collector of the trust needs the same file)",
                self.file.display()
            )
        };
        let bytes = stored
            .strip_prefix(PREFIX)
            .and_then(|b| STANDARD.decode(b).ok())
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or_else(wrong)?;
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(
                nonce,
                Aad::from(Sha256::digest(cert_pem.as_bytes()).as_slice()),
                &mut sealed,
            )
            .map_err(|_| wrong())?;
        String::from_utf8(plain.to_vec()).map_err(|_| wrong())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> Secret {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, text).unwrap();
        Secret::load(&path).unwrap()
    }

    #[test]
    fn a_sealed_key_opens_only_with_its_secret_and_certificate() {
        let one = secret("0123456789abcdef0123456789abcdef-one");
        let sealed = one.seal("-----BEGIN PRIVATE KEY-----", "cert").unwrap();
        assert!(is_sealed(&sealed) && !sealed.contains("PRIVATE KEY"));
        assert_eq!(
            one.open(&sealed, "cert").unwrap(),
            "-----BEGIN PRIVATE KEY-----"
        );
        assert!(one.open(&sealed, "another cert").is_err());
        let two = secret("0123456789abcdef0123456789abcdef-two");
        assert!(two.open(&sealed, "cert").is_err());
        assert!(one.open("ward-sealed-v1:AAAA", "cert").is_err());
    }

    #[test]
    fn a_short_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "hunter2\n").unwrap();
        assert!(Secret::load(&path).unwrap_err().to_string().contains("32"));
    }
}
