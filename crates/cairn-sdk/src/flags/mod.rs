//! Feature flags: `feature_enabled`, `get_feature_flag`,
//! `get_feature_flag_payload` and `get_all_flags`. With a personal API key
//! the client evaluates locally from polled definitions and asks the server
//! (`/flags`) only for what needs its stored state; reads send
//! `$feature_flag_called` as posthog-python does, once per distinct id,
//! flag, value and groups.

pub(crate) mod local;
pub(crate) mod remote;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{Map, Value};

use cairn_core::names::{event, property};

use crate::client::Client;
use crate::error::Error;
use crate::message::Capture;

/// A flag's value: on/off, or the variant a multivariate flag chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagValue {
    /// A boolean flag (or a multivariate one that is off).
    Enabled(bool),
    /// The variant of a multivariate flag that is on.
    Variant(String),
}

impl FlagValue {
    /// Whether the flag is on (any variant counts).
    pub fn is_enabled(&self) -> bool {
        match self {
            Self::Enabled(enabled) => *enabled,
            Self::Variant(_) => true,
        }
    }

    /// The variant, for a multivariate flag that is on.
    pub fn variant(&self) -> Option<&str> {
        match self {
            Self::Variant(variant) => Some(variant),
            Self::Enabled(_) => None,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Self::Enabled(enabled) => Value::Bool(*enabled),
            Self::Variant(variant) => Value::String(variant.clone()),
        }
    }
}

/// Who a flag is evaluated for, besides the distinct id: groups, and the
/// properties local evaluation may read.
///
/// ```
/// use cairn_sdk::FlagOptions;
/// use serde_json::json;
///
/// let options = FlagOptions::new()
///     .group("company", "acme_corp")
///     .person_properties(json!({"plan": "enterprise"}))
///     .group_properties("company", json!({"size": "large", "industry": "tech"}));
/// ```
#[derive(Debug, Clone, Default)]
pub struct FlagOptions {
    groups: BTreeMap<String, String>,
    person_properties: Map<String, Value>,
    group_properties: BTreeMap<String, Map<String, Value>>,
    only_evaluate_locally: bool,
    send_feature_flag_events: Option<bool>,
    disable_geoip: Option<bool>,
    invalid: Option<String>,
}

impl FlagOptions {
    /// No groups, no properties.
    pub fn new() -> Self {
        Self::default()
    }

    /// The group of type `group_type` the subject belongs to.
    pub fn group(mut self, group_type: impl Into<String>, group_key: impl Into<String>) -> Self {
        self.groups.insert(group_type.into(), group_key.into());
        self
    }

    /// Person properties for local evaluation (and sent to `/flags`, where
    /// they override the stored ones): anything serialising to an object.
    pub fn person_properties(mut self, properties: impl Serialize) -> Self {
        if let Some(map) = self.object(properties, "person_properties") {
            self.person_properties.extend(map);
        }
        self
    }

    /// Properties of the group of type `group_type`.
    pub fn group_properties(
        mut self,
        group_type: impl Into<String>,
        properties: impl Serialize,
    ) -> Self {
        if let Some(map) = self.object(properties, "group_properties") {
            self.group_properties
                .entry(group_type.into())
                .or_default()
                .extend(map);
        }
        self
    }

    /// Never ask the server: what local evaluation cannot decide is `None`.
    pub fn only_evaluate_locally(mut self, only: bool) -> Self {
        self.only_evaluate_locally = only;
        self
    }

    /// Whether this read sends `$feature_flag_called`; default: the client's setting.
    pub fn send_feature_flag_events(mut self, send: bool) -> Self {
        self.send_feature_flag_events = Some(send);
        self
    }

    /// Whether the server may add GeoIP person properties; default: the client's setting.
    pub fn disable_geoip(mut self, disable: bool) -> Self {
        self.disable_geoip = Some(disable);
        self
    }

    fn object(&mut self, value: impl Serialize, what: &str) -> Option<Map<String, Value>> {
        match serde_json::to_value(value) {
            Ok(Value::Object(map)) => Some(map),
            Ok(Value::Null) => None,
            Ok(_) => {
                self.invalid = Some(format!("{what} must be a JSON object"));
                None
            }
            Err(error) => {
                self.invalid = Some(format!("{what} cannot be serialised to JSON: {error}"));
                None
            }
        }
    }

    fn check(&self) -> Result<(), Error> {
        match &self.invalid {
            Some(problem) => Err(Error::Invalid(problem.clone())),
            None => Ok(()),
        }
    }
}

/// One flag's answer and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    /// `None`: the server could not compute it.
    pub value: Option<FlagValue>,
    pub payload: Option<Value>,
    pub locally_evaluated: bool,
    pub id: Option<i64>,
    pub version: Option<i64>,
    pub reason: Option<String>,
    pub request_id: Option<String>,
}

/// Payloads are stored as JSON text; a string that is not JSON stays a string.
fn payload(value: Value) -> Value {
    match value {
        Value::String(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        other => other,
    }
}

/// How many distinct ids the `$feature_flag_called` dedup remembers before
/// it starts over (posthog-python's bound).
const REPORTED_DISTINCT_IDS: usize = 50_000;

impl Client {
    /// Whether the flag is on for `distinct_id`; `None` when the flag does
    /// not exist (or cannot be decided with `only_evaluate_locally`).
    pub fn feature_enabled(
        &self,
        key: &str,
        distinct_id: &str,
        options: &FlagOptions,
    ) -> Result<Option<bool>, Error> {
        Ok(self
            .get_feature_flag(key, distinct_id, options)?
            .map(|value| value.is_enabled()))
    }

    /// The flag's value for `distinct_id`: locally when the definitions
    /// decide it, else from the server. Sends `$feature_flag_called`.
    pub fn get_feature_flag(
        &self,
        key: &str,
        distinct_id: &str,
        options: &FlagOptions,
    ) -> Result<Option<FlagValue>, Error> {
        let answer = self.answer(key, distinct_id, options)?;
        if options
            .send_feature_flag_events
            .unwrap_or(self.inner.send_feature_flag_events)
        {
            self.flag_called(key, distinct_id, options, answer.as_ref());
        }
        Ok(answer.and_then(|answer| answer.value))
    }

    /// The payload of the value the flag has for `distinct_id` (JSON
    /// payloads parsed); `None` when it is off or has none.
    pub fn get_feature_flag_payload(
        &self,
        key: &str,
        distinct_id: &str,
        options: &FlagOptions,
    ) -> Result<Option<Value>, Error> {
        Ok(self
            .answer(key, distinct_id, options)?
            .and_then(|answer| answer.payload))
    }

    /// Every flag's value for `distinct_id`. Locally decided flags need no
    /// request; if any is undecided, one `/flags` request answers the rest
    /// (its values replace local ones, except where the server failed).
    pub fn get_all_flags(
        &self,
        distinct_id: &str,
        options: &FlagOptions,
    ) -> Result<HashMap<String, FlagValue>, Error> {
        options.check()?;
        let mut values = HashMap::new();
        let definitions = self.definitions();
        let mut needs_server = true;
        if let Some(definitions) = &definitions {
            let (decided, undecided) = definitions.evaluate_all(distinct_id, options);
            values.extend(
                decided
                    .into_iter()
                    .filter_map(|(key, answer)| Some((key, answer.value?))),
            );
            needs_server = !undecided.is_empty();
        }
        if !needs_server || options.only_evaluate_locally {
            return Ok(values);
        }
        match self.remote(distinct_id, options, None) {
            Ok(remote) => {
                for (key, answer) in remote.flags {
                    if let Some(value) = answer.value {
                        values.insert(key, value);
                    }
                }
                Ok(values)
            }
            // With definitions, the local answers are still worth having.
            Err(error) if definitions.is_some() => {
                self.inner.delivery.report(&error);
                Ok(values)
            }
            Err(error) => Err(error),
        }
    }

    fn answer(
        &self,
        key: &str,
        distinct_id: &str,
        options: &FlagOptions,
    ) -> Result<Option<Answer>, Error> {
        options.check()?;
        if let Some(definitions) = self.definitions() {
            if let Some(Ok(answer)) = definitions.evaluate(key, distinct_id, options) {
                return Ok(Some(answer));
            }
        }
        if options.only_evaluate_locally {
            return Ok(None);
        }
        let mut remote = self.remote(distinct_id, options, Some(&[key]))?;
        Ok(remote.flags.remove(key))
    }

    fn definitions(&self) -> Option<std::sync::Arc<local::Definitions>> {
        self.inner.flags.store.as_ref()?.get()
    }

    fn remote(
        &self,
        distinct_id: &str,
        options: &FlagOptions,
        only: Option<&[&str]>,
    ) -> Result<remote::Remote, Error> {
        remote::fetch(
            &self.inner.flags.transport,
            &self.inner.api_key,
            distinct_id,
            options,
            only,
            options
                .disable_geoip
                .unwrap_or(self.inner.library.disable_geoip),
        )
    }

    /// `$feature_flag_called`, unless this distinct id already reported this
    /// value of this flag for these groups.
    fn flag_called(
        &self,
        key: &str,
        distinct_id: &str,
        options: &FlagOptions,
        answer: Option<&Answer>,
    ) {
        let response = answer
            .and_then(|a| a.value.as_ref())
            .map_or(Value::Null, FlagValue::to_json);
        let groups: Vec<String> = options
            .groups
            .iter()
            .map(|(kind, key)| format!("{kind}={key}"))
            .collect();
        let reported = format!("{key}\u{0}{response}\u{0}{}", groups.join("\u{0}"));
        {
            let mut seen = self
                .inner
                .flags
                .reported
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if seen.len() >= REPORTED_DISTINCT_IDS && !seen.contains_key(distinct_id) {
                seen.clear();
            }
            if !seen
                .entry(distinct_id.to_string())
                .or_default()
                .insert(reported)
            {
                return;
            }
        }
        let mut event = Capture::new(event::FEATURE_FLAG_CALLED)
            .distinct_id(distinct_id)
            .property(property::FEATURE_FLAG, key)
            .property(property::FEATURE_FLAG_RESPONSE, &response)
            .property(
                "locally_evaluated",
                answer.is_some_and(|a| a.locally_evaluated),
            )
            .property(format!("$feature/{key}"), &response);
        if let Some(answer) = answer {
            let optional = [
                ("$feature_flag_payload", answer.payload.clone()),
                (
                    "$feature_flag_request_id",
                    answer.request_id.clone().map(Value::from),
                ),
                (
                    "$feature_flag_reason",
                    answer.reason.clone().map(Value::from),
                ),
                ("$feature_flag_version", answer.version.map(Value::from)),
                ("$feature_flag_id", answer.id.map(Value::from)),
            ];
            for (name, value) in optional {
                if let Some(value) = value {
                    event = event.property(name, value);
                }
            }
        }
        for (kind, group_key) in &options.groups {
            event = event.group(kind, group_key);
        }
        if let Some(disable) = options.disable_geoip {
            event = event.disable_geoip(disable);
        }
        if let Err(error) = self.capture(event) {
            self.inner.delivery.report(&error);
        }
    }
}
