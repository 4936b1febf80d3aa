//! `hub-admin user`: the people who sign in to the console, in the user pool's groups
//! `viewer`, `operator` and `admin` (a user's highest group is their role). Works on the
//! pool directly with AWS credentials, like `replay`: managing who may sign in is not an
//! admin-API operation.

use anyhow::{bail, Context, Result};
use aws_sdk_cognitoidentityprovider::{
    error::ProvideErrorMetadata,
    types::{AttributeType, DeliveryMediumType, MessageActionType},
    Client,
};
use hub_runtime::role::Role;

/// How a new user gets their first password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstPassword {
    /// Cognito emails a temporary password; the user sets their own at first sign-in.
    Invite { email: String },
    /// A temporary password chosen here; the user sets their own at first sign-in.
    Temporary(String),
    /// A password that stays (local stacks and demos).
    Permanent(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// Cognito's status: `FORCE_CHANGE_PASSWORD` until a temporary password is replaced.
    pub status: String,
    pub role: Option<Role>,
}

/// Creates `name` in `role`'s group. An existing name is refused, not changed.
pub async fn add(
    cognito: &Client,
    pool: &str,
    name: &str,
    role: Role,
    first: &FirstPassword,
    email: Option<&str>,
) -> Result<()> {
    let mut create = cognito
        .admin_create_user()
        .user_pool_id(pool)
        .username(name);
    let email = match first {
        FirstPassword::Invite { email } => Some(email.as_str()),
        _ => email,
    };
    if let Some(email) = email {
        create = create
            .user_attributes(attribute("email", email))
            .user_attributes(attribute("email_verified", "true"));
    }
    create = match first {
        FirstPassword::Invite { .. } => create.desired_delivery_mediums(DeliveryMediumType::Email),
        FirstPassword::Temporary(password) => create
            .temporary_password(password)
            .message_action(MessageActionType::Suppress),
        FirstPassword::Permanent(_) => create.message_action(MessageActionType::Suppress),
    };
    create.send().await.map_err(|e| {
        let e = e.into_service_error();
        match e.code() {
            Some("UsernameExistsException") => anyhow::anyhow!("user {name} exists already"),
            _ => anyhow::anyhow!(
                "creating user {name}: {}",
                e.message().unwrap_or(&e.to_string())
            ),
        }
    })?;
    if let FirstPassword::Permanent(password) = first {
        let set = cognito
            .admin_set_user_password()
            .user_pool_id(pool)
            .username(name)
            .password(password)
            .permanent(true)
            .send()
            .await;
        if let Err(e) = set {
            // No half-made user: one without a usable password is removed again.
            let e = e.into_service_error();
            let _ = cognito
                .admin_delete_user()
                .user_pool_id(pool)
                .username(name)
                .send()
                .await;
            bail!(
                "setting the password of {name}: {}",
                e.message().unwrap_or(&e.to_string())
            );
        }
    }
    set_role(cognito, pool, name, role).await
}

/// Puts `name` in `role`'s group and out of every other role's group.
pub async fn set_role(cognito: &Client, pool: &str, name: &str, role: Role) -> Result<()> {
    for other in roles_of(cognito, pool, name)
        .await?
        .into_iter()
        .filter(|r| *r != role)
    {
        cognito
            .admin_remove_user_from_group()
            .user_pool_id(pool)
            .username(name)
            .group_name(other.as_str())
            .send()
            .await
            .with_context(|| format!("taking {name} out of {}", other.as_str()))?;
    }
    cognito
        .admin_add_user_to_group()
        .user_pool_id(pool)
        .username(name)
        .group_name(role.as_str())
        .send()
        .await
        .with_context(|| format!("putting {name} in {}", role.as_str()))?;
    Ok(())
}

/// Every user with their status and role, by name.
pub async fn list(cognito: &Client, pool: &str) -> Result<Vec<User>> {
    let mut users = Vec::new();
    let mut pages = cognito
        .list_users()
        .user_pool_id(pool)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for user in page.context("listing users")?.users.unwrap_or_default() {
            let Some(name) = user.username else { continue };
            users.push(User {
                status: user
                    .user_status
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                role: roles_of(cognito, pool, &name).await?.into_iter().max(),
                name,
            });
        }
    }
    users.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(users)
}

pub async fn remove(cognito: &Client, pool: &str, name: &str) -> Result<()> {
    cognito
        .admin_delete_user()
        .user_pool_id(pool)
        .username(name)
        .send()
        .await
        .map_err(|e| {
            let e = e.into_service_error();
            anyhow::anyhow!("removing {name}: {}", e.message().unwrap_or(&e.to_string()))
        })?;
    Ok(())
}

/// The roles whose groups `name` is in (a user's role is the highest).
async fn roles_of(cognito: &Client, pool: &str, name: &str) -> Result<Vec<Role>> {
    let groups = cognito
        .admin_list_groups_for_user()
        .user_pool_id(pool)
        .username(name)
        .send()
        .await
        .with_context(|| format!("the groups of {name}"))?
        .groups
        .unwrap_or_default();
    Ok(groups
        .iter()
        .filter_map(|g| g.group_name.as_deref().and_then(Role::from_name))
        .collect())
}

fn attribute(name: &str, value: &str) -> AttributeType {
    AttributeType::builder()
        .name(name)
        .value(value)
        .build()
        .expect("name is set")
}
