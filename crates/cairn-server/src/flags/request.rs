//! What a `/flags` or `/decide` body says, whatever names and transport it
//! used (spec/flags.md §5.1). Read in two steps, so that a request whose
//! project key opens nothing is refused before anything else of it is read.

use std::collections::BTreeMap;

use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::HeaderMap;
use serde_json::{Map, Value};

use cairn_core::names::property;
use cairn_core::{json_type, DistinctId, DistinctIdError, GroupKey};
use cairn_ingest::{decode_flags_body, Transport};

use crate::error::{ApiError, ApiResult};

/// A decoded body: its JSON object.
#[derive(Debug)]
pub struct FlagsBody {
    fields: Map<String, Value>,
}

/// The request, its project found.
#[derive(Debug, Default)]
pub struct FlagRequest {
    pub distinct_id: String,
    /// Group type name → key. A type sent with an empty key is kept (its
    /// sent properties still count) and aggregates nothing.
    pub groups: BTreeMap<String, String>,
    pub person_properties: Map<String, Value>,
    pub group_properties: BTreeMap<String, Map<String, Value>>,
    pub anon_distinct_id: Option<String>,
    pub device_id: Option<String>,
    pub flag_keys: Option<Vec<String>>,
    pub disable_flags: bool,
}

/// How the body is wrapped: `?compression=` and the content headers.
pub fn transport<'a>(
    body: &'a [u8],
    compression: Option<&'a str>,
    headers: &'a HeaderMap,
) -> Transport<'a> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    Transport {
        body,
        data: None,
        compression,
        content_type: header(CONTENT_TYPE),
        content_encoding: header(CONTENT_ENCODING),
    }
}

impl FlagRequest {
    /// A request that sends no properties of its own, its ids read by the
    /// rules a body's are.
    pub fn stored_only(distinct_id: &str, groups: BTreeMap<String, String>) -> Self {
        Self {
            distinct_id: DistinctId::new(distinct_id).into_string(),
            groups: groups
                .into_iter()
                .filter_map(|(name, key)| Some((name, group_key(Value::String(key))?)))
                .collect(),
            ..Self::default()
        }
    }
}

/// A request's key for a group type: what ingestion would not attach to
/// an event names no group (`None`); a type sent with an empty key is kept.
fn group_key(key: Value) -> Option<String> {
    match GroupKey::parse(&key) {
        Ok(Some(key)) => Some(key.into_string()),
        Ok(None) => Some(String::new()),
        Err(_) => None,
    }
}

impl FlagsBody {
    /// Unwraps the transport and parses the JSON object inside.
    pub fn decode(transport: &Transport<'_>) -> ApiResult<Self> {
        let text = decode_flags_body(transport)?;
        match serde_json::from_slice::<Value>(&text) {
            Ok(Value::Object(fields)) => Ok(Self { fields }),
            Ok(other) => Err(ApiError::BadRequest(format!(
                "expected a JSON object with `token` and `distinct_id`, got {}",
                json_type(&other)
            ))),
            Err(e) => Err(ApiError::BadRequest(format!("body is not valid JSON: {e}"))),
        }
    }

    fn get(&self, names: &[&str]) -> Option<&Value> {
        names
            .iter()
            .find_map(|n| self.fields.get(*n).filter(|v| !v.is_null()))
    }

    /// The first of `names` that is present and not null, moved out.
    fn take(&mut self, names: &[&str]) -> Option<Value> {
        names
            .iter()
            .find_map(|n| self.fields.remove(*n).filter(|v| !v.is_null()))
    }

    /// An object field; absent is empty.
    fn object(&mut self, names: &[&str]) -> ApiResult<Map<String, Value>> {
        match self.take(names) {
            None => Ok(Map::new()),
            Some(Value::Object(map)) => Ok(map),
            Some(other) => Err(ApiError::field(
                names[0],
                format!("must be an object, not {}", json_type(&other)),
            )),
        }
    }

    /// The project API key, the body's only authentication.
    pub fn token(&self) -> ApiResult<&str> {
        match self.get(&["token", "api_key", property::TOKEN]) {
            Some(Value::String(token)) if !token.trim().is_empty() => Ok(token.trim()),
            _ => Err(ApiError::Unauthorized(
                "no project API key: send it as `token` (or `api_key`) in the body".into(),
            )),
        }
    }

    /// Everything else the body says.
    pub fn into_request(mut self) -> ApiResult<FlagRequest> {
        let distinct_id = DistinctId::from_request(
            self.get(&["distinct_id", property::DISTINCT_ID]),
        )
        .map_err(|error| match error {
            DistinctIdError::Type(kind) => ApiError::field(
                "distinct_id",
                format!("must be a string or a number, not {kind}"),
            ),
            DistinctIdError::Missing | DistinctIdError::Empty => {
                ApiError::field("distinct_id", "distinct_id is required")
            }
        })?;
        let groups = self
            .object(&["groups", property::GROUPS])?
            .into_iter()
            .filter_map(|(name, key)| Some((name, group_key(key)?)))
            .collect();
        let group_properties = self
            .object(&["group_properties", "$group_properties"])?
            .into_iter()
            .map(|(name, props)| match props {
                Value::Object(props) => Ok((name, props)),
                other => Err(ApiError::field(
                    "group_properties",
                    format!(
                        "group_properties.{name} must be an object, not {}",
                        json_type(&other)
                    ),
                )),
            })
            .collect::<ApiResult<_>>()?;
        let device_id = match self.get(&["device_id", property::DEVICE_ID]) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let flag_keys = match self.get(&["flag_keys_to_evaluate", "flag_keys"]) {
            None => None,
            Some(Value::Array(keys)) => Some(
                keys.iter()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect(),
            ),
            Some(other) => {
                return Err(ApiError::field(
                    "flag_keys_to_evaluate",
                    format!("must be a list of flag keys, not {}", json_type(other)),
                ))
            }
        };
        Ok(FlagRequest {
            distinct_id: distinct_id.into_string(),
            groups,
            person_properties: self.object(&["person_properties", "$properties"])?,
            group_properties,
            anon_distinct_id: DistinctId::reference(
                self.get(&[property::ANON_DISTINCT_ID, "anon_distinct_id"]),
            )
            .map(DistinctId::into_string),
            device_id,
            flag_keys,
            disable_flags: self.get(&["disable_flags"]) == Some(&Value::Bool(true)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(body: Value) -> ApiResult<FlagRequest> {
        let text = body.to_string();
        let headers = HeaderMap::new();
        FlagsBody::decode(&transport(text.as_bytes(), None, &headers))?.into_request()
    }

    #[test]
    fn ids_and_keys_are_read_as_ingestion_reads_them() {
        let read = request(json!({
            "distinct_id": "a\u{0}b",
            "$anon_distinct_id": "x".repeat(250),
            "groups": {"company": "acme\u{0}", "team": 7, "empty": "",
                "long": "k".repeat(401), "odd": ["a"]},
        }))
        .unwrap();
        assert_eq!(read.distinct_id, "a\u{FFFD}b");
        assert_eq!(read.anon_distinct_id, Some("x".repeat(200)));
        let groups: Vec<(&str, &str)> = read
            .groups
            .iter()
            .map(|(name, key)| (name.as_str(), key.as_str()))
            .collect();
        assert_eq!(
            groups,
            [("company", "acme\u{FFFD}"), ("empty", ""), ("team", "7")]
        );
    }

    #[test]
    fn an_empty_distinct_id_is_evaluated_as_posthog_does() {
        assert_eq!(request(json!({"distinct_id": ""})).unwrap().distinct_id, "");
        assert_eq!(
            request(json!({"distinct_id": 8675309}))
                .unwrap()
                .distinct_id,
            "8675309"
        );
        for body in [json!({}), json!({"distinct_id": true})] {
            let Err(ApiError::InvalidField { attr, .. }) = request(body) else {
                panic!("accepted");
            };
            assert_eq!(attr, "distinct_id");
        }
    }
}
