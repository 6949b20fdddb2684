//! The web UI, served by the binary itself: server-rendered pages behind a
//! sign-in. Pages live under `/project/{id}/…`; they read the store through
//! the same functions as the private API.

mod actors;
mod auth;
mod charts;
mod csrf;
mod events;
mod filters;
mod flags;
mod html;
mod insights;
mod people;
mod settings;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use cairn_core::{GroupType, ProjectId};
use cairn_store::catalog::{Project, User};

use crate::error::{ApiError, ApiResult};
use crate::origin::{known_host, same_origin_posts};
use crate::state::AppState;
use crate::storage::with_storage;
use crate::throttle::sign_in_attempts;
use csrf::CsrfToken;
use html::{Section, Shell};
use maud::Markup;

pub use auth::check_new_account;

pub fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let pages = Router::new()
        .route("/", get(home))
        .route("/project/{project}/persons", get(people::persons))
        .route("/project/{project}/persons/{id}", get(people::person))
        .route("/project/{project}/groups/{index}", get(people::groups))
        .route(
            "/project/{project}/groups/{index}/{key}",
            get(people::group),
        )
        .route("/project/{project}/events", get(events::list))
        .route("/project/{project}/feature_flags", get(flags::list))
        .route(
            "/project/{project}/feature_flags/new",
            get(flags::new).post(flags::create),
        )
        .route(
            "/project/{project}/feature_flags/{id}",
            get(flags::edit).post(flags::update),
        )
        .route(
            "/project/{project}/insights",
            get(insights::page).post(insights::run),
        )
        .route("/project/{project}/insights/saved", get(insights::saved))
        .route("/project/{project}/insights/actors", get(actors::page))
        .route("/project/{project}/insights/save", post(insights::save))
        .route(
            "/project/{project}/insights/{id}/delete",
            post(insights::delete),
        )
        .route(
            "/project/{project}/settings",
            get(settings::page).post(settings::update_project),
        )
        .route(
            "/project/{project}/settings/group-types",
            post(settings::rename_group_types),
        )
        .route(
            "/project/{project}/settings/keys",
            post(settings::create_key),
        )
        .route(
            "/project/{project}/settings/keys/{id}/revoke",
            post(settings::revoke_key),
        )
        .route("/logout", post(auth::logout))
        // Layers run bottom-up: the session is found before its token is checked.
        .route_layer(from_fn(csrf::require_token))
        .route_layer(from_fn_with_state(state.clone(), require_session));
    let throttled = || from_fn_with_state(state.clone(), sign_in_attempts);
    Router::new()
        .merge(pages)
        .route(
            "/login",
            get(auth::login_page)
                .post(auth::login)
                .route_layer(throttled()),
        )
        .route(
            "/setup",
            get(auth::setup_page)
                .post(auth::setup)
                .route_layer(throttled()),
        )
        .route("/ui/style.css", get(style))
        .layer(from_fn_with_state(state.clone(), same_origin_posts))
        .layer(from_fn_with_state(state, known_host))
}

async fn style() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("style.css"),
    )
        .into_response()
}

/// Signed-in pages need a live session; others go to sign-in (or, on a
/// server with no account yet, to the first-start page).
async fn require_session(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(token) = auth::session_token(request.headers()) else {
        return Redirect::to("/login").into_response();
    };
    let lookup = token.clone();
    let user = with_storage(&state.storage, move |store| {
        store.catalog.session_user(&lookup)
    })
    .await;
    match user {
        Ok(Some(user)) => {
            let csrf = CsrfToken::for_session(&token);
            request
                .extensions_mut()
                .insert(Session { user, token, csrf });
            next.run(request).await
        }
        Ok(None) => Redirect::to("/login").into_response(),
        Err(error) => error.into_response(),
    }
}

/// The first project the account may see.
async fn home(State(state): State<Arc<AppState>>, user: SignedIn) -> ApiResult<Response> {
    let projects = with_storage(&state.storage, move |store| {
        store.catalog.visible_projects(&user.0.user)
    })
    .await?;
    let Some(first) = projects.first() else {
        return Ok((
            StatusCode::FORBIDDEN,
            html::bare_page(
                "No project yet",
                html::notice(
                    "note",
                    "Your account is not a member of any project: ask an administrator to add you.",
                ),
            ),
        )
            .into_response());
    };
    Ok(Redirect::to(&format!("/project/{}/persons", first.id)).into_response())
}

/// Who is signed in, put in the request by `require_session`.
#[derive(Clone)]
pub struct Session {
    pub user: User,
    /// The session cookie's secret, which the CSRF token is checked against.
    token: String,
    /// What this session's forms carry.
    pub csrf: CsrfToken,
}

/// What every signed-in page shows around its content.
pub struct Context {
    pub project: Project,
    pub group_types: Vec<GroupType>,
    pub user: User,
    pub csrf: CsrfToken,
}

impl Context {
    pub async fn load(state: &AppState, project: i64, session: Session) -> ApiResult<Self> {
        let id = ProjectId(project);
        let viewer = session.user.clone();
        let (project, group_types) = with_storage(&state.storage, move |store| {
            // A project the account is not a member of is as good as absent.
            if !store.catalog.can_see_project(&viewer, id)? {
                return Ok((None, Vec::new()));
            }
            let project = store.catalog.get_project(id)?;
            Ok((project, store.catalog.group_types(id)?))
        })
        .await?;
        let project =
            project.ok_or_else(|| ApiError::NotFound(format!("there is no project {id}")))?;
        Ok(Self {
            project,
            group_types,
            user: session.user,
            csrf: session.csrf,
        })
    }

    pub fn id(&self) -> ProjectId {
        self.project.id
    }

    /// The hidden field that lets a form post (see `csrf`).
    pub fn csrf_field(&self) -> Markup {
        csrf::field(&self.csrf)
    }

    pub fn page(&self, section: Section, title: &str, body: Markup) -> Response {
        self.refreshing_page(section, title, body, None)
    }

    /// A page that reloads itself every `refresh` seconds.
    pub fn refreshing_page(
        &self,
        section: Section,
        title: &str,
        body: Markup,
        refresh: Option<u32>,
    ) -> Response {
        let shell = Shell {
            project: self.project.id,
            project_name: &self.project.name,
            email: &self.user.email,
            refresh,
            csrf: &self.csrf,
        };
        html::page(&shell, section, title, body).into_response()
    }

    pub fn group_type(&self, index: u8) -> Option<&GroupType> {
        self.group_types
            .iter()
            .find(|t| t.group_type_index == index)
    }
}

/// The signed-in user and their CSRF token, put there by `require_session`.
pub type SignedIn = Extension<Session>;
