//! Session tokens, cookies, CSRF tokens and signed short-lived links.
//!
//! The browser holds a random 256-bit session token in a `__Host-` cookie (Secure, HttpOnly,
//! SameSite=Strict, Path=/); the store keeps only its SHA-256, so a copy of the database signs no one
//! in. Every form carries a CSRF token bound to the session by an HMAC under the collector's UI key; a
//! POST without the right one is refused before anything else happens. Screenshot links are HMAC-signed
//! with the alert, the viewer and an expiry, so they cannot be guessed, shared or replayed later.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Name of the session cookie. `__Host-` makes browsers insist on Secure, Path=/ and no Domain.
pub const SESSION_COOKIE: &str = "__Host-ward-session";
/// Name of the pre-sign-in cookie that the login form's CSRF token is bound to.
pub const PRE_COOKIE: &str = "__Host-ward-pre";

/// A secret key for the UI's HMACs (CSRF tokens, screenshot links); 32 random bytes.
#[derive(Clone)]
pub struct UiKey([u8; 32]);

impl std::fmt::Debug for UiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UiKey(redacted)")
    }
}

impl UiKey {
    /// A fresh random key.
    pub fn generate() -> UiKey {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        UiKey(key)
    }

    /// The key from its stored bytes, when they are the right length.
    pub fn from_bytes(bytes: &[u8]) -> Option<UiKey> {
        Some(UiKey(bytes.try_into().ok()?))
    }

    /// The raw bytes, for storing.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn mac(&self, parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }

    /// The CSRF token for forms shown to the holder of `session_token`.
    pub fn csrf_token(&self, session_token: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(&[b"csrf", session_token.as_bytes()]))
    }

    /// Whether `offered` is the CSRF token for `session_token` (constant time).
    pub fn check_csrf(&self, session_token: &str, offered: &str) -> bool {
        let Ok(offered) = URL_SAFE_NO_PAD.decode(offered) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        for part in [&b"csrf"[..], session_token.as_bytes()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.verify_slice(&offered).is_ok()
    }

    /// A signature over a link for one viewer until `expires` (unix seconds).
    pub fn sign_link(&self, purpose: &str, subject: &str, viewer: &str, expires: i64) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(&[
            purpose.as_bytes(),
            subject.as_bytes(),
            viewer.as_bytes(),
            &expires.to_be_bytes(),
        ]))
    }

    /// Whether a link signature is genuine and not expired at `now` (unix seconds).
    pub fn check_link(
        &self,
        purpose: &str,
        subject: &str,
        viewer: &str,
        expires: i64,
        now: i64,
        signature: &str,
    ) -> bool {
        if expires < now {
            return false;
        }
        let Ok(offered) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        for part in [
            purpose.as_bytes(),
            subject.as_bytes(),
            viewer.as_bytes(),
            &expires.to_be_bytes(),
        ] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.verify_slice(&offered).is_ok()
    }
}

/// A new random session (or pre-session) token for a cookie.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keeps for a token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A `Set-Cookie` value for a session cookie that lives `max_age` seconds (0 clears it).
pub fn set_cookie(name: &str, value: &str, max_age: i64) -> String {
    format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}")
}

/// The value of cookie `name` in a `Cookie` request header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_bind_to_their_session() {
        let key = UiKey::generate();
        let token = key.csrf_token("session-a");
        assert!(key.check_csrf("session-a", &token));
        assert!(!key.check_csrf("session-b", &token));
        assert!(!key.check_csrf("session-a", ""));
        assert!(!key.check_csrf("session-a", "not base64!"));
        assert!(!UiKey::generate().check_csrf("session-a", &token));
    }

    #[test]
    fn signed_links_expire_and_bind_to_viewer() {
        let key = UiKey::generate();
        let sig = key.sign_link("shot", "alert-1", "dsl", 1000);
        assert!(key.check_link("shot", "alert-1", "dsl", 1000, 999, &sig));
        assert!(
            !key.check_link("shot", "alert-1", "dsl", 1000, 1001, &sig),
            "expired"
        );
        assert!(
            !key.check_link("shot", "alert-2", "dsl", 1000, 999, &sig),
            "other alert"
        );
        assert!(
            !key.check_link("shot", "alert-1", "gov", 1000, 999, &sig),
            "other viewer"
        );
        assert!(
            !key.check_link("shot", "alert-1", "dsl", 2000, 999, &sig),
            "stretched expiry"
        );
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let header = "a=1; __Host-ward-session=abc; __Host-ward-sessionx=zzz";
        assert_eq!(cookie_value(header, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie_value(header, "missing"), None);
        let set = set_cookie(SESSION_COOKIE, "abc", 3600);
        for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(set.contains(attr), "{set}");
        }
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = new_token();
        assert_ne!(a, new_token());
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }
}
