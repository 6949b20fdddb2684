//! DuckDB's spellings.

use chrono::NaiveDateTime;

use crate::dialect::{Dialect, TimeUnit, WeekStart};

#[derive(Debug, Clone, Copy, Default)]
pub struct DuckDialect;

/// A JSON pointer (`/key`) for a property name, so any name is safe to bind.
pub(crate) fn json_pointer(key: &str) -> String {
    format!("/{}", key.replace('~', "~0").replace('/', "~1"))
}

fn unit_name(unit: TimeUnit) -> &'static str {
    match unit {
        TimeUnit::Minute => "minute",
        TimeUnit::Hour => "hour",
        TimeUnit::Day => "day",
        TimeUnit::Week => "week",
        TimeUnit::Month => "month",
    }
}

impl Dialect for DuckDialect {
    fn string(&self, text: &str) -> String {
        format!("'{}'", text.replace('\'', "''"))
    }

    fn timestamp(&self, t: NaiveDateTime) -> String {
        format!("TIMESTAMP '{}'", t.format("%Y-%m-%d %H:%M:%S%.6f"))
    }

    fn add_seconds(&self, expr: &str, seconds: &str) -> String {
        // `INTERVAL -25200 SECOND` is a syntax error; to_seconds takes a sign.
        format!("({expr} + to_seconds({seconds}))")
    }

    fn minus_days(&self, expr: &str, days: i64) -> String {
        format!("{expr} - INTERVAL {days} DAY")
    }

    fn bucket_start(&self, expr: &str, unit: TimeUnit, week_start: WeekStart) -> String {
        match (unit, week_start) {
            // DuckDB's weeks start on Monday.
            (TimeUnit::Week, WeekStart::Sunday) => {
                format!("(date_trunc('week', {expr} + INTERVAL 1 DAY) - INTERVAL 1 DAY)")
            }
            _ => format!("date_trunc('{}', {expr})", unit_name(unit)),
        }
    }

    fn boundaries_between(&self, unit: TimeUnit, from: &str, to: &str) -> String {
        match unit {
            TimeUnit::Week => format!("date_diff('day', {from}, {to}) // 7"),
            _ => format!("date_diff('{}', {from}, {to})", unit_name(unit)),
        }
    }

    fn whole_units_between(&self, unit: TimeUnit, from: &str, to: &str) -> String {
        match unit {
            TimeUnit::Week => format!("(date_sub('day', {from}, {to}) // 7)"),
            _ => format!("date_sub('{}', {from}, {to})", unit_name(unit)),
        }
    }

    fn epoch_micros(&self, expr: &str) -> String {
        format!("epoch_us({expr})")
    }

    fn json_text(&self, column: &str, key: &str) -> String {
        // json_extract_string gives NULL for both a missing key and JSON null.
        format!(
            "json_extract_string({column}, {})",
            self.string(&json_pointer(key))
        )
    }

    fn try_double(&self, expr: &str) -> String {
        format!("TRY_CAST({expr} AS DOUBLE)")
    }

    fn try_timestamp(&self, expr: &str) -> String {
        format!("TRY_CAST({expr} AS TIMESTAMP)")
    }

    fn try_timestamp_tz(&self, expr: &str) -> String {
        format!("TRY_CAST({expr} AS TIMESTAMPTZ)")
    }

    fn double(&self, expr: &str) -> String {
        format!("{expr}::DOUBLE")
    }

    fn integer(&self, expr: &str) -> String {
        format!("({expr})::INTEGER")
    }

    fn null_text(&self) -> &'static str {
        "NULL::VARCHAR"
    }

    fn text(&self, expr: &str) -> String {
        format!("CAST({expr} AS VARCHAR)")
    }

    fn int_div(&self, a: &str, b: &str) -> String {
        format!("({a} // {b})")
    }

    fn regex_matches(&self, expr: &str, pattern: &str) -> String {
        format!("regexp_matches({expr}, {})", self.string(pattern))
    }

    fn regex_full_match(&self, expr: &str, pattern: &str) -> String {
        format!("regexp_full_match({expr}, {})", self.string(pattern))
    }

    fn starts_with(&self, expr: &str, prefix: &str) -> String {
        format!("starts_with({expr}, {})", self.string(prefix))
    }

    fn ends_with(&self, expr: &str, suffix: &str) -> String {
        format!("ends_with({expr}, {})", self.string(suffix))
    }

    fn contains(&self, expr: &str, needle: &str) -> String {
        format!("contains({expr}, {})", self.string(needle))
    }

    fn lower(&self, expr: &str) -> String {
        format!("lower({expr})")
    }

    fn ascii_lower(&self, expr: &str) -> String {
        format!("translate({expr}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')")
    }

    fn trim_end(&self, expr: &str, chars: &str) -> String {
        format!("rtrim({expr}, {})", self.string(chars))
    }

    fn concat_with(&self, separator: &str, parts: &[String]) -> String {
        format!(
            "concat_ws({}, {})",
            self.string(separator),
            parts.join(", ")
        )
    }

    fn rows_of(&self, values: &[String]) -> String {
        format!("unnest([{}])", values.join(", "))
    }

    fn hash(&self, parts: &[&str]) -> String {
        format!("hash({})", parts.join(", "))
    }

    fn one_of_hashes(&self, expr: &str, hashes: &[u64]) -> String {
        format!(
            "{expr} IN (SELECT unnest(string_split('{}', ','))::UBIGINT)",
            crate::dialect::comma_separated(hashes)
        )
    }

    fn first_by(&self, value: &str, order: &str, condition: Option<&str>) -> String {
        match condition {
            Some(condition) => format!("arg_min({value}, {order}) FILTER (WHERE {condition})"),
            None => format!("arg_min({value}, {order})"),
        }
    }

    fn any_value(&self, expr: &str) -> String {
        format!("any_value({expr})")
    }

    fn bool_or(&self, condition: &str) -> String {
        format!("bool_or({condition})")
    }

    fn count_if(&self, condition: &str) -> String {
        format!("count(*) FILTER (WHERE {condition})")
    }

    fn bit_mask(&self, bit: &str, condition: &str) -> String {
        format!("bit_or(CASE WHEN {condition} THEN (1::UBIGINT << {bit})::UBIGINT ELSE 0::UBIGINT END)::UBIGINT")
    }

    fn quantile(&self, expr: &str, q: f64) -> String {
        format!("quantile_cont({expr}, {q})")
    }

    fn distinct_small(&self, index: &str) -> String {
        // One bit per value, OR-ed: cheaper than a distinct count's set.
        format!("bit_count(bit_or(1::UBIGINT << ({index})::INTEGER))::BIGINT")
    }

    fn distinct_small_for_long_runs(&self) -> bool {
        false
    }

    fn group_by_all(&self) -> &'static str {
        "GROUP BY ALL"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_names_with_odd_characters_are_safe() {
        assert_eq!(json_pointer("a/b~c"), "/a~1b~0c");
    }

    #[test]
    fn strings_double_their_quotes() {
        assert_eq!(DuckDialect.string("it's"), "'it''s'");
    }

    #[test]
    fn sunday_weeks_shift_duckdbs_monday_weeks() {
        assert_eq!(
            DuckDialect.bucket_start("t", TimeUnit::Week, WeekStart::Sunday),
            "(date_trunc('week', t + INTERVAL 1 DAY) - INTERVAL 1 DAY)"
        );
        assert_eq!(
            DuckDialect.bucket_start("t", TimeUnit::Week, WeekStart::Monday),
            "date_trunc('week', t)"
        );
    }
}
