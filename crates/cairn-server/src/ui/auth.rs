//! Signing in: the first visit creates the admin account (or `cairn users
//! create` does), then email and password open a session held in an
//! HttpOnly, SameSite cookie. Passwords are kept as Argon2id hashes (see
//! [`crate::passwords`]); posts here are throttled per address
//! ([`crate::throttle`]).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::{COOKIE, RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use cairn_store::catalog::{User, SESSION_DAYS};

use maud::{html, Markup};

use super::html::{bare_page, notice};
use crate::error::{ApiError, ApiResult};
use crate::passwords::PasswordError;
use crate::state::AppState;
use crate::storage::with_storage;

pub const COOKIE_NAME: &str = "cairn_session";
pub const MIN_PASSWORD_CHARS: usize = 8;

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

/// Over HTTPS (an https `--public-url`, or a proxy that says so) the cookie
/// is `Secure`, so browsers never send it in the clear.
fn session_cookie(
    public_url: Option<&url::Url>,
    token: &str,
    max_age: i64,
    headers: &HeaderMap,
) -> String {
    let https = public_url.is_some_and(|url| url.scheme() == "https")
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    let secure = if https { "; Secure" } else { "" };
    format!("{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

async fn sign_in(state: &AppState, user: &User, headers: &HeaderMap) -> ApiResult<Response> {
    let id = user.id;
    let token = with_storage(&state.storage, move |store| {
        store.catalog.create_session(id)
    })
    .await?;
    let cookie = session_cookie(
        state.config.public_url.as_ref(),
        &token,
        SESSION_DAYS * 24 * 3600,
        headers,
    );
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
    if with_storage(&state.storage, |store| store.catalog.count_users()).await? == 0 {
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
    let user = with_storage(&state.storage, move |store| store.catalog.find_user(&email)).await?;
    let hash = user.as_ref().map(|user| user.password_hash.clone());
    let matches = match state.passwords.matches(form.password, hash).await {
        Ok(matches) => matches,
        Err(error) => return password_trouble(error),
    };
    match user {
        Some(user) if matches => sign_in(&state, &user, &headers).await,
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

/// Passwords could not be checked now: the server is busy (503, try again)
/// or the check failed.
fn password_trouble(error: PasswordError) -> ApiResult<Response> {
    match error {
        PasswordError::Busy => Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            [(RETRY_AFTER, "10")],
            error.to_string(),
        )
            .into_response()),
        PasswordError::Failed(problem) => Err(ApiError::Internal(problem)),
    }
}

/// The answer to a first-account post once an account exists: sign in.
fn account_exists() -> Response {
    (
        StatusCode::CONFLICT,
        bare_page(
            "Sign in",
            login_form(
                Some("This server already has an account: sign in, or ask its administrator for one."),
                "",
            ),
        ),
    )
        .into_response()
}

pub async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(token) = session_token(&headers) {
        with_storage(&state.storage, move |store| {
            store.catalog.delete_session(&token)
        })
        .await?;
    }
    Ok((
        [(
            SET_COOKIE,
            session_cookie(state.config.public_url.as_ref(), "", 0, &headers),
        )],
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
    if with_storage(&state.storage, |store| store.catalog.count_users()).await? > 0 {
        return Ok(Redirect::to("/login").into_response());
    }
    Ok(bare_page("Welcome to Cairn", setup_form(None, "")).into_response())
}

/// Makes the first account. Whether one exists is checked before the
/// password is hashed (a flood of posts costs no hashing), and again,
/// atomically, when it is stored: of concurrent posts exactly one wins.
pub async fn setup(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> ApiResult<Response> {
    if with_storage(&state.storage, |store| store.catalog.count_users()).await? > 0 {
        return Ok(account_exists());
    }
    if let Err(problem) = check_new_account(&form.email, &form.password) {
        return Ok(
            bare_page("Welcome to Cairn", setup_form(Some(&problem), &form.email)).into_response(),
        );
    }
    let hash = match state.passwords.hash(form.password).await {
        Ok(hash) => hash,
        Err(error) => return password_trouble(error),
    };
    let email = form.email.clone();
    let user = with_storage(&state.storage, move |store| {
        store.catalog.create_first_user(&email, &hash)
    })
    .await?;
    match user {
        Some(user) => sign_in(&state, &user, &headers).await,
        None => Ok(account_exists()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_http_only_and_secure_behind_https() {
        let mut headers = HeaderMap::new();
        let plain = session_cookie(None, "t", 60, &headers);
        assert!(
            plain.contains("HttpOnly")
                && plain.contains("SameSite=Lax")
                && !plain.contains("Secure")
        );
        let public: url::Url = "https://cairn.example.com".parse().unwrap();
        assert!(session_cookie(Some(&public), "t", 60, &headers).ends_with("; Secure"));
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        assert!(session_cookie(None, "t", 60, &headers).ends_with("; Secure"));
        headers.insert(COOKIE, "other=1; cairn_session=abc".parse().unwrap());
        assert_eq!(session_token(&headers).as_deref(), Some("abc"));
    }

    #[test]
    fn new_accounts_need_an_email_and_a_long_password() {
        assert!(check_new_account("a@b.c", "short").is_err());
        assert!(check_new_account("nobody", "long enough").is_err());
        assert!(check_new_account("a@b.c", "long enough").is_ok());
    }
}
