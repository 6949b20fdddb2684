//! Remote evaluation: `POST /flags/?v=2`, read the way posthog-python
//! reads it (records with `enabled`/`variant`/`metadata`, or the older
//! `featureFlags` + `featureFlagPayloads` maps).

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::{Answer, FlagOptions, FlagValue};
use crate::error::Error;
use crate::transport::Transport;

/// The server's answers for one request.
#[derive(Debug, Default)]
pub(crate) struct Remote {
    /// `value: None` for records the server marked failed.
    pub flags: HashMap<String, Answer>,
}

pub(crate) fn fetch(
    transport: &Transport,
    api_key: &str,
    distinct_id: &str,
    options: &FlagOptions,
    only: Option<&[&str]>,
    disable_geoip: bool,
) -> Result<Remote, Error> {
    let mut request = json!({
        "api_key": api_key,
        "distinct_id": distinct_id,
        "groups": options.groups,
        "person_properties": options.person_properties,
        "group_properties": options.group_properties,
        "geoip_disable": disable_geoip,
    });
    if let Some(keys) = only {
        request["flag_keys_to_evaluate"] = json!(keys);
    }
    let body = serde_json::to_vec(&request).expect("a JSON value serialises");
    let path = "/flags/?v=2";
    let reply = transport.post_json(path, &body, false)?;
    let url = transport.url(path);
    if reply.status != 200 {
        return Err(Error::Http {
            url,
            status: reply.status,
            body: reply.excerpt(),
        });
    }
    let document: Value = serde_json::from_str(&reply.body).map_err(|e| Error::Response {
        url: url.clone(),
        cause: e.to_string(),
    })?;
    if document["quotaLimited"]
        .as_array()
        .is_some_and(|limited| limited.iter().any(|l| l == "feature_flags"))
    {
        return Err(Error::Http {
            url,
            status: 402,
            body: "feature flags are quota limited for this project".into(),
        });
    }
    Ok(parse(&document))
}

fn parse(document: &Value) -> Remote {
    let request_id = document["requestId"].as_str().map(str::to_string);
    let flags = match document["flags"].as_object() {
        Some(records) => records
            .iter()
            .map(|(key, record)| (key.clone(), record_answer(record, request_id.clone())))
            .collect(),
        None => legacy(document, request_id),
    };
    Remote { flags }
}

fn record_answer(record: &Value, request_id: Option<String>) -> Answer {
    let metadata = &record["metadata"];
    let enabled = record["enabled"].as_bool();
    let failed = record["failed"].as_bool() == Some(true) || enabled.is_none();
    let value = (!failed).then(|| match record["variant"].as_str() {
        Some(variant) => FlagValue::Variant(variant.to_string()),
        None => FlagValue::Enabled(enabled == Some(true)),
    });
    let enabled_value = value.as_ref().is_some_and(FlagValue::is_enabled);
    Answer {
        value,
        payload: enabled_value
            .then(|| metadata.get("payload").cloned())
            .flatten()
            .filter(|p| !p.is_null())
            .map(super::payload),
        locally_evaluated: false,
        id: metadata["id"].as_i64(),
        version: metadata["version"].as_i64(),
        reason: record["reason"]["description"].as_str().map(str::to_string),
        request_id,
    }
}

/// `featureFlags: {key: true | "variant" | false}` and payloads by key.
fn legacy(document: &Value, request_id: Option<String>) -> HashMap<String, Answer> {
    let empty = Map::new();
    let payloads = document["featureFlagPayloads"]
        .as_object()
        .unwrap_or(&empty);
    document["featureFlags"]
        .as_object()
        .unwrap_or(&empty)
        .iter()
        .map(|(key, value)| {
            let value = match value {
                Value::String(variant) => FlagValue::Variant(variant.clone()),
                other => FlagValue::Enabled(other.as_bool() == Some(true)),
            };
            let answer = Answer {
                payload: value
                    .is_enabled()
                    .then(|| payloads.get(key).cloned())
                    .flatten()
                    .map(super::payload),
                value: Some(value),
                locally_evaluated: false,
                id: None,
                version: None,
                reason: None,
                request_id: request_id.clone(),
            };
            (key.clone(), answer)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_legacy_maps_read_alike() {
        let remote = parse(&json!({
            "flags": {
                "a": {"key": "a", "enabled": true, "variant": "blue",
                      "reason": {"code": "condition_match", "description": "Matched condition set 1"},
                      "metadata": {"id": 4, "version": 2, "payload": "{\"x\": 1}"}},
                "b": {"key": "b", "enabled": false, "metadata": {"id": 5, "payload": "\"off\""}},
                "c": {"key": "c", "enabled": true, "failed": true}
            },
            "requestId": "r-1"
        }));
        let a = &remote.flags["a"];
        assert_eq!(a.value, Some(FlagValue::Variant("blue".into())));
        assert_eq!(a.payload, Some(json!({"x": 1})));
        assert_eq!((a.id, a.version), (Some(4), Some(2)));
        assert_eq!(a.request_id.as_deref(), Some("r-1"));
        assert_eq!(remote.flags["b"].payload, None);
        assert_eq!(remote.flags["c"].value, None);

        let old = parse(&json!({"featureFlags": {"x": "v1", "y": false},
            "featureFlagPayloads": {"x": "[1,2]"}}));
        assert_eq!(old.flags["x"].payload, Some(json!([1, 2])));
        assert_eq!(old.flags["y"].value, Some(FlagValue::Enabled(false)));
    }
}
