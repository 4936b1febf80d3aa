//! `hub-admin user add|list|role|remove`.

use std::io::Read as _;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use hub_admin::users::{self, FirstPassword};
use hub_runtime::role::Role;

#[derive(Args)]
pub struct UserCommand {
    /// The user pool (the stack's AdminUserPoolId output).
    #[arg(long, env = "HUB_USER_POOL_ID")]
    user_pool_id: String,
    #[command(subcommand)]
    action: UserAction,
}

#[derive(Subcommand)]
enum UserAction {
    /// Create a user in a role. Cognito emails a temporary password to --email, or the
    /// password is read from stdin (--password-stdin), temporary unless --permanent.
    Add {
        name: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        email: Option<String>,
        /// Read the first password from stdin (one line).
        #[arg(long)]
        password_stdin: bool,
        /// Keep the password read from stdin (local stacks and demos); otherwise the user
        /// sets their own at first sign-in.
        #[arg(long, requires = "password_stdin")]
        permanent: bool,
    },
    /// Every user with their status and role.
    List,
    /// Give a user another role.
    Role {
        name: String,
        #[arg(value_parser = parse_role)]
        role: Role,
    },
    /// Remove a user.
    Remove { name: String },
}

fn parse_role(name: &str) -> Result<Role, String> {
    Role::from_name(name).ok_or_else(|| format!("{name:?}: a role is viewer, operator or admin"))
}

impl UserCommand {
    pub async fn run(self) -> Result<()> {
        let aws = hub_runtime::AwsEnv::load().await;
        let cognito = aws_sdk_cognitoidentityprovider::Client::new(&aws.sdk);
        let pool = self.user_pool_id.as_str();
        match self.action {
            UserAction::Add {
                name,
                role,
                email,
                password_stdin,
                permanent,
            } => {
                let first = match (password_stdin, email.clone()) {
                    (true, _) => {
                        let password = read_password()?;
                        if permanent {
                            FirstPassword::Permanent(password)
                        } else {
                            FirstPassword::Temporary(password)
                        }
                    }
                    (false, Some(email)) => FirstPassword::Invite { email },
                    (false, None) => {
                        bail!("give --email (Cognito sends the invitation) or --password-stdin")
                    }
                };
                users::add(&cognito, pool, &name, role, &first, email.as_deref()).await?;
                eprintln!("added {name} as {}", role.as_str());
            }
            UserAction::List => {
                for user in users::list(&cognito, pool).await? {
                    println!(
                        "{}\t{}\t{}",
                        user.name,
                        user.role.map_or("-", Role::as_str),
                        user.status
                    );
                }
            }
            UserAction::Role { name, role } => {
                users::set_role(&cognito, pool, &name, role).await?;
                eprintln!("{name} is now {}", role.as_str());
            }
            UserAction::Remove { name } => {
                users::remove(&cognito, pool, &name).await?;
                eprintln!("removed {name}");
            }
        }
        Ok(())
    }
}

fn read_password() -> Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading the password from stdin")?;
    let password = text.lines().next().unwrap_or("").to_owned();
    if password.is_empty() {
        bail!("no password on stdin");
    }
    Ok(password)
}
