//! PostHog's property operators, in one table that every reader of them
//! follows: flag matching (`properties::matches`), insight SQL (cairn-query's
//! `sql::filter_sql`) and the UI's operator list. The table says, per
//! operator, its wire name, how values are case-folded, the answer when the
//! property is missing, and whether insights accept it; the value readers
//! below (`text`, `number`, truthiness, `NUMBER_PATTERN`) are the one home of
//! value coercion, and `cairn_core::time` of date reading.
//!
//! Per operator (`x` the property, `v` the filter value; spec/flags.md §3.5):
//! - `exact` / `is_not`: if `v` is a truthy literal (`is_truthy_literal`),
//!   `truthy(x) == truthy(v)`; otherwise `text(x)` equals `text(v)` (or any
//!   element of a list `v`) after Unicode lowercasing. An empty list matches
//!   nothing.
//! - `icontains`, `starts_with`, `ends_with`, `icontains_multi` (and `not_`):
//!   substring, prefix, suffix, any-of substrings of `text(x)`, ASCII-folded.
//! - `regex` / `not_regex`: an unanchored search of `text(v)` in `text(x)`,
//!   case-sensitive. Patterns in the syntax both sides honour (the `regex`
//!   crate's, which is RE2's) mean the same on both; see `FancyRegex`.
//! - `gt` … `lte`, `between` / `not_between`: both sides read by `number`
//!   (a JSON number, or a string Rust's `f64::from_str` reads); NaN and
//!   non-numbers match neither `between` nor `not_between`.
//! - `is_set` / `is_not_set`: whether the key is present.
//! - `is_date_*`: both sides as instants (`cairn_core::time`): epoch seconds
//!   or ISO 8601 for the property; relative (`-7d`, counted back from the
//!   evaluation's `now`) or ISO 8601 for the value; naive ones in the
//!   project's timezone.
//! - `semver_*`: see `versions`.
//!
//! Insights follow these flag semantics even where PostHog's HogQL does not
//! (there `exact` is case-sensitive `=`, `icontains` is `ILIKE` with `%` and
//! `_` as wildcards, and a string property is never an epoch date): one
//! filter means one set of persons in Cairn, whether it targets a flag or
//! counts an insight.
//!
//! Where insights deliberately answer differently from flags (PostHog's
//! insights are HogQL over ClickHouse and differ from its flag server too),
//! and the agreement test (cairn-query/tests/operator_agreement.rs) leaves
//! these cases out by name:
//! - [`Difference::NullIsMissing`]: a property that is JSON `null` is
//!   present (text `null`) for flags, missing for insights (HogQL reads
//!   `null` as NULL).
//! - [`Difference::UnusableValue`]: a filter value an operator cannot read
//!   (no value, a non-number for `gt`, an invalid or non-RE2 regex, a
//!   non-date) makes flags answer "no match" but insights refuse the query
//!   with an error naming the field, as every other malformed query is.
//! - [`Difference::FancyRegex`]: look-around and back-references are
//!   evaluated by flags (PostHog's server uses fancy-regex) and refused by
//!   insights (RE2 has neither).
//! - [`Difference::UnicodeClasses`]: `\d`, `\w`, `\s`, `\b` are Unicode-aware
//!   in flags and ASCII-only in insights (RE2).
//! - [`Difference::StructuredText`]: a list or object property compares as
//!   compact JSON with sorted keys in flags, as its stored JSON text in
//!   insights; and in truthy mode a list is truthy in flags when all its
//!   elements are, never in insights.
//! - [`Difference::NumberSpelling`]: text operators on a number property
//!   read its JSON spelling; floats that serde writes with an exponent
//!   (`1e20`) are spelled differently by DuckDB's JSON.
//! - [`Difference::LooseDates`]: flags also read the looser date spellings
//!   chrono accepts (RFC 2822, one-digit fields, lowercase `t`/`z`); insights
//!   read ISO 8601 with two-digit fields only. A naive property date inside
//!   a DST change of the project's timezone is compared by its wall-clock
//!   reading in insights.
//! - Operators with `insights: false` (`icontains_multi`, `semver_*`, cohort
//!   and flag operators) are refused by insights.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    IsDateBefore,
    IsDateAfter,
    IsDateExact,
    SemverEq,
    SemverNeq,
    SemverGt,
    SemverGte,
    SemverLt,
    SemverLte,
    SemverTilde,
    SemverCaret,
    SemverWildcard,
    /// Cohort membership; Cairn has no cohorts, so validation refuses it.
    In,
    NotIn,
    /// Flag dependencies (`type: "flag"`), answered by the evaluator.
    FlagEvaluatesTo,
}

/// How an operator folds case before comparing text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    /// Compared as written.
    None,
    /// `str::to_lowercase` (and SQL `lower`).
    Unicode,
    /// ASCII letters only, as PostHog's server does for text operators.
    Ascii,
}

impl Fold {
    pub fn apply(self, text: &str) -> String {
        match self {
            Self::None => text.to_string(),
            Self::Unicode => text.to_lowercase(),
            Self::Ascii => text.to_ascii_lowercase(),
        }
    }
}

/// A deliberate difference between flags' and insights' answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difference {
    NullIsMissing,
    UnusableValue,
    FancyRegex,
    UnicodeClasses,
    StructuredText,
    NumberSpelling,
    LooseDates,
}

/// One operator's rules.
#[derive(Debug)]
pub struct Rule {
    pub operator: Operator,
    /// The wire name (serde's, checked by a test) and the UI's label.
    pub name: &'static str,
    pub label: &'static str,
    pub fold: Fold,
    /// The answer when the property is absent.
    pub when_missing: bool,
    /// Whether insights accept the operator.
    pub insights: bool,
    /// What the filter value is: none, a number, text or a list of texts.
    pub value: ValueKind,
}

/// The shape of a filter value, for forms that type it from text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    None,
    Text,
    /// Text, or a list of texts meaning "any of".
    TextList,
    Number,
    /// `[low, high]`.
    Range,
    /// Answered by the evaluator (cohorts, flags).
    Other,
}

const fn rule(
    operator: Operator,
    name: &'static str,
    label: &'static str,
    fold: Fold,
    when_missing: bool,
    insights: bool,
    value: ValueKind,
) -> Rule {
    Rule {
        operator,
        name,
        label,
        fold,
        when_missing,
        insights,
        value,
    }
}

use Fold::{Ascii, Unicode};
use Operator as O;
use ValueKind as V;

/// The table, in `Operator` order (`Operator::rule` indexes it).
#[rustfmt::skip]
pub const RULES: [Rule; 35] = [
    rule(O::Exact, "exact", "equals (comma-separated: any of)", Unicode, false, true, V::TextList),
    rule(O::IsNot, "is_not", "does not equal", Unicode, true, true, V::TextList),
    rule(O::Icontains, "icontains", "contains", Ascii, false, true, V::Text),
    rule(O::NotIcontains, "not_icontains", "does not contain", Ascii, true, true, V::Text),
    rule(O::StartsWith, "starts_with", "starts with", Ascii, false, true, V::Text),
    rule(O::NotStartsWith, "not_starts_with", "does not start with", Ascii, true, true, V::Text),
    rule(O::EndsWith, "ends_with", "ends with", Ascii, false, true, V::Text),
    rule(O::NotEndsWith, "not_ends_with", "does not end with", Ascii, true, true, V::Text),
    rule(O::IcontainsMulti, "icontains_multi", "contains any of", Ascii, false, false, V::TextList),
    rule(O::NotIcontainsMulti, "not_icontains_multi", "contains none of", Ascii, true, false, V::TextList),
    rule(O::Regex, "regex", "matches regex", Fold::None, false, true, V::Text),
    rule(O::NotRegex, "not_regex", "does not match regex", Fold::None, true, true, V::Text),
    rule(O::Gt, "gt", "greater than", Fold::None, false, true, V::Number),
    rule(O::Gte, "gte", "at least", Fold::None, false, true, V::Number),
    rule(O::Lt, "lt", "less than", Fold::None, false, true, V::Number),
    rule(O::Lte, "lte", "at most", Fold::None, false, true, V::Number),
    rule(O::Between, "between", "between", Fold::None, false, true, V::Range),
    rule(O::NotBetween, "not_between", "not between", Fold::None, true, true, V::Range),
    rule(O::IsSet, "is_set", "is set", Fold::None, false, true, V::None),
    rule(O::IsNotSet, "is_not_set", "is not set", Fold::None, true, true, V::None),
    rule(O::IsDateBefore, "is_date_before", "date before", Fold::None, false, true, V::Text),
    rule(O::IsDateAfter, "is_date_after", "date after", Fold::None, false, true, V::Text),
    rule(O::IsDateExact, "is_date_exact", "date is", Fold::None, false, true, V::Text),
    rule(O::SemverEq, "semver_eq", "version equals", Fold::None, false, false, V::Text),
    rule(O::SemverNeq, "semver_neq", "version differs", Fold::None, false, false, V::Text),
    rule(O::SemverGt, "semver_gt", "version above", Fold::None, false, false, V::Text),
    rule(O::SemverGte, "semver_gte", "version at least", Fold::None, false, false, V::Text),
    rule(O::SemverLt, "semver_lt", "version below", Fold::None, false, false, V::Text),
    rule(O::SemverLte, "semver_lte", "version at most", Fold::None, false, false, V::Text),
    rule(O::SemverTilde, "semver_tilde", "version ~", Fold::None, false, false, V::Text),
    rule(O::SemverCaret, "semver_caret", "version ^", Fold::None, false, false, V::Text),
    rule(O::SemverWildcard, "semver_wildcard", "version matches *", Fold::None, false, false, V::Text),
    rule(O::In, "in", "in cohort", Fold::None, false, false, V::Other),
    rule(O::NotIn, "not_in", "not in cohort", Fold::None, false, false, V::Other),
    rule(O::FlagEvaluatesTo, "flag_evaluates_to", "flag evaluates to", Fold::None, false, false, V::Other),
];

impl Operator {
    pub fn rule(self) -> &'static Rule {
        &RULES[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.rule().name
    }

    /// The operator of a wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        RULES.iter().find(|r| r.name == name).map(|r| r.operator)
    }
}

/// A JSON string's own text; anything else as compact JSON with object keys
/// sorted (maps keep insertion order in this workspace, so sort explicitly).
pub fn text(value: &Value) -> String {
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

/// Whether `exact` / `is_not` compare truthiness for this filter value: a
/// bool, "true"/"false" in any case, or a non-empty list of those.
pub fn is_truthy_literal(value: &Value) -> bool {
    match value {
        Value::Bool(_) => true,
        Value::String(s) => s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false"),
        Value::Array(items) => !items.is_empty() && items.iter().all(is_truthy_literal),
        _ => false,
    }
}

/// A bool itself, "true" in any case, a list of truthy values; else false.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        Value::Array(items) => items.iter().all(truthy),
        _ => false,
    }
}

/// A JSON number, or a string as Rust's `f64::from_str` reads it (no
/// surrounding spaces).
pub fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The texts `number` reads as a number other than NaN, as a regular
/// expression for SQL (which must not cast what Rust would refuse).
pub const NUMBER_PATTERN: &str =
    r"^[+-]?((?i:inf|infinity)|([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?)$";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_operator_order_and_names_what_serde_names() {
        for (i, rule) in RULES.iter().enumerate() {
            assert_eq!(rule.operator as usize, i, "{}", rule.name);
            assert_eq!(
                serde_json::to_value(rule.operator).unwrap(),
                Value::from(rule.name)
            );
            assert_eq!(Operator::from_name(rule.name), Some(rule.operator));
        }
    }

    #[test]
    fn the_number_pattern_reads_what_rust_reads() {
        let pattern = fancy_regex::Regex::new(NUMBER_PATTERN).unwrap();
        for text in [
            "1",
            "-1",
            "+1",
            "1.",
            ".5",
            "1.5e3",
            "1E-3",
            "inf",
            "-Infinity",
            "INF",
            "NaN",
            "nan",
            " 1",
            "1 ",
            "",
            ".",
            "e5",
            "1e",
            "0x10",
            "1_000",
            "--1",
            "1.2.3",
            "+",
            "infinit",
        ] {
            let rust = text.parse::<f64>().is_ok_and(|n| !n.is_nan());
            assert_eq!(pattern.is_match(text).unwrap(), rust, "{text:?}");
        }
    }
}
