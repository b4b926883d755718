//! The users file (`users.toml` in the auth directory): names and argon2id password
//! hashes, edited by `cargohold user add | remove | passwd | list`. The server re-reads it
//! at each login, so an edit takes effect without a restart.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};

use super::{read_toml, write_toml};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    users: BTreeMap<String, UserEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    /// PHC string: `$argon2id$v=19$m=...`.
    password: String,
}

/// The users file.
#[derive(Debug, Clone)]
pub struct Users {
    path: PathBuf,
}

/// Letters, digits, `.`, `_`, `-`: no `$` (robots are `robot$<name>`), no `@` or `*`
/// (the rules' group names), no `:` (Basic auth's separator).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Users {
    /// The users file at `path` (it need not exist yet).
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    fn read(&self) -> anyhow::Result<UsersFile> {
        read_toml(&self.path)
    }

    /// Adds `name` (`replace`: or sets the password of an existing user).
    pub fn set(&self, name: &str, password: &str, replace: bool) -> anyhow::Result<()> {
        anyhow::ensure!(
            valid_name(name),
            "invalid user name {name:?}: use letters, digits, '.', '_' and '-'"
        );
        anyhow::ensure!(!password.is_empty(), "the password is empty");
        let mut file = self.read()?;
        match (file.users.contains_key(name), replace) {
            (true, false) => anyhow::bail!("user {name} already exists (use `user passwd`)"),
            (false, true) => anyhow::bail!("no user {name} (use `user add`)"),
            _ => {}
        }
        let password = hash(password)?;
        file.users.insert(name.to_owned(), UserEntry { password });
        write_toml(&self.path, &file)
    }

    /// Removes `name`; an error if there is no such user.
    pub fn remove(&self, name: &str) -> anyhow::Result<()> {
        let mut file = self.read()?;
        anyhow::ensure!(file.users.remove(name).is_some(), "no user {name}");
        write_toml(&self.path, &file)
    }

    /// The user names, sorted.
    pub fn list(&self) -> anyhow::Result<Vec<String>> {
        Ok(self.read()?.users.into_keys().collect())
    }

    /// Whether `name` exists.
    pub fn exists(&self, name: &str) -> anyhow::Result<bool> {
        Ok(self.read()?.users.contains_key(name))
    }

    /// Whether `password` is `name`'s. Slow on purpose (argon2): call off the runtime.
    /// An unknown user costs the same as a wrong password, so timing tells nothing.
    pub fn verify(&self, name: &str, password: &str) -> anyhow::Result<bool> {
        let file = self.read()?;
        let stored = match file.users.get(name) {
            Some(u) => u.password.clone(),
            None => dummy_hash()?,
        };
        let parsed = PasswordHash::new(&stored)
            .map_err(|e| anyhow::anyhow!("user {name}: stored hash is invalid: {e}"))?;
        let ok = argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(ok && file.users.contains_key(name))
    }
}

fn hash(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| anyhow::anyhow!("no randomness"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))?
        .to_string())
}

/// A hash to verify against when the user does not exist.
fn dummy_hash() -> anyhow::Result<String> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h.clone());
    }
    let h = hash("no such user").context("dummy hash")?;
    Ok(DUMMY.get_or_init(|| h).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_verify_passwd_remove() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let users = Users::new(dir.path().join("users.toml"));
        users.set("alice", "s3cret", false)?;
        assert!(users.set("alice", "x", false).is_err());
        assert!(users.set("bad$name", "x", false).is_err());
        assert!(users.verify("alice", "s3cret")?);
        assert!(!users.verify("alice", "wrong")?);
        assert!(!users.verify("nobody", "s3cret")?);
        users.set("alice", "new", true)?;
        assert!(users.verify("alice", "new")?);
        assert_eq!(users.list()?, vec!["alice".to_owned()]);
        let text = std::fs::read_to_string(dir.path().join("users.toml"))?;
        assert!(
            text.contains("$argon2id$") && !text.contains("new\""),
            "{text}"
        );
        users.remove("alice")?;
        assert!(users.remove("alice").is_err());
        assert!(users.list()?.is_empty());
        Ok(())
    }
}
