//! PostHog's person rules that need no state: how `$set`, `$set_once` and
//! `$unset` change properties, and the `$initial_*` / campaign properties
//! every person-processed event carries. (Which distinct ids may never be
//! merged is `DistinctId::is_illegal`'s.)

use std::sync::LazyLock;

use serde_json::{Map, Value};

use cairn_core::names::property;
use cairn_core::Properties;

/// The person-property operations an event carries.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PropertyUpdates {
    pub set: Map<String, Value>,
    pub set_once: Map<String, Value>,
    pub unset: Vec<String>,
}

impl PropertyUpdates {
    /// Reads `$set`, `$set_once` and `$unset` (an array of names, or an
    /// object whose keys are the names) from event properties.
    pub fn from_event(properties: &Properties) -> Self {
        let object = |key: &str| match properties.get(key) {
            Some(Value::Object(map)) => map.clone(),
            _ => Map::new(),
        };
        let unset = match properties.get(property::UNSET) {
            Some(Value::Array(names)) => names
                .iter()
                .filter_map(|n| n.as_str().map(String::from))
                .collect(),
            Some(Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        };
        Self {
            set: object(property::SET),
            set_once: object(property::SET_ONCE),
            unset,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.set_once.is_empty() && self.unset.is_empty()
    }

    /// Whether [`apply`](Self::apply) would change `properties`; lets the
    /// hot path skip copying properties for events that repeat known values.
    pub fn changes(&self, properties: &Properties) -> bool {
        self.set_once
            .keys()
            .any(|key| !properties.contains_key(key))
            || self
                .set
                .iter()
                .any(|(key, value)| properties.get(key) != Some(value))
            || self.unset.iter().any(|key| properties.contains_key(key))
    }

    /// Applies the updates in PostHog's order: `$set_once` only where the key
    /// is absent, then `$set` (so it beats `$set_once`), then `$unset` (so it
    /// beats both). Returns whether anything changed.
    pub fn apply(&self, properties: &mut Properties) -> bool {
        let mut changed = false;
        for (key, value) in &self.set_once {
            if !properties.contains_key(key) {
                properties.insert(key.clone(), value.clone());
                changed = true;
            }
        }
        for (key, value) in &self.set {
            if properties.get(key) != Some(value) {
                properties.insert(key.clone(), value.clone());
                changed = true;
            }
        }
        for key in &self.unset {
            changed |= properties.remove(key).is_some();
        }
        changed
    }
}

/// Event properties PostHog copies onto the person (`$set`) and keeps the
/// first value of (`$set_once` as `$initial_<name>`).
const PERSON_PROPERTIES_FROM_EVENT: &[&str] = &[
    "$app_build",
    "$app_name",
    "$app_namespace",
    "$app_version",
    "$browser",
    "$browser_version",
    "$device_type",
    "$current_url",
    "$pathname",
    "$os",
    "$os_name",
    "$os_version",
    "$referring_domain",
    "$referrer",
    "$raw_user_agent",
];
const PERSON_PROPERTY_PREFIXES_FROM_EVENT: &[&str] = &["$screen_", "$viewport_"];
const CAMPAIGN_PROPERTIES: &[&str] = &[
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_name",
    "utm_term",
    "gclid",
    "gad_source",
    "gclsrc",
    "dclid",
    "gbraid",
    "wbraid",
    "fbclid",
    "msclkid",
    "twclid",
    "li_fat_id",
    "mc_cid",
    "igshid",
    "ttclid",
    "rdt_cid",
    "irclid",
    "_kx",
    "epik",
    "qclid",
    "sccid",
];

/// Whether an event with these properties may change its person (before
/// [`add_initial_and_campaign_properties`] lifts some of them into `$set`).
pub(crate) fn may_change_person(properties: &Properties) -> bool {
    let is_server = is_server(properties);
    properties.keys().any(|key| {
        matches!(
            key.as_str(),
            property::SET | property::SET_ONCE | property::UNSET
        ) || is_lifted_to_person(key, is_server)
    })
}

/// Sent by a server SDK, whose `$os` is the server's.
fn is_server(properties: &Properties) -> bool {
    properties.get(property::IS_SERVER) == Some(&Value::Bool(true))
}

fn is_lifted_to_person(key: &str, is_server: bool) -> bool {
    // Server SDKs report the server's OS, not the user's.
    if is_server && matches!(key, "$os" | "$os_version") {
        return false;
    }
    // Looked up for every property of every event: a set, not two list scans.
    static LIFTED: LazyLock<foldhash::HashSet<&str>> = LazyLock::new(|| {
        PERSON_PROPERTIES_FROM_EVENT
            .iter()
            .chain(CAMPAIGN_PROPERTIES)
            .copied()
            .collect()
    });
    LIFTED.contains(key)
        || PERSON_PROPERTY_PREFIXES_FROM_EVENT
            .iter()
            .any(|p| key.starts_with(p))
}

/// Adds `$initial_<name>` for each lifted property that lacks one, as flag
/// evaluation does for the person properties a request sends.
pub fn fill_initial_properties(properties: &mut Properties) {
    let missing: Vec<(String, Value)> = properties
        .iter()
        .filter(|(key, value)| !value.is_null() && is_lifted_to_person(key, false))
        .map(|(key, value)| (initial_key(key), value.clone()))
        .filter(|(initial, _)| !properties.contains_key(initial))
        .collect();
    properties.extend(missing);
}

fn initial_key(key: &str) -> String {
    format!("$initial_{}", key.trim_start_matches('$'))
}

/// Adds `$set[key]` (unless the caller set it) and `$set_once[$initial_key]`
/// for every lifted property, into the event's own `$set` / `$set_once`.
pub fn add_initial_and_campaign_properties(properties: &mut Properties) {
    let is_server = is_server(properties);
    let lifted: Vec<(String, Value)> = properties
        .iter()
        .filter(|(key, value)| !value.is_null() && is_lifted_to_person(key, is_server))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    if lifted.is_empty() {
        return;
    }
    let mut set = take_object(properties, property::SET);
    let mut set_once = take_object(properties, property::SET_ONCE);
    for (key, value) in lifted {
        set_once
            .entry(initial_key(&key))
            .or_insert_with(|| value.clone());
        set.entry(key).or_insert(value);
    }
    properties.insert(property::SET.into(), Value::Object(set));
    properties.insert(property::SET_ONCE.into(), Value::Object(set_once));
}

fn take_object(properties: &mut Properties, key: &str) -> Map<String, Value> {
    match properties.remove(key) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(value: Value) -> Properties {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn set_beats_set_once_and_unset_beats_set() {
        let updates = PropertyUpdates::from_event(&props(json!({
            "$set": {"k": 1, "z": 2}, "$set_once": {"k": 99, "o": 1}, "$unset": ["z"]
        })));
        let mut person = Properties::new();
        assert!(updates.changes(&person));
        assert!(updates.apply(&mut person));
        assert_eq!(Value::Object(person), json!({"k": 1, "o": 1}));
    }

    #[test]
    fn set_once_keeps_existing_values_even_null() {
        let mut person = props(json!({"first": "x", "gone": null}));
        let updates =
            PropertyUpdates::from_event(&props(json!({"$set_once": {"first": "y", "gone": 1}})));
        assert!(!updates.apply(&mut person));
        assert_eq!(person["first"], "x");
    }

    #[test]
    fn unset_as_object_uses_its_keys() {
        let updates = PropertyUpdates::from_event(&props(json!({"$unset": {"a": null}})));
        assert_eq!(updates.unset, vec!["a".to_string()]);
    }

    #[test]
    fn initial_and_campaign_properties() {
        let mut event = props(
            json!({"$browser": "Firefox", "utm_source": "news", "$os": "Linux",
            "$set": {"$browser": "Chrome"}}),
        );
        add_initial_and_campaign_properties(&mut event);
        assert_eq!(
            event["$set"],
            json!({"$browser": "Chrome", "utm_source": "news", "$os": "Linux"})
        );
        assert_eq!(
            event["$set_once"],
            json!({"$initial_browser": "Firefox", "$initial_utm_source": "news", "$initial_os": "Linux"})
        );

        let mut server = props(json!({"$os": "Linux", "$is_server": true}));
        add_initial_and_campaign_properties(&mut server);
        assert!(!server.contains_key("$set"));
    }

    /// Processing reads a person's record only for events that may change
    /// it: exactly those that get a `$set` of lifted properties, and no
    /// server SDK's event for its `$os` (posthog-python sends one on every
    /// event).
    #[test]
    fn only_events_that_lift_properties_may_change_their_person() {
        for (event, changes) in [
            (
                json!({"$os": "Linux", "$is_server": true, "$lib": "posthog-python"}),
                false,
            ),
            (json!({"$os": "Mac OS X", "$browser": "Firefox"}), true),
            (
                json!({"$os": "Linux", "$is_server": true, "utm_source": "ads"}),
                true,
            ),
            (json!({"$is_server": true, "$set": {"plan": "team"}}), true),
        ] {
            let mut lifted = props(event.clone());
            add_initial_and_campaign_properties(&mut lifted);
            assert_eq!(lifted.contains_key("$set"), changes, "{event}");
            assert_eq!(may_change_person(&props(event.clone())), changes, "{event}");
        }
    }
}
