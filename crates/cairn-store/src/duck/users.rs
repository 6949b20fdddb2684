//! Web UI accounts, their project memberships and sign-in sessions in DuckDB.

use std::sync::Mutex;

use chrono::{Duration, Utc};
use duckdb::{params, Connection, OptionalExt};
use rand::distr::{Alphanumeric, SampleString};
use uuid::Uuid;

use cairn_core::ProjectId;

use super::projects::{get_project, list_projects};
use super::{timestamp_from_micros, timestamp_value};
use crate::catalog::{Access, Project, User, SESSION_DAYS};
use crate::keys::hash_secret;
use crate::{Result, StoreError};

fn user_from_row(row: &duckdb::Row<'_>) -> duckdb::Result<User> {
    let id: String = row.get(0)?;
    Ok(User {
        id: id.parse().unwrap_or_default(),
        email: row.get(1)?,
        password_hash: row.get(2)?,
        created_at: timestamp_from_micros(row.get(3)?),
        is_admin: row.get::<_, Option<bool>>(4)?.unwrap_or(false),
    })
}

const USER_COLUMNS: &str =
    "u.id::VARCHAR, u.email, u.password_hash, epoch_us(u.created_at), u.is_admin";

/// Accounts are made one at a time: "is this the first account?" and "is
/// this email taken?" stay true until the insert commits. DuckDB runs in one
/// process (it locks its file), so a lock in the process is enough.
static ACCOUNTS: Mutex<()> = Mutex::new(());

pub(crate) fn count_users(conn: &Connection) -> Result<usize> {
    let count: i64 = conn.query_row("SELECT count(*) FROM users", [], |row| row.get(0))?;
    Ok(count as usize)
}

/// Adds an account; the email is kept as given, compared without case. The
/// first account of a server is always an administrator, whatever `access`
/// says, so that someone can manage the others.
pub(crate) fn create_user(
    conn: &Connection,
    email: &str,
    password_hash: &str,
    access: Access,
) -> Result<User> {
    let _one_at_a_time = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let access = if count_users(conn)? == 0 {
        Access::Admin
    } else {
        access
    };
    insert_user(conn, email, password_hash, &access)
}

/// The account made on the first-start page: an administrator, made only
/// while the server has no account at all (`None` once one exists, even if
/// it was made a moment ago by a concurrent request).
pub(crate) fn create_first_user(
    conn: &Connection,
    email: &str,
    password_hash: &str,
) -> Result<Option<User>> {
    let _one_at_a_time = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    if count_users(conn)? > 0 {
        return Ok(None);
    }
    insert_user(conn, email, password_hash, &Access::Admin).map(Some)
}

/// The account and its memberships, in one transaction; the caller holds
/// [`ACCOUNTS`].
fn insert_user(
    conn: &Connection,
    email: &str,
    password_hash: &str,
    access: &Access,
) -> Result<User> {
    if find_user(conn, email)?.is_some() {
        return Err(StoreError::Conflict(format!(
            "an account for {email} already exists"
        )));
    }
    let user = User {
        id: Uuid::now_v7(),
        email: email.trim().to_string(),
        password_hash: password_hash.to_string(),
        created_at: Utc::now(),
        is_admin: matches!(access, Access::Admin),
    };
    let transaction = conn.unchecked_transaction()?;
    transaction.execute(
        "INSERT INTO users (id, email, password_hash, created_at, is_admin) VALUES (?, ?, ?, ?, ?)",
        params![
            user.id.to_string(),
            user.email,
            user.password_hash,
            timestamp_value(user.created_at),
            user.is_admin
        ],
    )?;
    if let Access::Member(projects) = access {
        for &project in projects {
            add_member(&transaction, project, user.id)?;
        }
    }
    transaction.commit()?;
    Ok(user)
}

/// Makes `user` a member of `project` (again is fine).
pub(crate) fn add_member(conn: &Connection, project: ProjectId, user: Uuid) -> Result<()> {
    if get_project(conn, project)?.is_none() {
        return Err(StoreError::NotFound(format!(
            "there is no project {project}"
        )));
    }
    conn.execute(
        "INSERT INTO project_members VALUES (?, ?) ON CONFLICT DO NOTHING",
        params![project.0, user.to_string()],
    )?;
    Ok(())
}

/// Whether `user` may see `project`: administrators see every project.
pub(crate) fn can_see_project(conn: &Connection, user: &User, project: ProjectId) -> Result<bool> {
    if user.is_admin {
        return Ok(true);
    }
    let count: i64 = conn.query_row(
        "SELECT count(*) FROM project_members WHERE project_id = ? AND user_id = ?",
        params![project.0, user.id.to_string()],
        |row| row.get(0),
    )?;
    Ok(count > 0)
}

/// The projects `user` may see, in id order.
pub(crate) fn visible_projects(conn: &Connection, user: &User) -> Result<Vec<Project>> {
    let projects = list_projects(conn)?;
    if user.is_admin {
        return Ok(projects);
    }
    let mut visible = Vec::new();
    for project in projects {
        if can_see_project(conn, user, project.id)? {
            visible.push(project);
        }
    }
    Ok(visible)
}

/// The account with this id, if it still exists.
pub(crate) fn get_user(conn: &Connection, id: Uuid) -> Result<Option<User>> {
    Ok(conn
        .query_row(
            &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?"),
            params![id.to_string()],
            user_from_row,
        )
        .optional()?)
}

pub(crate) fn find_user(conn: &Connection, email: &str) -> Result<Option<User>> {
    Ok(conn
        .query_row(
            &format!("SELECT {USER_COLUMNS} FROM users u WHERE lower(u.email) = lower(?)"),
            params![email.trim()],
            user_from_row,
        )
        .optional()?)
}

/// Starts a session for `user`; returns the token for the cookie (shown once).
pub(crate) fn create_session(conn: &Connection, user: Uuid) -> Result<String> {
    let token = Alphanumeric.sample_string(&mut rand::rng(), 48);
    let now = Utc::now();
    conn.execute(
        "INSERT INTO sessions VALUES (?, ?, ?, ?)",
        params![
            hash_secret(&token),
            user.to_string(),
            timestamp_value(now),
            timestamp_value(now + Duration::days(SESSION_DAYS))
        ],
    )?;
    Ok(token)
}

/// The user a live session token belongs to.
pub(crate) fn session_user(conn: &Connection, token: &str) -> Result<Option<User>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {USER_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = ? AND s.expires_at > ?"
            ),
            params![hash_secret(token), timestamp_value(Utc::now())],
            user_from_row,
        )
        .optional()?)
}

pub(crate) fn delete_session(conn: &Connection, token: &str) -> Result<()> {
    conn.execute(
        "DELETE FROM sessions WHERE token_hash = ? OR expires_at <= ?",
        params![hash_secret(token), timestamp_value(Utc::now())],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        crate::duck::schema::migrate(&conn, 5).unwrap();
        conn
    }

    #[test]
    fn users_sign_in_and_out() {
        let conn = conn();
        assert_eq!(count_users(&conn).unwrap(), 0);
        let user = create_user(&conn, "Admin@Example.com", "hash", Access::Admin).unwrap();
        assert!(matches!(
            create_user(&conn, "admin@example.com", "other", Access::Admin),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            find_user(&conn, "ADMIN@example.com").unwrap().unwrap().id,
            user.id
        );
        let token = create_session(&conn, user.id).unwrap();
        assert_eq!(
            session_user(&conn, &token).unwrap().unwrap().email,
            "Admin@Example.com"
        );
        assert!(session_user(&conn, "forged").unwrap().is_none());
        delete_session(&conn, &token).unwrap();
        assert!(session_user(&conn, &token).unwrap().is_none());
    }

    #[test]
    fn the_first_account_is_an_admin_and_members_see_their_projects() {
        let conn = conn();
        for name in ["One", "Two"] {
            crate::duck::projects::create_project(&conn, name, None).unwrap();
        }
        let (one, two) = (ProjectId(1), ProjectId(2));
        let first = create_user(&conn, "a@x.io", "h", Access::Member(vec![two])).unwrap();
        assert!(first.is_admin, "the first account manages the others");
        assert!(create_first_user(&conn, "b@x.io", "h").unwrap().is_none());
        let member = create_user(&conn, "m@x.io", "h", Access::Member(vec![two])).unwrap();
        assert!(!member.is_admin);
        assert!(can_see_project(&conn, &first, one).unwrap());
        assert!(!can_see_project(&conn, &member, one).unwrap());
        let visible: Vec<_> = visible_projects(&conn, &member)
            .unwrap()
            .into_iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(visible, vec![two]);
        assert!(matches!(
            create_user(&conn, "n@x.io", "h", Access::Member(vec![ProjectId(9)])),
            Err(StoreError::NotFound(_))
        ));
        assert!(
            find_user(&conn, "n@x.io").unwrap().is_none(),
            "nothing half-made"
        );
        let session = create_session(&conn, member.id).unwrap();
        assert!(!session_user(&conn, &session).unwrap().unwrap().is_admin);
    }

    #[test]
    fn concurrent_first_accounts_make_exactly_one() {
        let conn = conn();
        let made: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let conn = conn.try_clone().unwrap();
                    scope.spawn(move || {
                        create_first_user(&conn, &format!("u{i}@x.io"), "h")
                            .unwrap()
                            .is_some()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap() as usize)
                .sum()
        });
        assert_eq!(made, 1);
        assert_eq!(count_users(&conn).unwrap(), 1);
    }
}
