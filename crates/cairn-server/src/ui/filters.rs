//! Property filters as forms enter them: the operators offered, the typed
//! value a filter gets from the text typed in, and the filter itself.

use maud::{html, Markup};
use serde_json::{json, Value};

use cairn_flags::operators::ValueKind;
use cairn_flags::Operator;

/// The operators forms offer; names, labels and value shapes are the
/// operator table's (`cairn_flags::operators`).
pub const OFFERED: [Operator; 13] = [
    Operator::Exact,
    Operator::IsNot,
    Operator::Icontains,
    Operator::NotIcontains,
    Operator::Regex,
    Operator::Gt,
    Operator::Gte,
    Operator::Lt,
    Operator::Lte,
    Operator::IsSet,
    Operator::IsNotSet,
    Operator::IsDateBefore,
    Operator::IsDateAfter,
];

/// The operators as `(value, label)` pairs for a `<select>`.
pub fn operator_options() -> Vec<(String, String)> {
    OFFERED
        .iter()
        .map(|op| (op.rule().name.to_string(), op.rule().label.to_string()))
        .collect()
}

/// A form's property, operator and value fields (`filter_key`,
/// `filter_op`, `filter_value`).
pub fn fields(key: &str, operator: &str, value: &str, example: &str) -> Markup {
    let operators = operator_options();
    html! {
        label for="filter_key" { "Filter property" }
        input #filter_key name="filter_key" value=(key) placeholder={"e.g. " (example)};
        label for="filter_op" { "Filter operator" }
        select #filter_op name="filter_op" {
            (super::insights::options(operators.iter().map(|(v, l)| (v.as_str(), l.clone())), operator))
        }
        label for="filter_value" { "Filter value" }
        input #filter_value name="filter_value" value=(value);
    }
}

/// The filter value for `text` under `operator`: none for set checks,
/// numbers for comparisons, a list for "equals a, b".
pub fn value(operator: &str, text: &str) -> Option<Value> {
    let kind = Operator::from_name(operator).map(|op| op.rule().value);
    match kind {
        Some(ValueKind::None) => None,
        Some(ValueKind::Number) => Some(
            text.parse::<f64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(text.to_string())),
        ),
        Some(ValueKind::TextList) if text.contains(',') => Some(Value::Array(
            text.split(',')
                .map(|v| Value::String(v.trim().to_string()))
                .collect(),
        )),
        _ => Some(Value::String(text.to_string())),
    }
}

/// The filter a form's fields describe, if a key is given: `kind` is
/// `event`, `person` or `group:<index>` (whose properties it reads).
pub fn property(kind: &str, key: &str, operator: &str, text: &str) -> Option<Value> {
    let key = key.trim();
    if key.is_empty() {
        return None;
    }
    let mut filter = match kind.strip_prefix("group:") {
        Some(index) => json!({"key": key, "type": "group",
            "group_type_index": index.parse::<u8>().unwrap_or(0)}),
        None => json!({"key": key, "type": kind}),
    };
    filter["operator"] = json!(operator);
    if let Some(value) = value(operator, text.trim()) {
        filter["value"] = value;
    }
    Some(filter)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{property, value, OFFERED};

    #[test]
    fn typed_values_follow_the_operator() {
        assert_eq!(value("exact", "pro, team"), Some(json!(["pro", "team"])));
        assert_eq!(value("gt", "10"), Some(json!(10.0)));
        assert_eq!(value("is_set", "x"), None);
        assert_eq!(value("icontains", "a,b"), Some(json!("a,b")));
    }

    #[test]
    fn filters_read_the_kind_of_property() {
        assert_eq!(
            property("group:1", " plan ", "exact", "pro"),
            Some(
                json!({"key": "plan", "type": "group", "group_type_index": 1,
                "operator": "exact", "value": "pro"})
            )
        );
        assert_eq!(
            property("person", "email", "is_set", ""),
            Some(json!({"key": "email", "type": "person", "operator": "is_set"}))
        );
        assert_eq!(property("person", " ", "exact", "x"), None);
    }

    /// Forms build filters for insights and flags alike.
    #[test]
    fn offered_operators_work_in_insights_and_flags() {
        assert!(OFFERED.iter().all(|op| op.rule().insights));
    }
}
