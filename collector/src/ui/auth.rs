//! Sign-in checks that need no storage: argon2id password hashes, TOTP codes (RFC 6238), and the
//! lockout rule for repeated failures.
//!
//! Kept pure so each rule is tested alone; the sign-in route combines them with the account store.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use rand::RngCore;
use sha1::Sha1;

/// Hashes a password with argon2id and a fresh random salt (PHC string format).
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt length");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters cannot fail on a valid salt")
        .to_string()
}

/// Whether `password` matches the stored PHC hash. A malformed stored hash never matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// A password good enough to hand out once: 16 characters from an alphabet without look-alikes.
pub fn one_time_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..16)
        .map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char)
        .collect()
}

/// Seconds per TOTP step (RFC 6238 default, what authenticator apps use).
pub const TOTP_STEP: i64 = 30;

/// A fresh 160-bit TOTP secret, base32 as authenticator apps expect.
pub fn new_totp_secret() -> String {
    let mut secret = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut secret);
    base32_encode(&secret)
}

/// The `otpauth://` URI an authenticator app imports.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &str) -> String {
    use super::html::url_encode;
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period={}",
        url_encode(issuer),
        url_encode(account),
        secret,
        url_encode(issuer),
        TOTP_STEP
    )
}

/// The six-digit code for one time step (RFC 4226 HOTP over the step counter).
pub fn totp_code(secret: &[u8], step: u64) -> u32 {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[19] & 0x0f) as usize;
    let value = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    value % 1_000_000
}

/// Checks a typed code against the secret, allowing one step of clock drift either way.
///
/// Returns the matched step so the caller can refuse its reuse (`last_step`: the step last accepted
/// for this account); a code is good once only.
pub fn verify_totp(
    secret_b32: &str,
    code: &str,
    now: Timestamp,
    last_step: Option<u64>,
) -> Option<u64> {
    let code = code.trim().replace(' ', "");
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let typed: u32 = code.parse().ok()?;
    let secret = base32_decode(secret_b32)?;
    let current = (now.as_second() / TOTP_STEP) as u64;
    [current.saturating_sub(1), current, current + 1]
        .into_iter()
        .filter(|step| last_step.is_none_or(|last| *step > last))
        .find(|step| constant_eq_u32(totp_code(&secret, *step), typed))
}

fn constant_eq_u32(a: u32, b: u32) -> bool {
    (a ^ b) == 0
}

const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            out.push(B32[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(B32[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes RFC 4648 base32 (case-insensitive, padding and spaces ignored).
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for c in text.bytes().filter(|c| !matches!(c, b'=' | b' ')) {
        let value = B32.iter().position(|&x| x == c.to_ascii_uppercase())? as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            out.push((buffer >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    Some(out)
}

/// How many failures lock an account, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Lockout {
    /// Consecutive failures that lock the account.
    pub max_failures: u32,
    /// How long the lock lasts; an admin reset lifts it sooner.
    pub lock_for: SignedDuration,
}

impl Default for Lockout {
    fn default() -> Self {
        Lockout {
            max_failures: 5,
            lock_for: SignedDuration::from_mins(15),
        }
    }
}

impl Lockout {
    /// After a failure: the new failure count, and the time the lock ends if this failure locks.
    pub fn after_failure(&self, failures: u32, now: Timestamp) -> (u32, Option<Timestamp>) {
        let failures = failures + 1;
        if failures >= self.max_failures {
            (failures, Some(now + self.lock_for))
        } else {
            (failures, None)
        }
    }

    /// Whether an account locked until `until` is still locked.
    pub fn is_locked(until: Option<Timestamp>, now: Timestamp) -> bool {
        until.is_some_and(|until| until > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hashes_verify_and_reject() {
        let hash = hash_password("correct horse");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1 secret "12345678901234567890"; the last six digits.
        let secret = b"12345678901234567890";
        let check = |time: i64, expected: u32| {
            assert_eq!(
                totp_code(secret, (time / 30) as u64),
                expected % 1_000_000,
                "t={time}"
            )
        };
        check(59, 94287082);
        check(1111111109, 7081804);
        check(1111111111, 14050471);
        check(1234567890, 89005924);
        check(2000000000, 69279037);
    }

    #[test]
    fn totp_accepts_drift_and_refuses_reuse() {
        let secret = base32_encode(b"12345678901234567890");
        let now = Timestamp::from_second(1111111111).unwrap();
        let code = format!("{:06}", 14050471 % 1_000_000);
        let step = verify_totp(&secret, &code, now, None).expect("current code accepted");
        assert_eq!(
            verify_totp(&secret, &code, now, Some(step)),
            None,
            "reuse refused"
        );
        let later = Timestamp::from_second(1111111111 + 30).unwrap();
        assert!(
            verify_totp(&secret, &code, later, None).is_some(),
            "one step of drift"
        );
        let much_later = Timestamp::from_second(1111111111 + 120).unwrap();
        assert!(verify_totp(&secret, &code, much_later, None).is_none());
        assert!(verify_totp(&secret, "12a456", now, None).is_none());
    }

    #[test]
    fn base32_round_trips() {
        for bytes in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar"] {
            assert_eq!(base32_decode(&base32_encode(bytes)).unwrap(), bytes);
        }
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
    }

    #[test]
    fn lockout_after_five_failures() {
        let rule = Lockout::default();
        let now = Timestamp::from_second(1_000_000).unwrap();
        let mut failures = 0;
        for _ in 0..4 {
            let (n, lock) = rule.after_failure(failures, now);
            assert!(lock.is_none());
            failures = n;
        }
        let (_, lock) = rule.after_failure(failures, now);
        let until = lock.expect("fifth failure locks");
        assert!(Lockout::is_locked(Some(until), now));
        assert!(!Lockout::is_locked(
            Some(until),
            until + SignedDuration::from_secs(1)
        ));
    }
}
