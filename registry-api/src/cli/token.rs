//! `cargohold token create | revoke | list`: robot (CI) tokens.

use clap::Subcommand;
use registry_api::auth::robots::{ROBOT_PREFIX, Robots};
use registry_api::auth::rules::Action;
use registry_api::config::ServeArgs;

/// What to do to the robots file.
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a robot token; prints its login name and secret (shown only this once).
    Create {
        /// The robot's name; it logs in as `robot$<name>`.
        name: String,
        /// A repository or prefix (`team-a/*`) it may touch; repeatable.
        #[arg(long = "repo", required = true)]
        repos: Vec<String>,
        /// What it may do there: pull, push, delete (comma-separated) [default: pull]
        #[arg(long, value_delimiter = ',', value_parser = parse_action)]
        access: Vec<Action>,
        #[command(flatten)]
        config: ServeArgs,
    },
    /// Revoke a robot token: no new access token is issued for it from now on.
    Revoke {
        /// The robot's name.
        name: String,
        #[command(flatten)]
        config: ServeArgs,
    },
    /// List robot tokens (never their secrets).
    List(ServeArgs),
}

fn parse_action(s: &str) -> Result<Action, String> {
    Action::parse(s).ok_or_else(|| format!("unknown action {s:?}: pull, push or delete"))
}

/// Runs a `token` subcommand.
pub fn token(what: TokenCommand) -> anyhow::Result<()> {
    let robots =
        |args: &ServeArgs| super::auth_dir(args).map(|d| Robots::new(d.join("robots.toml")));
    match what {
        TokenCommand::Create {
            name,
            repos,
            access,
            config,
        } => {
            let access = if access.is_empty() {
                vec![Action::Pull]
            } else {
                access
            };
            let secret = robots(&config)?.create(&name, &repos, &access)?;
            println!("username: {ROBOT_PREFIX}{name}");
            println!("password: {secret}");
        }
        TokenCommand::Revoke { name, config } => robots(&config)?.revoke(&name)?,
        TokenCommand::List(args) => {
            for r in robots(&args)?.list()? {
                let repos: Vec<&str> = r.repositories.iter().map(|p| p.as_str()).collect();
                println!(
                    "{ROBOT_PREFIX}{}\t{}\t{}",
                    r.name,
                    r.actions,
                    repos.join(",")
                );
            }
        }
    }
    Ok(())
}
