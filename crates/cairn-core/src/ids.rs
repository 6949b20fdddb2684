//! The names clients give persons and groups: distinct ids and group keys.
//! Capture, person processing and `/flags` read them through these types
//! only, so an id sent to one means the same to the others (spec/ingest.md
//! §1.5, §3.3 and §4.2; spec/flags.md §4 and §5.1):
//!
//! - a string is taken as it is, a number as its decimal text;
//! - NUL becomes U+FFFD (as PostHog's capture does), so that `/flags` finds
//!   the person or group ingestion stored under the same id;
//! - a distinct id is cut at 200 characters; a group key longer than 400
//!   names no group (ingestion refuses to create one);
//! - an empty group key names no group. An empty distinct id is refused on
//!   events, but a `/flags` request may send one: PostHog evaluates it
//!   (its hash is 0, inside every rollout) — a deliberate difference of
//!   PostHog's that both entry points keep.

use std::fmt;

use serde_json::Value;

/// A distinct id in its stored form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DistinctId(String);

/// Why a distinct id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistinctIdError {
    /// Absent or `null`.
    Missing,
    /// The empty string, where one is not allowed.
    Empty,
    /// A JSON value of a type that cannot name a person here.
    Type(&'static str),
}

/// Case-insensitive ids that buggy clients send for everyone.
const ILLEGAL_IDS_ANY_CASE: &[&str] = &[
    "anonymous",
    "guest",
    "distinctid",
    "distinct_id",
    "id",
    "not_authenticated",
    "email",
    "undefined",
    "true",
    "false",
];
/// Case-sensitive ones: `Null` or `nan` are taken for real ids.
const ILLEGAL_IDS_EXACT: &[&str] = &[
    "[object Object]",
    "NaN",
    "None",
    "none",
    "null",
    "0",
    "undefined",
];

impl DistinctId {
    /// PostHog cuts distinct ids to this many characters.
    pub const MAX_CHARS: usize = 200;

    /// Text in its stored form: NUL replaced, cut at [`Self::MAX_CHARS`].
    /// May be empty; the entry points decide whether that is allowed.
    pub fn new(text: impl Into<String>) -> Self {
        let mut text: String = text.into();
        if text.contains('\0') {
            text = text.replace('\0', "\u{FFFD}");
        }
        if let Some((byte_index, _)) = text.char_indices().nth(Self::MAX_CHARS) {
            text.truncate(byte_index);
        }
        Self(text)
    }

    /// An event's distinct id: any JSON value but null, one that is not a
    /// string read as its JSON text (`42` → `"42"`, `true` → `"true"`), as
    /// PostHog's capture does. Empty is refused.
    pub fn from_event(value: Option<Value>) -> Result<Self, DistinctIdError> {
        let text = match value {
            None | Some(Value::Null) => return Err(DistinctIdError::Missing),
            Some(Value::String(id)) => id,
            Some(other) => other.to_string(),
        };
        if text.is_empty() {
            return Err(DistinctIdError::Empty);
        }
        Ok(Self::new(text))
    }

    /// A `/flags` request's distinct id: a string or a number (PostHog's
    /// flags service refuses other types). Empty is allowed, as there.
    pub fn from_request(value: Option<&Value>) -> Result<Self, DistinctIdError> {
        match value {
            None | Some(Value::Null) => Err(DistinctIdError::Missing),
            Some(Value::String(id)) => Ok(Self::new(id.as_str())),
            Some(Value::Number(n)) => Ok(Self::new(n.to_string())),
            Some(other) => Err(DistinctIdError::Type(json_type(other))),
        }
    }

    /// An id that refers to another distinct id (`$anon_distinct_id`,
    /// `alias`, `/flags`' `$anon_distinct_id`): a non-empty string or a
    /// number; anything else refers to nobody.
    pub fn reference(value: Option<&Value>) -> Option<Self> {
        match value? {
            Value::String(id) if !id.is_empty() => Some(Self::new(id.as_str())),
            Value::Number(n) => Some(Self::new(n.to_string())),
            _ => None,
        }
    }

    /// Whether this is one of the ids buggy clients send for everyone
    /// (PostHog's `isDistinctIdIllegal`): blank, or on its list, bare or
    /// quoted. Merging on one would fuse unrelated people.
    pub fn is_illegal(&self) -> bool {
        let trimmed = self.0.trim();
        if trimmed.is_empty() {
            return true;
        }
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| trimmed.strip_prefix(*q)?.strip_suffix(*q))
            .unwrap_or(trimmed);
        [trimmed, unquoted].into_iter().any(|candidate| {
            ILLEGAL_IDS_EXACT.contains(&candidate)
                || ILLEGAL_IDS_ANY_CASE
                    .iter()
                    .any(|illegal| candidate.eq_ignore_ascii_case(illegal))
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A group key in its stored form: never empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey(String);

/// Why a group key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKeyError {
    /// Neither a string nor a number.
    Type(&'static str),
    /// Longer than [`GroupKey::MAX_CHARS`].
    TooLong,
}

impl GroupKey {
    /// PostHog drops group keys longer than this.
    pub const MAX_CHARS: usize = 400;

    /// A group key from `$groups`, `$group_key` or a `/flags` request's
    /// `groups`: a string, or a number as its decimal text. `Ok(None)` for
    /// the empty string, which names no group.
    pub fn parse(value: &Value) -> Result<Option<Self>, GroupKeyError> {
        let key = match value {
            Value::String(key) if key.is_empty() => return Ok(None),
            Value::String(key) => key.replace('\0', "\u{FFFD}"),
            Value::Number(n) => n.to_string(),
            other => return Err(GroupKeyError::Type(json_type(other))),
        };
        if key.chars().nth(Self::MAX_CHARS).is_some() {
            return Err(GroupKeyError::TooLong);
        }
        Ok(Some(Self(key)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

macro_rules! text_id {
    ($name:ident) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

text_id!(DistinctId);

/// Through [`DistinctId::new`]: cut and cleaned like every other.
impl From<&str> for DistinctId {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl From<String> for DistinctId {
    fn from(text: String) -> Self {
        Self::new(text)
    }
}
text_id!(GroupKey);

/// The JSON type of a value, as error messages name it.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn distinct_ids_are_text_without_nul_and_at_most_200_chars() {
        assert_eq!(DistinctId::new("a\0b").as_str(), "a\u{FFFD}b");
        assert_eq!(
            DistinctId::new("é".repeat(250)).as_str().chars().count(),
            200
        );
        let event = |v: Value| DistinctId::from_event(Some(v)).map(String::from);
        assert_eq!(event(json!(42)), Ok("42".into()));
        assert_eq!(event(json!(true)), Ok("true".into()));
        assert_eq!(event(json!("a\0")), Ok("a\u{FFFD}".into()));
        assert_eq!(event(json!("")), Err(DistinctIdError::Empty));
        assert_eq!(event(json!(null)), Err(DistinctIdError::Missing));
        assert_eq!(DistinctId::from_event(None), Err(DistinctIdError::Missing));
    }

    #[test]
    fn a_flags_request_may_send_an_empty_id_but_only_text_or_numbers() {
        let request = |v: Value| DistinctId::from_request(Some(&v)).map(String::from);
        assert_eq!(request(json!("")), Ok(String::new()));
        assert_eq!(request(json!(8675309)), Ok("8675309".into()));
        assert_eq!(request(json!("a\0")), Ok("a\u{FFFD}".into()));
        assert_eq!(request(json!("x".repeat(201))), Ok("x".repeat(200)));
        assert_eq!(
            request(json!(true)),
            Err(DistinctIdError::Type("a boolean"))
        );
        assert_eq!(request(json!(null)), Err(DistinctIdError::Missing));
    }

    #[test]
    fn references_are_canonical_like_the_ids_they_name() {
        let reference = |v: Value| DistinctId::reference(Some(&v)).map(String::from);
        assert_eq!(reference(json!("a\0b")), Some("a\u{FFFD}b".into()));
        assert_eq!(reference(json!("y".repeat(250))), Some("y".repeat(200)));
        assert_eq!(reference(json!(7)), Some("7".into()));
        assert_eq!(reference(json!("")), None);
        assert_eq!(reference(json!(false)), None);
        assert_eq!(DistinctId::reference(None), None);
    }

    #[test]
    fn illegal_ids() {
        for id in [
            "anonymous",
            "Anonymous",
            "GUEST",
            "null",
            "'null'",
            "\"undefined\"",
            "0",
            "[object Object]",
            "  ",
            "",
            "NaN",
        ] {
            assert!(DistinctId::new(id).is_illegal(), "{id}");
        }
        for id in ["Null", "nan", "user-1", "00", "anonymous_user_abc123"] {
            assert!(!DistinctId::new(id).is_illegal(), "{id}");
        }
    }

    #[test]
    fn group_keys() {
        let key = |v: Value| GroupKey::parse(&v).map(|k| k.map(String::from));
        assert_eq!(key(json!("acme")), Ok(Some("acme".into())));
        assert_eq!(key(json!(42)), Ok(Some("42".into())));
        assert_eq!(key(json!("a\0")), Ok(Some("a\u{FFFD}".into())));
        assert_eq!(key(json!("")), Ok(None));
        assert_eq!(key(json!(["a"])), Err(GroupKeyError::Type("an array")));
        assert_eq!(key(json!(null)), Err(GroupKeyError::Type("null")));
        assert_eq!(key(json!("k".repeat(401))), Err(GroupKeyError::TooLong));
        assert_eq!(key(json!("é".repeat(400))).unwrap().unwrap().len(), 800);
    }
}
