//! Property filters and how the server matches them (spec/flags.md §3.4,
//! §3.5). A missing property is never an error: each operator has a fixed
//! answer for it, and any other failure means "does not match".

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Operators a property filter can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    Exact,
    IsNot,
    Icontains,
    NotIcontains,
    StartsWith,
    NotStartsWith,
    EndsWith,
    NotEndsWith,
    IcontainsMulti,
    NotIcontainsMulti,
    Regex,
    NotRegex,
    Gt,
    Gte,
    Lt,
    Lte,
    Between,
    NotBetween,
    IsSet,
    IsNotSet,
}

impl Operator {
    /// The answer when the property is absent (the server's rule).
    fn when_missing(self) -> bool {
        matches!(
            self,
            Self::IsNot
                | Self::NotIcontains
                | Self::NotRegex
                | Self::NotStartsWith
                | Self::NotEndsWith
                | Self::NotIcontainsMulti
                | Self::IsNotSet
                | Self::NotBetween
        )
    }
}

/// One property condition of a release condition set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyFilter {
    pub key: String,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default = "default_operator", deserialize_with = "operator_or_default")]
    pub operator: Operator,
}

fn default_operator() -> Operator {
    Operator::Exact
}

/// `"operator": null` means `exact`, as an absent operator does.
fn operator_or_default<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Operator, D::Error> {
    Ok(Option::deserialize(deserializer)?.unwrap_or(Operator::Exact))
}

/// A JSON string's own text; anything else as compact JSON with object keys
/// sorted (maps keep insertion order in this workspace, so sort explicitly).
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => sorted(other).to_string(),
    }
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sorted(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn is_truthy_literal(value: &Value) -> bool {
    match value {
        Value::Bool(_) => true,
        Value::String(s) => s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false"),
        Value::Array(items) => !items.is_empty() && items.iter().all(is_truthy_literal),
        _ => false,
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        Value::Array(items) => items.iter().all(truthy),
        _ => false,
    }
}

fn exact(expected: &Value, actual: &Value) -> bool {
    if is_truthy_literal(expected) {
        return truthy(actual) == truthy(expected);
    }
    let actual = text(actual).to_lowercase();
    match expected {
        Value::Array(options) => options
            .iter()
            .any(|option| text(option).to_lowercase() == actual),
        single => text(single).to_lowercase() == actual,
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn compare(expected: &Value, actual: &Value, test: fn(f64, f64) -> bool) -> bool {
    match (number(actual), number(expected)) {
        (Some(a), Some(e)) => test(a, e),
        _ => false,
    }
}

fn between(expected: &Value, actual: &Value) -> Option<bool> {
    let Value::Array(bounds) = expected else {
        return None;
    };
    let [low, high] = bounds.as_slice() else {
        return None;
    };
    let x = number(actual).filter(|x| !x.is_nan())?;
    Some(number(low)? <= x && x <= number(high)?)
}

fn regex_matches(pattern: &Value, actual: &Value) -> Option<bool> {
    let regex = fancy_regex::RegexBuilder::new(&text(pattern))
        .backtrack_limit(10_000)
        .build()
        .ok()?;
    regex.is_match(&text(actual)).ok()
}

fn contains_any(expected: &Value, actual: &Value) -> Option<bool> {
    let Value::Array(needles) = expected else {
        return None;
    };
    let haystack = text(actual).to_ascii_lowercase();
    Some(
        needles
            .iter()
            .any(|needle| haystack.contains(&text(needle).to_ascii_lowercase())),
    )
}

/// Whether `properties` satisfy `filter`, with the server's missing-property rules.
pub fn matches(filter: &PropertyFilter, properties: &Map<String, Value>) -> bool {
    use Operator::*;
    let actual = properties.get(&filter.key);
    match filter.operator {
        IsSet => return actual.is_some(),
        IsNotSet => return actual.is_none(),
        _ => {}
    }
    let Some(actual) = actual else {
        return filter.operator.when_missing();
    };
    let Some(expected) = &filter.value else {
        return false;
    };
    let lower = |v: &Value| text(v).to_ascii_lowercase();
    match filter.operator {
        Exact => exact(expected, actual),
        IsNot => !exact(expected, actual),
        Icontains => lower(actual).contains(&lower(expected)),
        NotIcontains => !lower(actual).contains(&lower(expected)),
        StartsWith => lower(actual).starts_with(&lower(expected)),
        NotStartsWith => !lower(actual).starts_with(&lower(expected)),
        EndsWith => lower(actual).ends_with(&lower(expected)),
        NotEndsWith => !lower(actual).ends_with(&lower(expected)),
        IcontainsMulti => contains_any(expected, actual).unwrap_or(false),
        NotIcontainsMulti => contains_any(expected, actual)
            .map(|found| !found)
            .unwrap_or(false),
        Regex => regex_matches(expected, actual).unwrap_or(false),
        NotRegex => regex_matches(expected, actual)
            .map(|found| !found)
            .unwrap_or(false),
        Gt => compare(expected, actual, |a, e| a > e),
        Gte => compare(expected, actual, |a, e| a >= e),
        Lt => compare(expected, actual, |a, e| a < e),
        Lte => compare(expected, actual, |a, e| a <= e),
        Between => between(expected, actual).unwrap_or(false),
        NotBetween => between(expected, actual)
            .map(|inside| !inside)
            .unwrap_or(false),
        IsSet | IsNotSet => unreachable!("answered above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(operator: &str, value: Value, properties: Value) -> bool {
        let filter: PropertyFilter =
            serde_json::from_value(json!({"key": "k", "value": value, "operator": operator}))
                .unwrap();
        matches(&filter, properties.as_object().unwrap())
    }

    #[test]
    fn missing_properties_have_fixed_answers() {
        for op in [
            "exact",
            "icontains",
            "regex",
            "gt",
            "is_set",
            "between",
            "starts_with",
        ] {
            assert!(!check(op, json!("x"), json!({})), "{op}");
        }
        for op in [
            "is_not",
            "not_icontains",
            "not_regex",
            "is_not_set",
            "not_between",
            "not_starts_with",
        ] {
            assert!(check(op, json!("x"), json!({})), "{op}");
        }
    }

    #[test]
    fn exact_is_case_insensitive_text_and_lists_are_any_of() {
        assert!(check("exact", json!("Pro"), json!({"k": "pro"})));
        assert!(check("exact", json!(["free", "PRO"]), json!({"k": "pro"})));
        assert!(check("exact", json!(5), json!({"k": "5"})));
        assert!(check("exact", json!("null"), json!({"k": null})));
        assert!(!check("is_not", json!("pro"), json!({"k": "PRO"})));
        let null_operator: PropertyFilter =
            serde_json::from_value(json!({"key": "k", "value": "a", "operator": null})).unwrap();
        assert_eq!(null_operator.operator, Operator::Exact);
    }

    #[test]
    fn booleans_compare_by_truthiness() {
        assert!(check("exact", json!(true), json!({"k": "TRUE"})));
        assert!(check("exact", json!("false"), json!({"k": false})));
        assert!(check("exact", json!(false), json!({"k": "anything else"})));
        assert!(!check("exact", json!(true), json!({"k": 1})));
    }

    #[test]
    fn text_operators() {
        assert!(check(
            "icontains",
            json!("ACME"),
            json!({"k": "team@acme.io"})
        ));
        assert!(check(
            "not_icontains",
            json!("globex"),
            json!({"k": "team@acme.io"})
        ));
        assert!(check(
            "starts_with",
            json!("TEAM"),
            json!({"k": "team@acme.io"})
        ));
        assert!(check(
            "ends_with",
            json!(".IO"),
            json!({"k": "team@acme.io"})
        ));
        assert!(check(
            "icontains_multi",
            json!(["x", "ACME"]),
            json!({"k": "team@acme.io"})
        ));
    }

    #[test]
    fn regexes_search_and_invalid_patterns_never_match() {
        assert!(check(
            "regex",
            json!(r"^\w+@acme\.io$"),
            json!({"k": "team@acme.io"})
        ));
        assert!(
            check("regex", json!("acme"), json!({"k": "team@acme.io"})),
            "unanchored search"
        );
        assert!(!check("regex", json!("(unclosed"), json!({"k": "x"})));
        assert!(!check("not_regex", json!("(unclosed"), json!({"k": "x"})));
    }

    #[test]
    fn numeric_comparisons_parse_both_sides() {
        assert!(check("gt", json!(10), json!({"k": "11"})));
        assert!(check("lte", json!("10"), json!({"k": 10.0})));
        assert!(!check("gt", json!(10), json!({"k": "eleven"})));
        assert!(check("between", json!([1, 5]), json!({"k": 5})));
        assert!(check("not_between", json!([1, 5]), json!({"k": 6})));
    }

    #[test]
    fn objects_compare_as_json_with_sorted_keys() {
        assert!(check(
            "exact",
            json!({"b": 1, "a": [{"d": 1, "c": 2}]}),
            json!({"k": {"a": [{"c": 2, "d": 1}], "b": 1}})
        ));
        assert_eq!(text(&json!({"b": 1, "a": 2})), r#"{"a":2,"b":1}"#);
    }

    #[test]
    fn a_filter_without_a_value_does_not_match() {
        let filter: PropertyFilter =
            serde_json::from_value(json!({"key": "k", "operator": "exact"})).unwrap();
        assert!(!matches(&filter, json!({"k": "x"}).as_object().unwrap()));
    }
}
