//! Rules for group keys and group types that need no state.

use serde_json::Value;

use cairn_core::WarningKind;

/// PostHog drops group keys longer than this.
pub const MAX_GROUP_KEY_CHARS: usize = 400;
/// Group type names are stored in a column of this width in PostHog.
pub const MAX_GROUP_TYPE_CHARS: usize = 400;

/// A group key from a `$groups` value or a `$group_key`: strings as they are,
/// numbers as text. `Ok(None)` means "no group" (an empty string).
pub fn group_key(value: &Value) -> Result<Option<String>, WarningKind> {
    let key = match value {
        Value::String(key) if key.is_empty() => return Ok(None),
        Value::String(key) => key.replace('\0', "\u{FFFD}"),
        Value::Number(n) => n.to_string(),
        _ => return Err(WarningKind::InvalidGroupKey),
    };
    if key.chars().count() > MAX_GROUP_KEY_CHARS {
        return Err(WarningKind::GroupKeyTooLong);
    }
    Ok(Some(key))
}

pub fn is_valid_group_type(name: &str) -> bool {
    !name.trim().is_empty() && name.chars().count() <= MAX_GROUP_TYPE_CHARS
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys() {
        assert_eq!(group_key(&json!("acme")), Ok(Some("acme".into())));
        assert_eq!(group_key(&json!(42)), Ok(Some("42".into())));
        assert_eq!(group_key(&json!("")), Ok(None));
        assert_eq!(group_key(&json!(["a"])), Err(WarningKind::InvalidGroupKey));
        assert_eq!(group_key(&json!(null)), Err(WarningKind::InvalidGroupKey));
        assert_eq!(
            group_key(&json!("k".repeat(401))),
            Err(WarningKind::GroupKeyTooLong)
        );
        assert_eq!(
            group_key(&json!("k".repeat(400))).unwrap().unwrap().len(),
            400
        );
    }
}
