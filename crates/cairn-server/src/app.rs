//! The HTTP surface: which path goes to which handler.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{delete, get, patch, post, MethodRouter};
use axum::{Json, Router};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::CorsLayer;

use crate::api::{events, feature_flags, groups, persons, projects, query, warnings};
use crate::auth::{require_metrics_access, require_personal_key, require_project_access};
use crate::capture;
use crate::error::ApiError;
use crate::flags::{definitions, evaluate, remote_config};
use crate::state::AppState;
use crate::storage::with_storage;

/// Every path PostHog's SDKs send events to (trailing slashes are trimmed
/// before routing).
const EVENT_PATHS: &[&str] = &["/e", "/i/v0/e", "/capture", "/track"];

fn capture_route<H, T>(handler: H) -> MethodRouter<Arc<AppState>>
where
    H: axum::handler::Handler<T, Arc<AppState>> + Clone,
    T: 'static,
{
    get(handler.clone())
        .post(handler)
        .options(|| async { StatusCode::OK })
}

pub fn router(state: Arc<AppState>) -> Router {
    let mut capture_routes = Router::new()
        .route("/batch", capture_route(capture::batch))
        .route("/engage", capture_route(capture::engage));
    for path in EVENT_PATHS {
        capture_routes = capture_routes.route(path, capture_route(capture::event));
    }
    // PostHog's capture answers any origin, with credentials, as browsers need.
    let capture_routes = capture_routes.layer(CorsLayer::very_permissive());

    let project_routes = Router::new()
        .route("/", get(projects::get).patch(projects::update))
        .route("/groups_types", get(groups::group_types))
        .route(
            "/groups_types/update_metadata",
            patch(groups::update_metadata).put(groups::update_metadata),
        )
        .route("/groups", get(groups::list))
        .route("/groups/find", get(groups::find))
        .route(
            "/groups/property_definitions",
            get(groups::property_definitions),
        )
        .route("/groups/property_values", get(groups::property_values))
        .route("/persons", get(persons::list))
        .route("/persons/{id}", get(persons::get))
        .route("/events", get(events::list))
        .route("/query", post(query::query))
        .route("/ingestion_warnings", get(warnings::list))
        .route(
            "/personal_api_keys",
            get(projects::list_keys).post(projects::create_key),
        )
        .route("/personal_api_keys/{key_id}", delete(projects::delete_key))
        .route(
            "/feature_flags",
            get(feature_flags::list).post(feature_flags::create),
        )
        .route(
            "/feature_flags/{flag_id}",
            get(feature_flags::get)
                .patch(feature_flags::update)
                .put(feature_flags::update)
                .delete(feature_flags::delete),
        )
        .route_layer(from_fn(require_project_access));
    let api_routes = Router::new()
        .route("/api/projects", get(projects::list).post(projects::create))
        // SDKs fetching definitions for local evaluation (old and new paths).
        .route("/flags/definitions", get(definitions::definitions))
        .route(
            "/api/feature_flag/local_evaluation",
            get(definitions::definitions),
        )
        .nest("/api/projects/{project_id}", project_routes)
        // Bodies are read once the key is known good.
        .route_layer(from_fn_with_state(state.clone(), crate::body::read_whole))
        .route_layer(from_fn_with_state(state.clone(), require_personal_key));

    // Remote evaluation: the project key in the body authenticates.
    let flag_routes = Router::new()
        .route(
            "/flags",
            get(evaluate::flags_get)
                .post(evaluate::flags)
                .options(|| async { StatusCode::OK }),
        )
        .route(
            "/decide",
            post(evaluate::decide).options(|| async { StatusCode::OK }),
        )
        .route("/array/{token}/config", get(remote_config::json))
        .route("/array/{token}/config.js", get(remote_config::script))
        .layer(CorsLayer::very_permissive());

    Router::new()
        .merge(capture_routes)
        .merge(flag_routes)
        .merge(api_routes)
        .merge(
            crate::ui::router(state.clone())
                .layer(from_fn_with_state(state.clone(), crate::body::read_whole)),
        )
        .route("/_health", get(health))
        .route(
            "/metrics",
            get(metrics).route_layer(from_fn_with_state(state.clone(), require_metrics_access)),
        )
        .fallback(|uri: axum::http::Uri| async move {
            ApiError::NotFound(format!("no such endpoint: {}", uri.path()))
        })
        // Inside the security headers, so a panic's 500 carries them too.
        .layer(CatchPanicLayer::custom(crate::error::panic_response))
        .layer(from_fn(crate::security_headers::add))
        .with_state(state)
}

async fn health(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
) -> Json<serde_json::Value> {
    Json(json!({"status": "ok", "ingest_queue_depth": state.pipeline.queue_depth()}))
}

async fn metrics(axum::extract::State(state): axum::extract::State<Arc<AppState>>) -> String {
    let memory = with_storage(&state.storage, |store| store.events.memory_used());
    if let Ok(tags) = memory.await {
        for (tag, bytes) in tags {
            metrics::gauge!("cairn_database_memory_bytes", "tag" => tag).set(bytes as f64);
        }
    }
    let entities = state.entities.clone();
    if let Ok(stats) = tokio::task::spawn_blocking(move || entities.stats()).await {
        metrics::gauge!("cairn_entity_cache_bytes").set(stats.cache_bytes as f64);
        metrics::gauge!("cairn_entity_cache_capacity_bytes").set(stats.cache_capacity as f64);
        metrics::gauge!("cairn_entity_cache_entries").set(stats.cache_entries as f64);
        metrics::counter!("cairn_entity_cache_hits_total").absolute(stats.cache_hits);
        metrics::counter!("cairn_entity_cache_misses_total").absolute(stats.cache_misses);
        let lookups = stats.cache_hits + stats.cache_misses;
        let hit_rate = if lookups == 0 {
            0.0
        } else {
            stats.cache_hits as f64 / lookups as f64
        };
        metrics::gauge!("cairn_entity_cache_hit_rate").set(hit_rate);
        metrics::gauge!("cairn_entity_store_disk_bytes").set(stats.disk_bytes as f64);
        metrics::gauge!("cairn_entity_store_block_cache_bytes").set(stats.block_cache_bytes as f64);
        metrics::gauge!("cairn_entity_store_write_buffer_bytes")
            .set(stats.write_buffer_bytes as f64);
    }
    state.metrics.render()
}
