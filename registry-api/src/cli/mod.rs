//! Subcommands that edit the auth directory: thin layers over `registry_api::auth`.

mod token;
mod user;

use std::path::PathBuf;

use registry_api::auth::settings::DEFAULT_AUTH_DIR;
use registry_api::config::{Config, ServeArgs};
pub use token::{TokenCommand, token};
pub use user::{UserCommand, user};

/// The auth directory the server with these flags would use.
fn auth_dir(args: &ServeArgs) -> anyhow::Result<PathBuf> {
    Ok(Config::load(args)?
        .auth
        .map_or_else(|| PathBuf::from(DEFAULT_AUTH_DIR), |a| a.dir))
}
