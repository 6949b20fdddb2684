//! `cairn users`: accounts for the web UI, from the command line (the
//! server must be stopped: it holds the database).

use anyhow::Context;
use clap::{Args, Subcommand};

use cairn_core::ProjectId;
use cairn_store::catalog::Access;

use crate::config::{Config, ServeArgs};
use crate::passwords::hash_password;
use crate::storage::Storage;
use crate::ui::check_new_account;

#[derive(Debug, Args)]
pub struct UsersArgs {
    #[command(subcommand)]
    command: UsersCommand,
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Create an account that can sign in to the web UI: an administrator
    /// (every project), or with --project a member of those projects only
    Create {
        /// The account's email address
        #[arg(long)]
        email: String,
        /// Its password (at least 8 characters)
        #[arg(long, env = "CAIRN_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// Make it a member of this project only, not an administrator
        /// (repeat for several). The first account is always an administrator
        #[arg(long = "project", value_name = "PROJECT_ID")]
        projects: Vec<i64>,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Let an existing account see one more project
    AddMember {
        /// The account's email address
        #[arg(long)]
        email: String,
        /// The project it may see from now on
        #[arg(long = "project", value_name = "PROJECT_ID")]
        project: i64,
        #[command(flatten)]
        serve: ServeArgs,
    },
}

fn open_store(serve: ServeArgs) -> anyhow::Result<Storage> {
    let config: Config = serve.resolve()?;
    Storage::open(&config).with_context(|| {
        format!(
            "cannot open the store in {} (is `cairn serve` running on it? stop it first)",
            config.data_dir.display()
        )
    })
}

pub fn run(args: UsersArgs) -> anyhow::Result<()> {
    match args.command {
        UsersCommand::Create {
            email,
            password,
            projects,
            serve,
        } => {
            check_new_account(&email, &password).map_err(anyhow::Error::msg)?;
            let store = open_store(serve)?;
            let hash = hash_password(&password).map_err(anyhow::Error::msg)?;
            let access = if projects.is_empty() {
                Access::Admin
            } else {
                Access::Member(projects.into_iter().map(ProjectId).collect())
            };
            let user = store.catalog.create_user(&email, &hash, access)?;
            let role = if user.is_admin {
                "an administrator"
            } else {
                "a project member"
            };
            println!(
                "created the account {} ({role}) — sign in at the web UI",
                user.email
            );
        }
        UsersCommand::AddMember {
            email,
            project,
            serve,
        } => {
            let store = open_store(serve)?;
            let user = store
                .catalog
                .find_user(&email)?
                .with_context(|| format!("there is no account for {email}"))?;
            store.catalog.add_member(ProjectId(project), user.id)?;
            println!("{} can now see project {project}", user.email);
        }
    }
    Ok(())
}
