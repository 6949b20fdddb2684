//! `POST /flags` and `POST /decide`: evaluate a project's flags for one
//! person and their groups, answered in the shape the request's version asks
//! for (spec/flags.md §5). The project API key in the body authenticates.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use cairn_core::{names, ProjectId};
use cairn_flags::{Evaluation, FeatureFlag, Site, Subject};
use cairn_ingest::fill_initial_properties;

use super::request::{transport, FlagRequest, FlagsBody};
use super::{project_flags, ProjectFlags};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::with_storage;

#[derive(Debug, Default, Clone, Deserialize)]
pub struct FlagsQuery {
    v: Option<String>,
    config: Option<String>,
    compression: Option<String>,
}

/// Which endpoint was called; `/decide` has its own legacy versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Flags,
    Decide,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `{"featureFlags": ["key", …]}`: enabled keys only.
    DecideV1,
    /// `{"featureFlags": {key: value}}`: enabled flags only.
    DecideV2,
    /// `featureFlags` + `featureFlagPayloads`, disabled flags included.
    Legacy,
    /// `flags: {key: {enabled, variant, reason, metadata}}`.
    Detailed,
}

fn shape(endpoint: Endpoint, query: &FlagsQuery) -> Shape {
    let version = query.v.as_deref().map(|v| v.trim().parse::<u32>());
    match (endpoint, version) {
        (Endpoint::Flags, None) => Shape::Detailed,
        (Endpoint::Flags, Some(Ok(v))) if v >= 2 => Shape::Detailed,
        (Endpoint::Flags, Some(_)) => Shape::Legacy,
        (Endpoint::Decide, None | Some(Err(_)) | Some(Ok(0 | 1))) => Shape::DecideV1,
        (Endpoint::Decide, Some(Ok(2))) => Shape::DecideV2,
        (Endpoint::Decide, Some(Ok(3))) => Shape::Legacy,
        (Endpoint::Decide, Some(Ok(_))) => Shape::Detailed,
    }
}

/// The largest `/flags` or `/decide` body read.
const BODY_LIMIT: usize = 2 * 1024 * 1024;

pub async fn flags(
    state: State<Arc<AppState>>,
    query: Query<FlagsQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let body = crate::body::read(body, BODY_LIMIT, state.config.request_timeout).await?;
    answer(state, Endpoint::Flags, query, headers, body).await
}

pub async fn decide(
    state: State<Arc<AppState>>,
    query: Query<FlagsQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let body = crate::body::read(body, BODY_LIMIT, state.config.request_timeout).await?;
    answer(state, Endpoint::Decide, query, headers, body).await
}

/// `GET /flags`: nothing to evaluate without a body.
pub async fn flags_get() -> Json<Value> {
    Json(json!({"errorsWhileComputingFlags": false, "flags": {}, "featureFlags": {}}))
}

async fn answer(
    State(state): State<Arc<AppState>>,
    endpoint: Endpoint,
    Query(query): Query<FlagsQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let compression = query.compression.clone();
    let cheap = transport(&body, compression.as_deref(), &headers).is_cheap_to_decode();
    let decoded = crate::decoding::decode(cheap, move || {
        FlagsBody::decode(&transport(&body, compression.as_deref(), &headers))
    })
    .await?;
    let project = state.project_for_token(decoded.token()?).ok_or_else(|| {
        ApiError::Unauthorized(
            "the project API key is not valid: no project has this key (check the `token`/`api_key` field)".into(),
        )
    })?;
    let mut request = decoded.into_request()?;
    let flags = project_flags(&state, project).await?;
    // One instant per request: relative dates and `evaluatedAt` agree.
    let now = state.clock.now();
    let evaluated: Vec<(&FeatureFlag, Evaluation)> = if request.disable_flags {
        Vec::new()
    } else {
        let mut subject = subject(&state, project, &mut request, now)?;
        subject.timezone = flags.timezone;
        subject.continuity_overrides =
            continuity_overrides(&state, project, &flags, &request).await?;
        flags
            .set
            .evaluate_all(&subject, request.flag_keys.as_deref())
    };
    let shape = shape(endpoint, &query);
    let mut body = render(shape, &evaluated, now);
    if endpoint == Endpoint::Decide
        || query
            .config
            .as_deref()
            .is_some_and(|c| c == "true" || c == "1")
    {
        add_config(&mut body, flags.set.flags().iter().any(|f| f.active));
    }
    let bytes = if shape == Shape::Detailed {
        detailed(&flags, &evaluated, &body)
    } else {
        serde_json::to_vec(&body)
    }
    .map_err(|e| ApiError::Internal(format!("cannot serialise the flags answer: {e}")))?;
    Ok(([(CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// Stored properties overlaid with the request's (spec/flags.md §3.3),
/// evaluated at `now`; the request's property maps are moved, not copied.
fn subject(
    state: &AppState,
    project: ProjectId,
    request: &mut FlagRequest,
    now: DateTime<Utc>,
) -> ApiResult<Subject> {
    let stored = &state.persons;
    let device_id = request
        .device_id
        .clone()
        .or_else(|| text_property(&request.person_properties, names::property::DEVICE_ID));
    let stored_person = stored.person_properties(project, &request.distinct_id)?;
    let sent = std::mem::take(&mut request.person_properties);
    let mut subject = Subject::new(
        Site::Server,
        request.distinct_id.clone(),
        stored_person,
        sent,
        now,
    );
    fill_initial_properties(&mut subject.person_properties);
    for (index, name) in stored.group_types(project)? {
        let Some(key) = request.groups.get(&name) else {
            continue;
        };
        let stored_group = stored.group_properties(project, index, key)?;
        let sent = request.group_properties.remove(&name);
        subject.add_group(index, key.clone(), stored_group, sent);
    }
    subject.device_id = device_id;
    subject.continuity_key = request.anon_distinct_id.clone();
    Ok(subject)
}

/// Stored hash keys of the person's experience-continuity flags (writing
/// the request's `$anon_distinct_id` for flags that have none yet). Only
/// projects with such flags pay for the store round trip.
async fn continuity_overrides(
    state: &AppState,
    project: ProjectId,
    flags: &ProjectFlags,
    request: &FlagRequest,
) -> ApiResult<HashMap<String, String>> {
    let keys: Vec<String> = flags
        .set
        .flags()
        .iter()
        .filter(|f| {
            f.active
                && f.ensure_experience_continuity
                && f.filters.aggregation_group_type_index.is_none()
        })
        .map(|f| f.key.clone())
        .collect();
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    // The person as ingestion left it: what the acknowledged events made.
    let Some(person) = state.entities.person_id(project, &request.distinct_id)? else {
        return Ok(HashMap::new());
    };
    let anon = request.anon_distinct_id.clone().filter(|a| !a.is_empty());
    with_storage(&state.storage, move |store| {
        store
            .catalog
            .continuity_overrides(project, person, anon.as_deref(), &keys)
    })
    .await
}

fn text_property(properties: &Map<String, Value>, key: &str) -> Option<String> {
    properties.get(key)?.as_str().map(str::to_string)
}

fn render(
    shape: Shape,
    evaluated: &[(&FeatureFlag, Evaluation)],
    now: DateTime<Utc>,
) -> Map<String, Value> {
    let enabled = || evaluated.iter().filter(|(_, e)| e.enabled);
    let mut body = Map::new();
    match shape {
        Shape::DecideV1 => {
            let keys: Vec<&str> = enabled().map(|(f, _)| f.key.as_str()).collect();
            body.insert("featureFlags".into(), json!(keys));
        }
        Shape::DecideV2 => {
            let flags: Map<String, Value> =
                enabled().map(|(f, e)| (f.key.clone(), e.value())).collect();
            body.insert("featureFlags".into(), Value::Object(flags));
        }
        Shape::Legacy => {
            let flags: Map<String, Value> = evaluated
                .iter()
                .map(|(f, e)| (f.key.clone(), e.value()))
                .collect();
            let payloads: Map<String, Value> = evaluated
                .iter()
                .filter_map(|(f, e)| Some((f.key.clone(), e.payload.clone()?)))
                .collect();
            body.insert("featureFlags".into(), Value::Object(flags));
            body.insert("featureFlagPayloads".into(), Value::Object(payloads));
        }
        // Written straight from the evaluations by `detailed`.
        Shape::Detailed => {}
    }
    body.insert("errorsWhileComputingFlags".into(), Value::Bool(false));
    body.insert("requestId".into(), json!(uuid::Uuid::now_v7()));
    body.insert("evaluatedAt".into(), json!(now.timestamp_millis()));
    body
}

/// One flag's fixed JSON in the detailed shape, rendered when the
/// definitions load: escaping each key and field name anew for every flag
/// of every request was a tenth of the server's time.
#[derive(Debug, Clone)]
pub struct FlagHead {
    /// `"key":{"key":"key","enabled":`
    open: String,
    /// `{"id":…,"version":…,"description":null,"payload":`
    metadata: String,
}

impl FlagHead {
    pub fn of(flag: &FeatureFlag) -> Self {
        let key = Value::String(flag.key.clone()).to_string();
        Self {
            open: format!("{key}:{{\"key\":{key},\"enabled\":"),
            metadata: format!(
                "{{\"id\":{},\"version\":{},\"description\":null,\"payload\":",
                flag.id, flag.version
            ),
        }
    }
}

/// The detailed answer: `flags` first, as PostHog orders them, then the
/// fields of `rest`. Each flag is
/// `{key, enabled, variant, reason: {code, condition_index, description},
/// metadata: {id, version, description, payload, has_experiment}}`.
fn detailed(
    flags: &ProjectFlags,
    evaluated: &[(&FeatureFlag, Evaluation)],
    rest: &Map<String, Value>,
) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256 * evaluated.len() + 128);
    out.extend_from_slice(b"{\"flags\":{");
    for (n, (flag, e)) in evaluated.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        let head = match flags.heads.get(&flag.id) {
            Some(head) => Cow::Borrowed(head),
            None => Cow::Owned(FlagHead::of(flag)),
        };
        out.extend_from_slice(head.open.as_bytes());
        out.extend_from_slice(if e.enabled { b"true" } else { b"false" });
        out.extend_from_slice(b",\"variant\":");
        serde_json::to_writer(&mut out, &e.variant)?;
        out.extend_from_slice(b",\"reason\":{\"code\":");
        serde_json::to_writer(&mut out, e.reason.code())?;
        out.extend_from_slice(b",\"condition_index\":");
        serde_json::to_writer(&mut out, &e.condition_index)?;
        out.extend_from_slice(b",\"description\":");
        serde_json::to_writer(&mut out, &e.description())?;
        out.extend_from_slice(b"},\"metadata\":");
        out.extend_from_slice(head.metadata.as_bytes());
        serde_json::to_writer(&mut out, &e.payload)?;
        out.extend_from_slice(b",\"has_experiment\":false}}");
    }
    out.push(b'}');
    let rest = serde_json::to_vec(rest)?;
    if rest.len() > 2 {
        out.push(b',');
        out.extend_from_slice(&rest[1..]);
    } else {
        out.push(b'}');
    }
    Ok(out)
}

/// The remote-config fields posthog-js reads with `config=true`.
fn add_config(body: &mut Map<String, Value>, has_feature_flags: bool) {
    body.extend(super::remote_config::fields(has_feature_flags));
    body.insert("config".into(), json!({"enable_collect_everything": true}));
    body.insert("toolbarParams".into(), json!({}));
    body.insert("editorParams".into(), json!({}));
    body.insert("isAuthenticated".into(), json!(false));
}

/// One flag for a distinct id and groups, from stored properties, as
/// `/flags` would answer it (the UI's "test this flag"); `None` when the
/// project has no such flag.
pub async fn evaluate_for(
    state: &AppState,
    project: ProjectId,
    key: &str,
    distinct_id: &str,
    groups: BTreeMap<String, String>,
) -> ApiResult<Option<cairn_flags::Evaluation>> {
    let flags = project_flags(state, project).await?;
    let mut request = FlagRequest::stored_only(distinct_id, groups);
    let mut subject = subject(state, project, &mut request, state.clock.now())?;
    subject.timezone = flags.timezone;
    subject.continuity_overrides = continuity_overrides(state, project, &flags, &request).await?;
    Ok(flags.set.evaluate(key, &subject))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_pick_the_response_shape() {
        let q = |v: Option<&str>| FlagsQuery {
            v: v.map(str::to_string),
            ..FlagsQuery::default()
        };
        assert_eq!(shape(Endpoint::Flags, &q(None)), Shape::Detailed);
        assert_eq!(shape(Endpoint::Flags, &q(Some("4"))), Shape::Detailed);
        assert_eq!(shape(Endpoint::Flags, &q(Some("1"))), Shape::Legacy);
        assert_eq!(shape(Endpoint::Flags, &q(Some("x"))), Shape::Legacy);
        assert_eq!(shape(Endpoint::Decide, &q(None)), Shape::DecideV1);
        assert_eq!(shape(Endpoint::Decide, &q(Some("2"))), Shape::DecideV2);
        assert_eq!(shape(Endpoint::Decide, &q(Some("3"))), Shape::Legacy);
        assert_eq!(shape(Endpoint::Decide, &q(Some("4"))), Shape::Detailed);
    }

    /// `evaluatedAt` is the request's `now` (the server's clock), not a
    /// second reading of the machine's.
    #[test]
    fn answers_say_when_they_were_evaluated() {
        let now = DateTime::parse_from_rfc3339("2024-03-15T12:00:00.250Z")
            .unwrap()
            .to_utc();
        for shape in [Shape::DecideV1, Shape::Legacy, Shape::Detailed] {
            let body = render(shape, &[], now);
            assert_eq!(body["evaluatedAt"], json!(1_710_504_000_250_i64));
        }
    }

    #[test]
    fn the_detailed_answer_is_the_json_of_each_evaluation() {
        let flag: FeatureFlag =
            serde_json::from_value(json!({"id": 7, "key": "new \"beta\"", "version": 3})).unwrap();
        let on = Evaluation {
            enabled: true,
            variant: Some("test".into()),
            reason: cairn_flags::Reason::ConditionMatch,
            condition_index: Some(1),
            payload: Some(json!({"a": [1]})),
            group_conditions_skipped: false,
        };
        let flags = ProjectFlags::new(cairn_flags::FlagSet::new([flag.clone()]), chrono_tz::UTC);
        let mut rest = Map::new();
        rest.insert("errorsWhileComputingFlags".into(), json!(false));
        let answer = detailed(&flags, &[(&flag, on)], &rest).unwrap();
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(
            answer,
            json!({"flags": {"new \"beta\"": {"key": "new \"beta\"", "enabled": true, "variant": "test",
                "reason": {"code": "condition_match", "condition_index": 1, "description": "Matched condition set 2"},
                "metadata": {"id": 7, "version": 3, "description": null, "payload": {"a": [1]}, "has_experiment": false}}},
             "errorsWhileComputingFlags": false})
        );
        let none = detailed(&flags, &[], &Map::new()).unwrap();
        assert_eq!(none, br#"{"flags":{}}"#);
    }
}
