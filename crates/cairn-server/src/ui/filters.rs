//! Property filters as forms enter them: the operators offered, and the
//! typed value a filter gets from the text typed in.

use serde_json::Value;

pub const OPERATORS: [(&str, &str); 13] = [
    ("exact", "equals (comma-separated: any of)"),
    ("is_not", "does not equal"),
    ("icontains", "contains"),
    ("not_icontains", "does not contain"),
    ("regex", "matches regex"),
    ("gt", "greater than"),
    ("gte", "at least"),
    ("lt", "less than"),
    ("lte", "at most"),
    ("is_set", "is set"),
    ("is_not_set", "is not set"),
    ("is_date_before", "date before"),
    ("is_date_after", "date after"),
];

/// The operators as `(value, label)` pairs for a `<select>`.
pub fn operator_options() -> Vec<(String, String)> {
    OPERATORS
        .iter()
        .map(|(value, label)| (value.to_string(), label.to_string()))
        .collect()
}

/// The filter value for `text` under `operator`: none for set checks,
/// numbers for comparisons, a list for "equals a, b".
pub fn value(operator: &str, text: &str) -> Option<Value> {
    match operator {
        "is_set" | "is_not_set" => None,
        "gt" | "gte" | "lt" | "lte" => Some(
            text.parse::<f64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(text.to_string())),
        ),
        "exact" | "is_not" if text.contains(',') => Some(Value::Array(
            text.split(',')
                .map(|v| Value::String(v.trim().to_string()))
                .collect(),
        )),
        _ => Some(Value::String(text.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::value;

    #[test]
    fn typed_values_follow_the_operator() {
        assert_eq!(value("exact", "pro, team"), Some(json!(["pro", "team"])));
        assert_eq!(value("gt", "10"), Some(json!(10.0)));
        assert_eq!(value("is_set", "x"), None);
        assert_eq!(value("icontains", "a,b"), Some(json!("a,b")));
    }
}
