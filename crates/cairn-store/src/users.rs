//! Web UI accounts and their sign-in sessions. Passwords arrive already
//! hashed (the server hashes them); session tokens are stored as SHA-256
//! hashes, like personal API keys, so a copy of the database opens nothing.

use chrono::{DateTime, Duration, Utc};
use duckdb::{params, Connection, OptionalExt};
use rand::distr::{Alphanumeric, SampleString};
use uuid::Uuid;

use crate::duck::{timestamp_from_micros, timestamp_value};
use crate::keys::hash_secret;
use crate::{Result, StoreError};

/// How long a sign-in lasts.
pub const SESSION_DAYS: i64 = 14;

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

fn user_from_row(row: &duckdb::Row<'_>) -> duckdb::Result<User> {
    let id: String = row.get(0)?;
    Ok(User {
        id: id.parse().unwrap_or_default(),
        email: row.get(1)?,
        password_hash: row.get(2)?,
        created_at: timestamp_from_micros(row.get(3)?),
    })
}

const USER_COLUMNS: &str = "id::VARCHAR, email, password_hash, epoch_us(created_at)";

pub fn count_users(conn: &Connection) -> Result<usize> {
    let count: i64 = conn.query_row("SELECT count(*) FROM users", [], |row| row.get(0))?;
    Ok(count as usize)
}

/// Adds an account; the email is kept as given, compared without case.
pub fn create_user(conn: &Connection, email: &str, password_hash: &str) -> Result<User> {
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
    };
    conn.execute(
        "INSERT INTO users VALUES (?, ?, ?, ?)",
        params![
            user.id.to_string(),
            user.email,
            user.password_hash,
            timestamp_value(user.created_at)
        ],
    )?;
    Ok(user)
}

pub fn find_user(conn: &Connection, email: &str) -> Result<Option<User>> {
    Ok(conn
        .query_row(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE lower(email) = lower(?)"),
            params![email.trim()],
            user_from_row,
        )
        .optional()?)
}

/// Starts a session for `user`; returns the token for the cookie (shown once).
pub fn create_session(conn: &Connection, user: Uuid) -> Result<String> {
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
pub fn session_user(conn: &Connection, token: &str) -> Result<Option<User>> {
    Ok(conn
        .query_row(
            "SELECT u.id::VARCHAR, u.email, u.password_hash, epoch_us(u.created_at)
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ? AND s.expires_at > ?",
            params![hash_secret(token), timestamp_value(Utc::now())],
            user_from_row,
        )
        .optional()?)
}

pub fn delete_session(conn: &Connection, token: &str) -> Result<()> {
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
        crate::schema::migrate(&conn, 5).unwrap();
        conn
    }

    #[test]
    fn users_sign_in_and_out() {
        let conn = conn();
        assert_eq!(count_users(&conn).unwrap(), 0);
        let user = create_user(&conn, "Admin@Example.com", "hash").unwrap();
        assert!(matches!(
            create_user(&conn, "admin@example.com", "other"),
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
}
