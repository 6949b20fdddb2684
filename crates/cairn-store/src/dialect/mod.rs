//! SQL dialects: every spelling that differs between the engines an
//! [`EventScanner`](crate::scan::EventScanner) may run on. Query builders
//! write portable SQL (`SELECT`, `JOIN`, `CASE`, `count`, `coalesce`) and ask
//! the scanner's dialect for the rest, so a new engine is a new
//! implementation of [`Dialect`], not a change to the queries.
//!
//! Every method returns an SQL expression (or clause) as text; arguments
//! named `expr` are expressions already written in the same dialect.

use chrono::NaiveDateTime;

/// A calendar unit of time buckets and distances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Minute,
    Hour,
    Day,
    Week,
    Month,
}

/// The first day of a week bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeekStart {
    Sunday,
    Monday,
}

pub trait Dialect: std::fmt::Debug + Send + Sync {
    // Literals.

    /// A string literal, escaped.
    fn string(&self, text: &str) -> String;
    /// A timestamp literal of a naive reading (UTC for stored instants,
    /// local for buckets).
    fn timestamp(&self, t: NaiveDateTime) -> String;

    // Time.

    /// `expr` moved by `seconds` (an integer expression, possibly negative).
    fn add_seconds(&self, expr: &str, seconds: &str) -> String;
    /// `expr` moved back `days` whole days.
    fn minus_days(&self, expr: &str, days: i64) -> String;
    /// The start of the `unit` containing the naive reading `expr`; weeks
    /// start on `week_start`.
    fn bucket_start(&self, expr: &str, unit: TimeUnit, week_start: WeekStart) -> String;
    /// The number of `unit` boundaries crossed from `from` to `to` (both
    /// aligned bucket starts); a week is seven days.
    fn boundaries_between(&self, unit: TimeUnit, from: &str, to: &str) -> String;
    /// The number of whole `unit`s elapsed from `from` to `to` (an age, as
    /// PostHog's `age` counts it); a week is seven days.
    fn whole_units_between(&self, unit: TimeUnit, from: &str, to: &str) -> String;
    /// A timestamp as microseconds since the epoch (a 64-bit integer).
    fn epoch_micros(&self, expr: &str) -> String;

    // Values.

    /// The text of property `key` in the JSON object `column`: strings
    /// unquoted, other values as JSON text, NULL when the key is absent or
    /// its value is JSON null.
    fn json_text(&self, column: &str, key: &str) -> String;
    /// `expr` as a double, NULL where it does not convert.
    fn try_double(&self, expr: &str) -> String;
    /// `expr` as a timestamp, NULL where it does not convert.
    fn try_timestamp(&self, expr: &str) -> String;
    /// Text with a UTC offset as an instant, NULL where it is not one.
    fn try_timestamp_tz(&self, expr: &str) -> String;
    /// `expr` as a double (it is a number already).
    fn double(&self, expr: &str) -> String;
    /// `expr` as a 32-bit integer.
    fn integer(&self, expr: &str) -> String;
    /// A text NULL.
    fn null_text(&self) -> &'static str;
    /// `expr` (a uuid or text) as text, uuids in their hyphenated lower-case form.
    fn text(&self, expr: &str) -> String;
    /// Integer division rounding toward negative infinity.
    fn int_div(&self, a: &str, b: &str) -> String;
    /// Whether `expr` matches the regular expression `pattern` (RE2
    /// syntax) anywhere.
    fn regex_matches(&self, expr: &str, pattern: &str) -> String;
    /// Whether all of `expr` matches the regular expression `pattern`.
    fn regex_full_match(&self, expr: &str, pattern: &str) -> String;
    /// Whether `expr` starts with the text `prefix`.
    fn starts_with(&self, expr: &str, prefix: &str) -> String;
    /// Whether `expr` ends with the text `suffix`.
    fn ends_with(&self, expr: &str, suffix: &str) -> String;
    /// Whether `expr` contains the text `needle`.
    fn contains(&self, expr: &str, needle: &str) -> String;
    /// `expr` in lower case, by Unicode's rules.
    fn lower(&self, expr: &str) -> String;
    /// `expr` with only the ASCII letters A-Z lowered.
    fn ascii_lower(&self, expr: &str) -> String;
    /// `expr` without any of the characters `chars` at its end.
    fn trim_end(&self, expr: &str, chars: &str) -> String;
    /// The non-NULL `parts` joined with `separator`.
    fn concat_with(&self, separator: &str, parts: &[String]) -> String;
    /// The rows of a one-column table holding `values` (literals).
    fn rows_of(&self, values: &[String]) -> String;

    // Identity.

    /// A 64-bit unsigned hash of `parts` (an actor's or a path step's
    /// identity in Rust's state machines): equal inputs, equal hashes,
    /// within one engine.
    fn hash(&self, parts: &[&str]) -> String;
    /// Whether `expr` (a [`Dialect::hash`]) is one of `hashes`: the list
    /// travels as one string literal, which the engine parses at once,
    /// where thousands of literals in an `IN` list take it many
    /// milliseconds (DuckDB: 50 ms for 4k).
    fn one_of_hashes(&self, expr: &str, hashes: &[u64]) -> String;

    // Aggregates.

    /// The `value` of the row with the least `order` (of the rows where
    /// `condition` holds, when given).
    fn first_by(&self, value: &str, order: &str, condition: Option<&str>) -> String;
    /// Any one value of `expr` in the group.
    fn any_value(&self, expr: &str) -> String;
    /// Whether `condition` holds for any row of the group.
    fn bool_or(&self, condition: &str) -> String;
    /// The rows of the group where `condition` holds.
    fn count_if(&self, condition: &str) -> String;
    /// An unsigned 64-bit mask with bit `bit` (an integer in 0..64) set for
    /// each row of the group where `condition` holds.
    fn bit_mask(&self, bit: &str, condition: &str) -> String;
    /// The interpolated quantile `q` of `expr`.
    fn quantile(&self, expr: &str, q: f64) -> String;
    /// The number of distinct values of `index` (an integer in 0..64) as a
    /// 64-bit integer; cheaper than a distinct count.
    fn distinct_small(&self, index: &str) -> String;
    /// Whether [`Self::distinct_small`] also beats a distinct count for
    /// actors with long runs of events (groups): DuckDB's distinct count is
    /// cheaper there, ClickHouse ORs bits faster either way.
    fn distinct_small_for_long_runs(&self) -> bool;
    /// Grouping by every non-aggregate column of the select list.
    fn group_by_all(&self) -> &'static str;
}

/// `values` as one text of digits and commas (for [`Dialect::one_of_hashes`]).
pub(crate) fn comma_separated(values: &[u64]) -> String {
    let mut text = String::with_capacity(values.len() * 21);
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&value.to_string());
    }
    text
}
