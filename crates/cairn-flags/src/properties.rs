//! Property filters and how the server matches them (spec/flags.md §3.4,
//! §3.5). A missing property is never an error: each operator has a fixed
//! answer for it, and any other failure means "does not match".

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::operators::Operator;
use crate::operators::{is_truthy_literal, number, text, truthy, Fold};
use crate::{dates, versions};

/// Which properties a filter reads, or what else it tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterKind {
    Person,
    Group,
    Cohort,
    /// Another flag's value (a flag dependency).
    Flag,
}

/// One property condition of a release condition set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyFilter {
    pub key: String,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default = "default_operator", deserialize_with = "operator_or_default")]
    pub operator: Operator,
    /// Absent: the properties of the condition's aggregation (person or group).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<FilterKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_type_index: Option<u8>,
    /// For flag dependencies: the flags to evaluate first, ending with `key`
    /// (empty when they form a cycle). Filled in for SDKs by the definitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependency_chain: Option<Vec<String>>,
    #[serde(skip)]
    regex: CompiledRegex,
}

/// A filter's regex, compiled on first use (`None`: the pattern is invalid).
#[derive(Default, Clone)]
struct CompiledRegex(OnceLock<Option<fancy_regex::Regex>>);

impl PartialEq for CompiledRegex {
    fn eq(&self, _: &Self) -> bool {
        true // a cache, not part of the filter's identity
    }
}

impl std::fmt::Debug for CompiledRegex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CompiledRegex")
    }
}

impl PropertyFilter {
    /// A filter on the subject's own properties.
    pub fn new(key: impl Into<String>, operator: Operator, value: Option<Value>) -> Self {
        Self {
            key: key.into(),
            value,
            operator,
            kind: None,
            group_type_index: None,
            dependency_chain: None,
            regex: CompiledRegex::default(),
        }
    }

    fn regex(&self) -> Option<&fancy_regex::Regex> {
        self.regex
            .0
            .get_or_init(|| {
                let pattern = text(self.value.as_ref()?);
                fancy_regex::RegexBuilder::new(&pattern)
                    .backtrack_limit(10_000)
                    .build()
                    .ok()
            })
            .as_ref()
    }
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

fn exact(expected: &Value, actual: &Value) -> bool {
    if is_truthy_literal(expected) {
        return truthy(actual) == truthy(expected);
    }
    let fold = |v: &Value| Fold::Unicode.apply(&text(v));
    let actual = fold(actual);
    match expected {
        Value::Array(options) => options.iter().any(|option| fold(option) == actual),
        single => fold(single) == actual,
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

fn contains_any(expected: &Value, actual: &Value) -> bool {
    let haystack = Fold::Ascii.apply(&text(actual));
    let found = |needle: &Value| haystack.contains(&Fold::Ascii.apply(&text(needle)));
    match expected {
        Value::Array(needles) => needles.iter().any(found),
        single => found(single),
    }
}

/// Whether `properties` satisfy `filter`, with the server's missing-property
/// rules; naive dates are read in `timezone` (the project's) and relative
/// ones count back from `now`.
pub fn matches(
    filter: &PropertyFilter,
    properties: &Map<String, Value>,
    timezone: Tz,
    now: DateTime<Utc>,
) -> bool {
    use Operator::*;
    let actual = properties.get(&filter.key);
    match filter.operator {
        IsSet => return actual.is_some(),
        IsNotSet => return actual.is_none(),
        _ => {}
    }
    let Some(actual) = actual else {
        return filter.operator.rule().when_missing;
    };
    let Some(expected) = &filter.value else {
        return false;
    };
    let lower = |v: &Value| Fold::Ascii.apply(&text(v));
    match filter.operator {
        Exact => exact(expected, actual),
        IsNot => !exact(expected, actual),
        Icontains => lower(actual).contains(&lower(expected)),
        NotIcontains => !lower(actual).contains(&lower(expected)),
        StartsWith => lower(actual).starts_with(&lower(expected)),
        NotStartsWith => !lower(actual).starts_with(&lower(expected)),
        EndsWith => lower(actual).ends_with(&lower(expected)),
        NotEndsWith => !lower(actual).ends_with(&lower(expected)),
        IcontainsMulti => contains_any(expected, actual),
        NotIcontainsMulti => !contains_any(expected, actual),
        Regex | NotRegex => match filter.regex().map(|r| r.is_match(&text(actual)).ok()) {
            Some(Some(found)) => found == (filter.operator == Regex),
            // An invalid pattern or a blown backtrack limit matches neither way.
            _ => false,
        },
        Gt => compare(expected, actual, |a, e| a > e),
        Gte => compare(expected, actual, |a, e| a >= e),
        Lt => compare(expected, actual, |a, e| a < e),
        Lte => compare(expected, actual, |a, e| a <= e),
        Between => between(expected, actual).unwrap_or(false),
        NotBetween => between(expected, actual)
            .map(|inside| !inside)
            .unwrap_or(false),
        IsDateBefore | IsDateAfter | IsDateExact => {
            let (Some(x), Some(v)) = (
                dates::property_instant(actual, timezone),
                expected
                    .as_str()
                    .and_then(|s| dates::filter_instant(s, timezone, now)),
            ) else {
                return false;
            };
            match filter.operator {
                IsDateBefore => x < v,
                IsDateAfter => x > v,
                _ => x == v,
            }
        }
        SemverEq | SemverNeq | SemverGt | SemverGte | SemverLt | SemverLte | SemverTilde
        | SemverCaret | SemverWildcard => {
            versions::matches(filter.operator, &text(expected), &text(actual)).unwrap_or(false)
        }
        // Answered by the evaluator, never by property values.
        In | NotIn | FlagEvaluatesTo => false,
        IsSet | IsNotSet => unreachable!("answered above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// When these tests evaluate: after every absolute date they name.
    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn check(operator: &str, value: Value, properties: Value) -> bool {
        let filter: PropertyFilter =
            serde_json::from_value(json!({"key": "k", "value": value, "operator": operator}))
                .unwrap();
        matches(&filter, properties.as_object().unwrap(), Tz::UTC, now())
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
        assert!(!check(
            "not_icontains_multi",
            json!("acme"),
            json!({"k": "team@acme.io"})
        ));
    }

    #[test]
    fn dates_compare_as_instants() {
        let when = json!({"k": "2024-06-01T12:00:00Z"});
        assert!(check("is_date_before", json!("2024-06-02"), when.clone()));
        assert!(check("is_date_after", json!("2024-06-01"), when.clone()));
        assert!(check(
            "is_date_exact",
            json!("2024-06-01T14:00:00+02:00"),
            when.clone()
        ));
        assert!(check("is_date_before", json!("-1d"), when.clone()));
        assert!(!check("is_date_after", json!("-1d"), when.clone()));
        assert!(check(
            "is_date_after",
            json!("2020-01-01"),
            json!({"k": 1717243200})
        ));
        assert!(!check("is_date_before", json!("not a date"), when));
    }

    #[test]
    fn semver_operators() {
        let version = json!({"k": "v1.2.3"});
        assert!(check("semver_gt", json!("1.2.2"), version.clone()));
        assert!(check("semver_eq", json!("1.2.03"), version.clone()));
        assert!(check("semver_tilde", json!("1.2.0"), version.clone()));
        assert!(!check("semver_tilde", json!("1.1.0"), version.clone()));
        assert!(check("semver_caret", json!("1.0"), version.clone()));
        assert!(check("semver_wildcard", json!("1.2.*"), version.clone()));
        assert!(!check("semver_wildcard", json!("1.3.*"), version.clone()));
        assert!(check(
            "semver_lt",
            json!("1.0.0"),
            json!({"k": "1.0.0-alpha"})
        ));
        assert!(!check("semver_gt", json!("1.0.0"), json!({"k": "banana"})));
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
        assert!(!matches(
            &filter,
            json!({"k": "x"}).as_object().unwrap(),
            Tz::UTC,
            now()
        ));
    }
}
