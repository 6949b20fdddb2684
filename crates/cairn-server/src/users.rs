//! `cairn users create`: an account for the web UI, from the command line
//! (the server must be stopped: it holds the database).

use anyhow::Context;
use clap::{Args, Subcommand};

use cairn_store::users;

use crate::config::ServeArgs;
use crate::ui::{check_new_account, hash_password};

#[derive(Debug, Args)]
pub struct UsersArgs {
    #[command(subcommand)]
    command: UsersCommand,
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Create an account that can sign in to the web UI
    Create {
        /// The account's email address
        #[arg(long)]
        email: String,
        /// Its password (at least 8 characters)
        #[arg(long, env = "CAIRN_USER_PASSWORD", hide_env_values = true)]
        password: String,
        #[command(flatten)]
        serve: ServeArgs,
    },
}

pub fn run(args: UsersArgs) -> anyhow::Result<()> {
    let UsersCommand::Create {
        email,
        password,
        serve,
    } = args.command;
    check_new_account(&email, &password).map_err(anyhow::Error::msg)?;
    let config = serve.resolve()?;
    let store = config.open_store().with_context(|| {
        format!(
            "cannot open the store in {} (is `cairn serve` running on it? stop it first)",
            config.data_dir.display()
        )
    })?;
    let hash = hash_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let conn = store.conn()?;
    let user = users::create_user(&conn, &email, &hash)?;
    println!("created the account {} — sign in at the web UI", user.email);
    Ok(())
}
