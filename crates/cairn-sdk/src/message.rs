//! The calls' arguments ([`Capture`], [`Set`], [`GroupIdentify`],
//! [`Alias`]) and the message each becomes on the wire, shaped as
//! posthog-python sends it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use uuid::Uuid;

use cairn_core::names::{event, property};

use crate::context;
use crate::error::Error;

/// What every call takes besides its own arguments.
#[derive(Debug, Clone, Default)]
pub(crate) struct Common {
    timestamp: Option<DateTime<Utc>>,
    uuid: Option<Uuid>,
    disable_geoip: Option<bool>,
}

macro_rules! common_options {
    ($($t:ty),*) => {$(
        impl $t {
            /// When it happened; default: when the call is made.
            pub fn timestamp(mut self, at: DateTime<Utc>) -> Self {
                self.common.timestamp = Some(at);
                self
            }

            /// The event's uuid, which the server deduplicates by; default: a new v7 uuid.
            pub fn uuid(mut self, uuid: Uuid) -> Self {
                self.common.uuid = Some(uuid);
                self
            }

            /// Whether the server should skip GeoIP for this event; default: the client's setting.
            pub fn disable_geoip(mut self, disable: bool) -> Self {
                self.common.disable_geoip = Some(disable);
                self
            }
        }
    )*};
}

common_options!(Capture, Set, GroupIdentify, Alias);

/// Properties as given: a JSON object, or why they cannot be sent.
type Properties = Result<Map<String, Value>, String>;

/// Merges `value` (which must serialise to a JSON object) into `into`.
/// Non-finite floats serialise to `null`, as JSON has no other spelling.
fn merge(into: &mut Properties, value: impl Serialize, what: &str) {
    let Ok(map) = into else { return };
    match serde_json::to_value(value) {
        Ok(Value::Object(more)) => map.extend(more),
        Ok(Value::Null) => {}
        Ok(other) => {
            *into = Err(format!(
                "{what} must be a JSON object, not {}",
                cairn_core::json_type(&other)
            ))
        }
        Err(error) => *into = Err(format!("{what} cannot be serialised to JSON: {error}")),
    }
}

fn insert(into: &mut Properties, key: String, value: impl Serialize, what: &str) {
    let Ok(map) = into else { return };
    match serde_json::to_value(value) {
        Ok(value) => {
            map.insert(key, value);
        }
        Err(error) => {
            *into = Err(format!(
                "{what} `{key}` cannot be serialised to JSON: {error}"
            ))
        }
    }
}

/// An event: `client.capture(Capture::new("signup_completed").distinct_id("user_456"))`.
#[derive(Debug, Clone)]
pub struct Capture {
    event: String,
    distinct_id: Option<String>,
    properties: Properties,
    groups: Groups,
    common: Common,
}

/// Group type → key, in the order given (a repeated type: the last wins).
/// A list, not a map: most events name one or two groups.
pub(crate) type Groups = Vec<(String, String)>;

impl Capture {
    /// An event named `event`, for the context's distinct id unless one is set.
    pub fn new(event: impl Into<String>) -> Self {
        Self {
            event: event.into(),
            distinct_id: None,
            properties: Ok(Map::new()),
            groups: Vec::new(),
            common: Common::default(),
        }
    }

    /// Whose event it is.
    pub fn distinct_id(mut self, distinct_id: impl Into<String>) -> Self {
        self.distinct_id = Some(distinct_id.into());
        self
    }

    /// Adds properties: anything that serialises to a JSON object, such as
    /// `json!({...})`, a map or a struct.
    pub fn properties(mut self, properties: impl Serialize) -> Self {
        merge(&mut self.properties, properties, "properties");
        self
    }

    /// Adds one property.
    pub fn property(mut self, key: impl Into<String>, value: impl Serialize) -> Self {
        insert(&mut self.properties, key.into(), value, "property");
        self
    }

    /// Associates the event with a group, e.g. `.group("company", "acme_corp")`.
    pub fn group(mut self, group_type: impl Into<String>, group_key: impl Into<String>) -> Self {
        let (group_type, group_key) = (group_type.into(), group_key.into());
        self.groups.retain(|(kind, _)| *kind != group_type);
        self.groups.push((group_type, group_key));
        self
    }
}

/// Person properties, for `client.set` (overwrite) or `client.set_once`
/// (only where not yet set).
#[derive(Debug, Clone)]
pub struct Set {
    distinct_id: Option<String>,
    properties: Properties,
    common: Common,
}

impl Set {
    /// The properties to set: anything that serialises to a JSON object.
    pub fn new(properties: impl Serialize) -> Self {
        let mut set = Self {
            distinct_id: None,
            properties: Ok(Map::new()),
            common: Common::default(),
        };
        merge(&mut set.properties, properties, "properties");
        set
    }

    /// Whose properties; default: the context's distinct id.
    pub fn distinct_id(mut self, distinct_id: impl Into<String>) -> Self {
        self.distinct_id = Some(distinct_id.into());
        self
    }
}

/// A group and its properties, for `client.group_identify`.
#[derive(Debug, Clone)]
pub struct GroupIdentify {
    group_type: String,
    group_key: String,
    properties: Properties,
    distinct_id: Option<String>,
    common: Common,
}

impl GroupIdentify {
    /// The group `group_key` of type `group_type` (`"company"`, `"team"`, ...).
    pub fn new(group_type: impl Into<String>, group_key: impl Into<String>) -> Self {
        Self {
            group_type: group_type.into(),
            group_key: group_key.into(),
            properties: Ok(Map::new()),
            distinct_id: None,
            common: Common::default(),
        }
    }

    /// Properties to set on the group: anything that serialises to a JSON object.
    pub fn properties(mut self, properties: impl Serialize) -> Self {
        merge(&mut self.properties, properties, "properties");
        self
    }

    /// Who made the change; default: the context's distinct id, else
    /// `$<group_type>_<group_key>`.
    pub fn distinct_id(mut self, distinct_id: impl Into<String>) -> Self {
        self.distinct_id = Some(distinct_id.into());
        self
    }
}

/// Links `previous_id` (say an anonymous visitor) to a distinct id, for
/// `client.alias`.
#[derive(Debug, Clone)]
pub struct Alias {
    previous_id: String,
    distinct_id: Option<String>,
    common: Common,
}

impl Alias {
    /// Links `previous_id` to the context's distinct id, unless
    /// [`Alias::distinct_id`] names one.
    pub fn new(previous_id: impl Into<String>) -> Self {
        Self {
            previous_id: previous_id.into(),
            distinct_id: None,
            common: Common::default(),
        }
    }

    /// The identified user's distinct id.
    pub fn distinct_id(mut self, distinct_id: impl Into<String>) -> Self {
        self.distinct_id = Some(distinct_id.into());
        self
    }
}

/// One event as sent in a `/batch` body.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub event: String,
    pub distinct_id: String,
    pub properties: Map<String, Value>,
    pub set: Option<Map<String, Value>>,
    pub set_once: Option<Map<String, Value>>,
    pub timestamp: DateTime<Utc>,
    pub uuid: Uuid,
    /// Written as the `$groups` property.
    pub groups: Groups,
    /// Adds `$geoip_disable: true` to the properties.
    pub disable_geoip: bool,
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut fields = serializer.serialize_map(None)?;
        fields.serialize_entry("event", &self.event)?;
        fields.serialize_entry("distinct_id", &self.distinct_id)?;
        fields.serialize_entry("properties", &Enriched(self))?;
        if let Some(set) = &self.set {
            fields.serialize_entry(property::SET, set)?;
        }
        if let Some(set_once) = &self.set_once {
            fields.serialize_entry(property::SET_ONCE, set_once)?;
        }
        fields.serialize_entry("timestamp", &self.timestamp)?;
        fields.serialize_entry("uuid", &self.uuid)?;
        fields.end()
    }
}

/// The properties with what the call and the library add (`$groups`,
/// `$lib`, `$lib_version`, `$geoip_disable`), written while serialising,
/// on the worker: inserting them into every event's map would cost the
/// caller more than the rest of the call.
struct Enriched<'a>(&'a Message);

impl Serialize for Enriched<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let message = self.0;
        let ours = |key: &str| {
            key == property::LIB
                || key == property::LIB_VERSION
                || (message.disable_geoip && key == "$geoip_disable")
                || (!message.groups.is_empty() && key == property::GROUPS)
        };
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in message.properties.iter().filter(|(k, _)| !ours(k)) {
            map.serialize_entry(key, value)?;
        }
        if !message.groups.is_empty() {
            let groups: BTreeMap<&str, &str> = message
                .groups
                .iter()
                .map(|(kind, key)| (kind.as_str(), key.as_str()))
                .collect();
            map.serialize_entry(property::GROUPS, &groups)?;
        }
        map.serialize_entry(property::LIB, crate::LIB_NAME)?;
        map.serialize_entry(property::LIB_VERSION, crate::LIB_VERSION)?;
        if message.disable_geoip {
            map.serialize_entry("$geoip_disable", &true)?;
        }
        map.end()
    }
}

/// What the client adds to every message.
pub(crate) struct Library {
    pub disable_geoip: bool,
}

/// A distinct id given, else the context's; empty ones count as none.
fn identity(given: Option<String>) -> Option<String> {
    given
        .filter(|id| !id.is_empty())
        .or_else(context::distinct_id)
        .filter(|id| !id.is_empty())
}

fn message(event: impl Into<String>, distinct_id: String, common: &Common) -> Message {
    let timestamp = common.timestamp.unwrap_or_else(Utc::now);
    Message {
        event: event.into(),
        distinct_id,
        properties: Map::new(),
        set: None,
        set_once: None,
        timestamp,
        uuid: common.uuid.unwrap_or_else(|| new_uuid(timestamp)),
        groups: Vec::new(),
        disable_geoip: false,
    }
}

/// A v7 uuid (time-ordered, like posthog-js's). Its random bits come from
/// the thread's userspace generator: `Uuid::now_v7` asks the kernel for
/// them on every call, which costs more than the rest of an enqueue.
fn new_uuid(at: DateTime<Utc>) -> Uuid {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &rand::random()).into_uuid()
}

impl Library {
    fn finish(&self, mut message: Message, common: &Common) -> Message {
        message.disable_geoip = common.disable_geoip.unwrap_or(self.disable_geoip);
        message
    }

    /// The event, with the context's tags under its own properties; `None`
    /// when there is no distinct id anywhere.
    pub fn capture(&self, capture: Capture) -> Result<Option<Message>, Error> {
        if capture.event.is_empty() {
            return Err(Error::Invalid("the event name is empty".into()));
        }
        let own = capture.properties.map_err(Error::Invalid)?;
        let Some(distinct_id) = identity(capture.distinct_id) else {
            return Ok(None);
        };
        let mut message = message(capture.event, distinct_id, &capture.common);
        message.properties = with_context(own);
        message.groups = capture.groups;
        Ok(Some(self.finish(message, &capture.common)))
    }

    /// A `$set` (or `$set_once`) event; `None` without a distinct id or
    /// without properties.
    pub fn set(&self, set: Set, once: bool) -> Result<Option<Message>, Error> {
        let own = set.properties.map_err(Error::Invalid)?;
        // One read of the scope: its tags go under the properties set.
        let scope = context::current().unwrap_or_default();
        let mut properties = scope.tags;
        properties.extend(own);
        let Some(distinct_id) = identity(set.distinct_id).filter(|_| !properties.is_empty()) else {
            return Ok(None);
        };
        let event = if once { "$set_once" } else { "$set" };
        let mut message = message(event, distinct_id, &set.common);
        if let Some(session) = scope.session_id {
            message
                .properties
                .insert(property::SESSION_ID.into(), Value::String(session));
        }
        if once {
            message.set_once = Some(properties);
        } else {
            message.set = Some(properties);
        }
        Ok(Some(self.finish(message, &set.common)))
    }

    /// A `$groupidentify` event.
    pub fn group_identify(&self, group: GroupIdentify) -> Result<Message, Error> {
        if group.group_type.is_empty() || group.group_key.is_empty() {
            return Err(Error::Invalid(
                "group_identify needs a group type and a group key".into(),
            ));
        }
        let properties = group.properties.map_err(Error::Invalid)?;
        let distinct_id = identity(group.distinct_id)
            .unwrap_or_else(|| format!("${}_{}", group.group_type, group.group_key));
        let mut message = message(event::GROUP_IDENTIFY, distinct_id, &group.common);
        let fields = &mut message.properties;
        fields.insert(property::GROUP_TYPE.into(), Value::String(group.group_type));
        fields.insert(property::GROUP_KEY.into(), Value::String(group.group_key));
        fields.insert(property::GROUP_SET.into(), Value::Object(properties));
        session(fields);
        Ok(self.finish(message, &group.common))
    }

    /// A `$create_alias` event; `None` without a distinct id to link to.
    pub fn alias(&self, alias: Alias) -> Result<Option<Message>, Error> {
        if alias.previous_id.is_empty() {
            return Err(Error::Invalid("alias needs a previous_id".into()));
        }
        let Some(distinct_id) = identity(alias.distinct_id) else {
            return Ok(None);
        };
        let mut message = message(
            event::CREATE_ALIAS,
            alias.previous_id.clone(),
            &alias.common,
        );
        let fields = &mut message.properties;
        fields.insert("distinct_id".into(), Value::String(alias.previous_id));
        fields.insert("alias".into(), Value::String(distinct_id));
        session(fields);
        Ok(Some(self.finish(message, &alias.common)))
    }
}

/// The scope's tags under `own` (which wins), with `$context_tags` naming
/// them and the scope's `$session_id`.
fn with_context(own: Map<String, Value>) -> Map<String, Value> {
    let Some(scope) = context::current() else {
        return own;
    };
    let names: Vec<Value> = scope.tags.keys().cloned().map(Value::String).collect();
    let mut properties = scope.tags;
    properties.extend(own);
    if !names.is_empty() {
        properties.insert("$context_tags".into(), Value::Array(names));
    }
    if let Some(session) = scope.session_id {
        properties
            .entry(property::SESSION_ID)
            .or_insert(Value::String(session));
    }
    properties
}

fn session(properties: &mut Map<String, Value>) {
    if let Some(session) = context::current().and_then(|scope| scope.session_id) {
        properties.insert(property::SESSION_ID.into(), Value::String(session));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const LIB: Library = Library {
        disable_geoip: true,
    };

    #[test]
    fn properties_must_be_an_object_and_non_finite_floats_become_null() {
        let error = LIB
            .capture(Capture::new("e").distinct_id("u").properties("text"))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "properties must be a JSON object, not a string"
        );
        let message = LIB
            .capture(
                Capture::new("e")
                    .distinct_id("u")
                    .property("score", f64::NAN)
                    .property("n", 1.5),
            )
            .unwrap()
            .unwrap();
        let wire = serde_json::to_value(&message).unwrap();
        assert_eq!(
            wire["properties"],
            json!({"score": null, "n": 1.5, "$lib": "cairn-sdk",
                "$lib_version": crate::LIB_VERSION, "$geoip_disable": true})
        );
    }

    #[test]
    fn groups_become_the_groups_property_and_the_last_key_per_type_wins() {
        let message = LIB
            .capture(
                Capture::new("e")
                    .distinct_id("u")
                    .property("$groups", "overridden")
                    .group("company", "a")
                    .group("team", "t")
                    .group("company", "b"),
            )
            .unwrap()
            .unwrap();
        let wire = serde_json::to_value(&message).unwrap();
        assert_eq!(
            wire["properties"]["$groups"],
            json!({"company": "b", "team": "t"})
        );
    }

    #[test]
    fn unserialisable_values_are_reported_by_name() {
        let mut odd = std::collections::HashMap::new();
        odd.insert((1, 2), "tuple keys");
        let error = LIB
            .capture(Capture::new("e").distinct_id("u").property("odd", odd))
            .unwrap_err();
        assert!(error
            .to_string()
            .starts_with("property `odd` cannot be serialised"));
    }

    #[test]
    fn without_a_distinct_id_calls_do_nothing() {
        assert!(LIB.set(Set::new(json!({"a": 1})), false).unwrap().is_none());
        assert!(LIB.capture(Capture::new("e")).unwrap().is_none());
        assert!(LIB.alias(Alias::new("anon")).unwrap().is_none());
        // Nor do sets of nothing.
        assert!(LIB
            .set(Set::new(json!({})).distinct_id("u"), true)
            .unwrap()
            .is_none());
    }

    #[test]
    fn context_tags_fold_under_own_properties() {
        let message = context::with_context(|| {
            context::identify_context("user_456");
            context::tag("plan", "free");
            context::tag("ab", "b");
            context::set_context_session("s1");
            LIB.capture(Capture::new("e").property("plan", "pro"))
                .unwrap()
                .unwrap()
        });
        assert_eq!(message.distinct_id, "user_456");
        assert_eq!(message.properties["plan"], json!("pro"));
        assert_eq!(message.properties["ab"], json!("b"));
        assert_eq!(message.properties["$session_id"], json!("s1"));
        assert_eq!(message.properties["$context_tags"], json!(["plan", "ab"]));
    }
}
