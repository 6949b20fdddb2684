//! Signing in: the first visit creates the admin account (or `cairn users
//! create` does), then email and password open a session held in an
//! HttpOnly, SameSite cookie. Passwords are kept as Argon2id hashes.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::State;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use cairn_store::users::{self, User, SESSION_DAYS};

use maud::{html, Markup};

use super::html::{bare_page, notice};
use crate::api::with_conn;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub const COOKIE_NAME: &str = "cairn_session";
pub const MIN_PASSWORD_CHARS: usize = 8;

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| ApiError::Internal(format!("cannot make a salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| ApiError::Internal(format!("cannot hash the password: {e}")))
}

fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// Why an email and password cannot make an account.
pub fn check_new_account(email: &str, password: &str) -> Result<(), String> {
    if !email.contains('@') || email.trim().len() < 3 {
        return Err("Enter an email address.".into());
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "The password needs at least {MIN_PASSWORD_CHARS} characters."
        ));
    }
    Ok(())
}

/// The session token from the request's cookies.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE_NAME && !value.is_empty()).then(|| value.to_string())
        })
}

/// Over HTTPS (directly or behind a proxy that says so) the cookie is
/// `Secure`, so browsers never send it in the clear.
fn session_cookie(token: &str, max_age: i64, headers: &HeaderMap) -> String {
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    let secure = if https { "; Secure" } else { "" };
    format!("{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

async fn sign_in(state: &AppState, user: &User, headers: &HeaderMap) -> ApiResult<Response> {
    let id = user.id;
    let token = with_conn(&state.store, move |conn| users::create_session(conn, id)).await?;
    let cookie = session_cookie(&token, SESSION_DAYS * 24 * 3600, headers);
    Ok(([(SET_COOKIE, cookie)], Redirect::to("/")).into_response())
}

#[derive(Deserialize)]
pub struct Credentials {
    email: String,
    password: String,
}

fn login_form(error: Option<&str>, email: &str) -> Markup {
    html! {
        @if let Some(error) = error { (notice("error", error)) }
        form.stack method="post" action="/login" {
            label for="email" { "Email" }
            input #email name="email" type="email" autocomplete="username" required value=(email);
            label for="password" { "Password" }
            input #password name="password" type="password" autocomplete="current-password" required;
            button.primary type="submit" { "Sign in" }
        }
    }
}

pub async fn login_page(State(state): State<Arc<AppState>>) -> ApiResult<Response> {
    if with_conn(&state.store, users::count_users).await? == 0 {
        return Ok(Redirect::to("/setup").into_response());
    }
    Ok(bare_page("Sign in", login_form(None, "")).into_response())
}

pub async fn login(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> ApiResult<Response> {
    let email = form.email.clone();
    let user = with_conn(&state.store, move |conn| users::find_user(conn, &email)).await?;
    match user {
        Some(user) if password_matches(&form.password, &user.password_hash) => {
            sign_in(&state, &user, &headers).await
        }
        _ => Ok(bare_page(
            "Sign in",
            login_form(
                Some("That email and password do not match an account."),
                &form.email,
            ),
        )
        .into_response()),
    }
}

pub async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(token) = session_token(&headers) {
        with_conn(&state.store, move |conn| {
            users::delete_session(conn, &token)
        })
        .await?;
    }
    Ok((
        [(SET_COOKIE, session_cookie("", 0, &headers))],
        Redirect::to("/login"),
    )
        .into_response())
}

fn setup_form(error: Option<&str>, email: &str) -> Markup {
    html! {
        p { "Create the administrator account for this Cairn server." }
        @if let Some(error) = error { (notice("error", error)) }
        form.stack method="post" action="/setup" {
            label for="email" { "Email" }
            input #email name="email" type="email" autocomplete="username" required value=(email);
            label for="password" {
                "Password " span.muted { "(at least " (MIN_PASSWORD_CHARS) " characters)" }
            }
            input #password name="password" type="password" autocomplete="new-password" minlength=(MIN_PASSWORD_CHARS) required;
            button.primary type="submit" { "Create account" }
        }
    }
}

/// The first-start page; once an account exists it sends to sign-in.
pub async fn setup_page(State(state): State<Arc<AppState>>) -> ApiResult<Response> {
    if with_conn(&state.store, users::count_users).await? > 0 {
        return Ok(Redirect::to("/login").into_response());
    }
    Ok(bare_page("Welcome to Cairn", setup_form(None, "")).into_response())
}

pub async fn setup(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> ApiResult<Response> {
    if let Err(problem) = check_new_account(&form.email, &form.password) {
        return Ok(
            bare_page("Welcome to Cairn", setup_form(Some(&problem), &form.email)).into_response(),
        );
    }
    let hash = hash_password(&form.password)?;
    let email = form.email.clone();
    // Only the very first account can be made here.
    let user = with_conn(&state.store, move |conn| {
        if users::count_users(conn)? > 0 {
            return Ok(None);
        }
        users::create_user(conn, &email, &hash).map(Some)
    })
    .await?;
    match user {
        Some(user) => sign_in(&state, &user, &headers).await,
        None => Ok(Redirect::to("/login").into_response()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_http_only_and_secure_behind_https() {
        let mut headers = HeaderMap::new();
        let plain = session_cookie("t", 60, &headers);
        assert!(
            plain.contains("HttpOnly")
                && plain.contains("SameSite=Lax")
                && !plain.contains("Secure")
        );
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        assert!(session_cookie("t", 60, &headers).ends_with("; Secure"));
        headers.insert(COOKIE, "other=1; cairn_session=abc".parse().unwrap());
        assert_eq!(session_token(&headers).as_deref(), Some("abc"));
    }

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(password_matches("correct horse", &hash));
        assert!(!password_matches("wrong", &hash));
        assert!(check_new_account("a@b.c", "short").is_err());
    }
}
