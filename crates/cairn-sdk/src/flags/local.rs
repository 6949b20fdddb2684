//! Local evaluation: the project's flag definitions, polled with ETag
//! revalidation, evaluated by `cairn-flags` against only what the caller
//! passed. Whatever needs the server's stored state is inconclusive.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use cairn_core::time::{Clock, SystemClock};
use cairn_flags::{Evaluation, FeatureFlag, FlagSet, Inconclusive, Site, Subject};
use serde::Deserialize;
use serde_json::Value;

use super::{Answer, FlagOptions, FlagValue};
use crate::delivery::OnError;
use crate::error::Error;
use crate::transport::Transport;

/// A project's definitions, ready to evaluate.
pub(crate) struct Definitions {
    set: FlagSet,
    /// Group type name → index.
    group_types: HashMap<String, u8>,
}

#[derive(Deserialize)]
struct Document {
    #[serde(default)]
    flags: Vec<Value>,
    #[serde(default)]
    group_type_mapping: HashMap<String, String>,
}

impl Definitions {
    /// Reads `/api/feature_flag/local_evaluation`'s answer. A flag that
    /// cannot be read is left out (and named in the second value): asking
    /// for it goes to the server.
    pub fn parse(body: &str) -> Result<(Self, Vec<String>), String> {
        let document: Document = serde_json::from_str(body).map_err(|e| e.to_string())?;
        let mut unreadable = Vec::new();
        let flags: Vec<FeatureFlag> = document
            .flags
            .into_iter()
            .filter_map(|flag| {
                let key = flag
                    .get("key")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string();
                serde_json::from_value(flag)
                    .map_err(|e| unreadable.push(format!("{key}: {e}")))
                    .ok()
            })
            .collect();
        let group_types = document
            .group_type_mapping
            .into_iter()
            .filter_map(|(index, name)| Some((name, index.parse().ok()?)))
            .collect();
        Ok((
            Self {
                set: FlagSet::new(flags),
                group_types,
            },
            unreadable,
        ))
    }

    fn subject(&self, distinct_id: &str, options: &FlagOptions) -> Subject {
        let sent = options.person_properties.clone();
        let mut subject = Subject::new(Site::Sdk, distinct_id, None, sent, SystemClock.now());
        for (name, key) in &options.groups {
            let Some(&index) = self.group_types.get(name) else {
                continue;
            };
            let sent = options.group_properties.get(name).cloned();
            subject.add_group(index, key.clone(), None, sent);
        }
        subject
    }

    /// Whether every group type the flag aggregates by is in the mapping;
    /// if not, only the server can tell which groups it means.
    fn knows_group_types(&self, flag: &FeatureFlag) -> bool {
        let known: HashSet<u8> = self.group_types.values().copied().collect();
        let filters = &flag.filters;
        filters
            .groups
            .iter()
            .filter_map(|set| {
                set.aggregation_group_type_index
                    .unwrap_or(filters.aggregation_group_type_index)
            })
            .chain(filters.aggregation_group_type_index)
            .all(|index| known.contains(&index))
    }

    fn answer(flag: &FeatureFlag, evaluation: Evaluation) -> Answer {
        Answer {
            value: Some(match evaluation.variant {
                Some(variant) => FlagValue::Variant(variant),
                None => FlagValue::Enabled(evaluation.enabled),
            }),
            payload: evaluation.payload.map(super::payload),
            locally_evaluated: true,
            id: Some(flag.id),
            version: Some(flag.version),
            reason: None,
            request_id: None,
        }
    }

    /// One flag: `None` when these definitions do not have it.
    pub fn evaluate(
        &self,
        key: &str,
        distinct_id: &str,
        options: &FlagOptions,
    ) -> Option<Result<Answer, Inconclusive>> {
        let flag = self.set.get(key)?;
        if !self.knows_group_types(flag) {
            return Some(Err(Inconclusive));
        }
        let subject = self.subject(distinct_id, options);
        let result = self.set.evaluate_locally(key, &subject)?;
        Some(result.map(|evaluation| Self::answer(flag, evaluation)))
    }

    /// Every active flag; the keys that were inconclusive come second.
    pub fn evaluate_all(
        &self,
        distinct_id: &str,
        options: &FlagOptions,
    ) -> (Vec<(String, Answer)>, Vec<String>) {
        let subject = self.subject(distinct_id, options);
        let mut decided = Vec::new();
        let mut undecided = Vec::new();
        for (flag, result) in self.set.evaluate_all_locally(&subject) {
            match result {
                Ok(evaluation) if self.knows_group_types(flag) => {
                    decided.push((flag.key.clone(), Self::answer(flag, evaluation)))
                }
                _ => undecided.push(flag.key.clone()),
            }
        }
        (decided, undecided)
    }
}

/// The latest definitions, shared by the poller and every flag call.
#[derive(Default)]
pub(crate) struct Store {
    current: RwLock<Option<Arc<Definitions>>>,
    etag: Mutex<Option<String>>,
}

impl Store {
    pub fn get(&self) -> Option<Arc<Definitions>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Fetches definitions for the poller (or an explicit load).
#[derive(Clone)]
pub(crate) struct Loader {
    pub transport: Transport,
    pub personal_api_key: String,
    pub project_api_key: String,
    pub store: Arc<Store>,
    pub on_error: OnError,
}

impl Loader {
    /// Fetches the definitions unless unchanged (304).
    pub fn load(&self) -> Result<(), Error> {
        let path = format!(
            "/api/feature_flag/local_evaluation/?token={}&send_cohorts",
            form_encode(&self.project_api_key)
        );
        let etag = self
            .store
            .etag
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let reply = self
            .transport
            .get(&path, &self.personal_api_key, etag.as_deref())?;
        match reply.status {
            304 => Ok(()),
            200 => {
                let url = self.transport.url(&path);
                let (definitions, unreadable) =
                    Definitions::parse(&reply.body).map_err(|cause| Error::Response {
                        url: url.clone(),
                        cause,
                    })?;
                if !unreadable.is_empty() {
                    (self.on_error)(&Error::Response {
                        url,
                        cause: format!(
                            "flags left to the server (unreadable definitions): {}",
                            unreadable.join("; ")
                        ),
                    });
                }
                *self
                    .store
                    .current
                    .write()
                    .unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(definitions));
                *self.store.etag.lock().unwrap_or_else(|e| e.into_inner()) = reply.etag;
                Ok(())
            }
            status => Err(Error::Http {
                url: self.transport.url(&path),
                status,
                body: reply.excerpt(),
            }),
        }
    }

    /// Loads now, then every `interval` until `stop` says so (or is dropped).
    pub fn poll(self, interval: Duration, stop: Receiver<()>) {
        loop {
            if let Err(error) = self.load() {
                (self.on_error)(&error);
            }
            match stop.recv_timeout(interval) {
                Err(RecvTimeoutError::Timeout) => continue,
                _ => return,
            }
        }
    }
}

/// Percent-encodes a query value.
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn definitions(document: Value) -> Definitions {
        Definitions::parse(&document.to_string()).unwrap().0
    }

    #[test]
    fn group_flags_read_the_mapping_and_unknown_indices_go_to_the_server() {
        let defs = definitions(json!({
            "flags": [
                {"key": "big", "filters": {"aggregation_group_type_index": 0, "groups": [
                    {"properties": [{"key": "size", "type": "group", "group_type_index": 0,
                      "operator": "gt", "value": 100}]}]}},
                {"key": "orphan", "filters": {"aggregation_group_type_index": 3, "groups": [
                    {"properties": []}]}},
                {"key": "broken", "filters": {"groups": "not a list"}}
            ],
            "group_type_mapping": {"0": "company"}
        }));
        let options = FlagOptions::new()
            .group("company", "acme")
            .group_properties("company", json!({"size": 250}));
        let answer = defs.evaluate("big", "u", &options).unwrap().unwrap();
        assert_eq!(answer.value, Some(FlagValue::Enabled(true)));
        assert_eq!(
            defs.evaluate("orphan", "u", &options).unwrap(),
            Err(Inconclusive)
        );
        assert!(defs.evaluate("broken", "u", &options).is_none());
        let (decided, undecided) = defs.evaluate_all("u", &FlagOptions::new());
        // Without the company passed, the group flag is decided: no group, false.
        assert_eq!(decided[0].0, "big");
        assert_eq!(decided[0].1.value, Some(FlagValue::Enabled(false)));
        assert_eq!(undecided, ["orphan"]);
    }

    #[test]
    fn tokens_are_encoded_for_the_query() {
        assert_eq!(form_encode("phc_a+b/c"), "phc_a%2Bb%2Fc");
    }
}
