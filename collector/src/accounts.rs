//! Review-UI accounts: one-time passwords, argon2id hashes, and the first `admin` account.
//!
//! The password itself is never stored: only its argon2id PHC string. A new account's password is
//! one-time (`must_change_password`); the review UI makes its owner choose a new one at first sign-in.

use std::path::Path;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use rand::Rng;

use crate::store::{NewUser, Store, StoreError};

/// File holding the first admin password until it is changed.
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";

/// The roles the review UI knows; they combine.
pub const ROLES: [&str; 5] = ["admin", "dsl", "reviewer", "head", "governor"];

/// A random password of 20 letters and digits (about 119 bits), easy to type from a printout.
pub fn one_time_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The argon2id PHC string of `password` with a random salt.
///
/// # Errors
/// Hashing fails (it does not with the default parameters).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| anyhow::anyhow!("cannot make a salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// Checks and normalises a comma-separated role list.
///
/// # Errors
/// An unknown or missing role, named.
pub fn parse_roles(roles: &str) -> anyhow::Result<String> {
    let list: Vec<&str> = roles
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .collect();
    if list.is_empty() {
        anyhow::bail!("--role: at least one of {} is needed", ROLES.join(", "));
    }
    for role in &list {
        if !ROLES.contains(role) {
            anyhow::bail!("--role: `{role}` is not one of {}", ROLES.join(", "));
        }
    }
    Ok(list.join(","))
}

/// Creates an account with a one-time password and returns the password.
///
/// # Errors
/// The name is taken or the database fails.
pub fn add_user(
    store: &dyn Store,
    name: &str,
    roles: &str,
    groups: &str,
) -> anyhow::Result<String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'))
    {
        anyhow::bail!("user name `{name}`: use 1 to 64 letters, digits, '.', '-', '_' or '@'");
    }
    let password = one_time_password();
    let user = NewUser {
        name: name.to_string(),
        roles: parse_roles(roles)?,
        groups: groups.to_string(),
        password_hash: hash_password(&password)?,
        must_change_password: true,
        created: jiff::Timestamp::now().as_microsecond(),
    };
    match store.add_user(&user) {
        Ok(()) => Ok(password),
        Err(StoreError::Conflict(_)) => anyhow::bail!("user `{name}` already exists"),
        Err(e) => Err(e.into()),
    }
}

/// On an empty accounts table: creates `admin` with a one-time password written to
/// `<data_dir>/initial-admin-password` (mode 0600) and returns the password to show once. Of several
/// collectors starting at once on one empty database, the one whose account is stored does this.
///
/// # Errors
/// The database or the file cannot be written.
pub fn bootstrap_admin(store: &dyn Store, data_dir: &Path) -> anyhow::Result<Option<String>> {
    if store.count_users()? > 0 {
        return Ok(None);
    }
    let password = match add_user(store, "admin", "admin", "") {
        Ok(password) => password,
        // Another collector on the same database started at the same moment and made it: that one
        // shows the password.
        Err(_) if store.count_users()? > 0 => return Ok(None),
        Err(e) => return Err(e),
    };
    crate::files::write_atomic(
        &data_dir.join(INITIAL_PASSWORD_FILE),
        format!("{password}\n").as_bytes(),
        true,
    )?;
    Ok(Some(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_random_and_hash_as_argon2id() {
        let (a, b) = (one_time_password(), one_time_password());
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        let hash = hash_password(&a).unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains(&a));
    }

    #[test]
    fn roles_are_checked() {
        assert_eq!(parse_roles("admin, reviewer").unwrap(), "admin,reviewer");
        assert!(parse_roles("wizard")
            .unwrap_err()
            .to_string()
            .contains("wizard"));
        assert!(parse_roles("").is_err());
    }
}
