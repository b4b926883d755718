//! Robot (CI) tokens (`robots.toml` in the auth directory): a name, the SHA-256 of a
//! random secret shown once at creation, the repositories and actions it is limited to.
//! A robot logs in as `robot$<name>` with the secret as password; `cargohold token revoke`
//! removes it, and since the server re-reads the file at each login and each refresh, a
//! revoked robot gets no new token (one already issued lives out its short lifetime).

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::rules::{Action, Actions, Pattern};
use super::users::valid_name;
use super::{read_toml, write_toml};

/// The user-name prefix robots log in with (Harbor's convention).
pub const ROBOT_PREFIX: &str = "robot$";

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RobotsFile {
    #[serde(default)]
    robots: BTreeMap<String, RobotEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RobotEntry {
    secret_sha256: String,
    repositories: Vec<String>,
    actions: Vec<String>,
    created: u64,
}

/// A robot as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Robot {
    /// Its name (without the prefix).
    pub name: String,
    /// The repositories it may touch.
    pub repositories: Vec<Pattern>,
    /// What it may do there.
    pub actions: Actions,
}

impl Robot {
    /// What the robot may do in `repo`.
    pub fn actions_in(&self, repo: &str) -> Actions {
        if self.repositories.iter().any(|p| p.matches(repo)) {
            self.actions
        } else {
            Actions::NONE
        }
    }
}

/// The robots file.
#[derive(Debug, Clone)]
pub struct Robots {
    path: PathBuf,
}

fn sha256_hex(secret: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

impl Robots {
    /// The robots file at `path` (it need not exist yet).
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// Creates robot `name`; returns its secret, which is stored only as a hash.
    pub fn create(
        &self,
        name: &str,
        repositories: &[String],
        actions: &[Action],
    ) -> anyhow::Result<String> {
        anyhow::ensure!(valid_name(name), "invalid robot name {name:?}");
        anyhow::ensure!(!repositories.is_empty(), "name at least one --repo");
        let mut file: RobotsFile = read_toml(&self.path)?;
        anyhow::ensure!(
            !file.robots.contains_key(name),
            "robot {name} already exists"
        );
        let mut raw = [0u8; 32];
        aws_lc_rs::rand::fill(&mut raw).map_err(|_| anyhow::anyhow!("no randomness"))?;
        let secret = URL_SAFE_NO_PAD.encode(raw);
        let entry = RobotEntry {
            secret_sha256: sha256_hex(&secret),
            repositories: repositories.to_vec(),
            actions: actions.iter().map(|a| a.as_str().to_owned()).collect(),
            created: super::token::now(),
        };
        file.robots.insert(name.to_owned(), entry);
        write_toml(&self.path, &file)?;
        Ok(secret)
    }

    /// Deletes robot `name`.
    pub fn revoke(&self, name: &str) -> anyhow::Result<()> {
        let mut file: RobotsFile = read_toml(&self.path)?;
        anyhow::ensure!(file.robots.remove(name).is_some(), "no robot {name}");
        write_toml(&self.path, &file)
    }

    /// Every robot.
    pub fn list(&self) -> anyhow::Result<Vec<Robot>> {
        let file: RobotsFile = read_toml(&self.path)?;
        Ok(file.robots.into_iter().map(robot).collect())
    }

    /// The robot `name`, if it exists.
    pub fn get(&self, name: &str) -> anyhow::Result<Option<Robot>> {
        Ok(self.list()?.into_iter().find(|r| r.name == name))
    }

    /// The robot whose name and secret these are. The secret is random and long, so a
    /// fast hash suffices; the comparison takes the same time wherever they differ.
    pub fn verify(&self, name: &str, secret: &str) -> anyhow::Result<Option<Robot>> {
        let file: RobotsFile = read_toml(&self.path)?;
        let Some(entry) = file.robots.get(name) else {
            return Ok(None);
        };
        let given = sha256_hex(secret);
        let ok = aws_lc_rs::constant_time::verify_slices_are_equal(
            given.as_bytes(),
            entry.secret_sha256.as_bytes(),
        )
        .is_ok();
        Ok(ok.then(|| robot((name.to_owned(), entry.clone()))))
    }
}

fn robot((name, e): (String, RobotEntry)) -> Robot {
    Robot {
        name,
        repositories: e.repositories.into_iter().map(Pattern::new).collect(),
        actions: e.actions.iter().filter_map(|a| Action::parse(a)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_verify_revoke() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let robots = Robots::new(dir.path().join("robots.toml"));
        let secret = robots.create("ci", &["team-a/*".into()], &[Action::Pull, Action::Push])?;
        let r = robots.verify("ci", &secret)?.expect("valid secret");
        assert_eq!(r.actions_in("team-a/x"), Actions::ALL.intersect(r.actions));
        assert!(!r.actions_in("team-a/x").has(Action::Delete));
        assert!(r.actions_in("team-b/x").is_empty());
        assert!(robots.verify("ci", "wrong")?.is_none());
        let text = std::fs::read_to_string(dir.path().join("robots.toml"))?;
        assert!(!text.contains(&secret), "only the hash is stored");
        robots.revoke("ci")?;
        assert!(robots.verify("ci", &secret)?.is_none());
        Ok(())
    }
}
