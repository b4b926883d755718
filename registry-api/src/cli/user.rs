//! `cargohold user add | remove | passwd | list`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;
use clap::Subcommand;
use registry_api::auth::users::Users;
use registry_api::config::ServeArgs;

/// What to do to the users file.
#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from standard input (one line).
    Add(NamedUser),
    /// Remove a user (tokens already issued to them expire within the token lifetime).
    Remove(NamedUser),
    /// Change a user's password, read from standard input.
    Passwd(NamedUser),
    /// List the users.
    List(ServeArgs),
}

/// A user name and the flags that locate the auth directory.
#[derive(clap::Args)]
pub struct NamedUser {
    /// The user name.
    name: String,
    #[command(flatten)]
    config: ServeArgs,
}

/// Runs a `user` subcommand.
pub fn user(what: UserCommand) -> anyhow::Result<()> {
    let users = |args: &ServeArgs| super::auth_dir(args).map(|d| Users::new(d.join("users.toml")));
    match what {
        UserCommand::Add(u) => users(&u.config)?.set(&u.name, &read_password()?, false)?,
        UserCommand::Passwd(u) => users(&u.config)?.set(&u.name, &read_password()?, true)?,
        UserCommand::Remove(u) => users(&u.config)?.remove(&u.name)?,
        UserCommand::List(args) => {
            for name in users(&args)?.list()? {
                println!("{name}");
            }
        }
    }
    Ok(())
}

/// One line of standard input, without its line ending.
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        eprint!("password (echoed): ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
