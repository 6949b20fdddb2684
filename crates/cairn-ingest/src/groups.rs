//! Ingestion's reading of group names: a key's rules are `GroupKey`'s, a
//! refused key becomes the warning PostHog records; group type names are
//! checked here.

use serde_json::Value;

use cairn_core::{GroupKey, GroupKeyError, WarningKind};

/// Group type names are stored in a column of this width in PostHog.
const MAX_GROUP_TYPE_CHARS: usize = 400;

/// A group key from a `$groups` value or a `$group_key`. `Ok(None)` means
/// "no group" (an empty string).
pub(crate) fn group_key(value: &Value) -> Result<Option<GroupKey>, WarningKind> {
    GroupKey::parse(value).map_err(|error| match error {
        GroupKeyError::Type(_) => WarningKind::InvalidGroupKey,
        GroupKeyError::TooLong => WarningKind::GroupKeyTooLong,
    })
}

pub(crate) fn is_valid_group_type(name: &str) -> bool {
    !name.trim().is_empty() && name.chars().count() <= MAX_GROUP_TYPE_CHARS
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refused_keys_become_warnings() {
        assert_eq!(group_key(&json!(["a"])), Err(WarningKind::InvalidGroupKey));
        assert_eq!(group_key(&json!(null)), Err(WarningKind::InvalidGroupKey));
        assert_eq!(
            group_key(&json!("k".repeat(401))),
            Err(WarningKind::GroupKeyTooLong)
        );
        assert_eq!(group_key(&json!("")), Ok(None));
    }

    #[test]
    fn group_types() {
        assert!(is_valid_group_type("company"));
        assert!(!is_valid_group_type(" "));
        assert!(!is_valid_group_type(&"t".repeat(401)));
    }
}
