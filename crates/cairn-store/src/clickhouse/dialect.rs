//! ClickHouse's spellings. Instants are `DateTime64(6, 'UTC')` and so are
//! the naive local readings insights compute from them (a reading shifted
//! by the zone's offset is still typed UTC), so every time expression stays
//! in one type; bucket functions that return a `Date` or `DateTime` are
//! widened back to it.

use chrono::NaiveDateTime;

use crate::dialect::{Dialect, TimeUnit, WeekStart};

#[derive(Debug, Clone, Copy, Default)]
pub struct ClickHouseDialect;

fn unit_name(unit: TimeUnit) -> &'static str {
    match unit {
        TimeUnit::Minute => "minute",
        TimeUnit::Hour => "hour",
        TimeUnit::Day => "day",
        TimeUnit::Week => "week",
        TimeUnit::Month => "month",
    }
}

/// `expr` as the one time type.
fn micros(expr: &str) -> String {
    format!("toDateTime64({expr}, 6, 'UTC')")
}

impl Dialect for ClickHouseDialect {
    fn string(&self, text: &str) -> String {
        // Backslashes escape in ClickHouse literals.
        format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
    }

    fn timestamp(&self, t: NaiveDateTime) -> String {
        micros(&format!("'{}'", t.format("%Y-%m-%d %H:%M:%S%.6f")))
    }

    fn add_seconds(&self, expr: &str, seconds: &str) -> String {
        format!("addSeconds({expr}, {seconds})")
    }

    fn minus_days(&self, expr: &str, days: i64) -> String {
        format!("subtractDays({expr}, {days})")
    }

    fn bucket_start(&self, expr: &str, unit: TimeUnit, week_start: WeekStart) -> String {
        let start = match (unit, week_start) {
            // Mode 0: weeks from Sunday; mode 1: from Monday.
            (TimeUnit::Week, WeekStart::Sunday) => format!("toStartOfWeek({expr}, 0)"),
            (TimeUnit::Week, WeekStart::Monday) => format!("toStartOfWeek({expr}, 1)"),
            (TimeUnit::Minute, _) => format!("toStartOfMinute({expr})"),
            (TimeUnit::Hour, _) => format!("toStartOfHour({expr})"),
            (TimeUnit::Day, _) => format!("toStartOfDay({expr})"),
            (TimeUnit::Month, _) => format!("toStartOfMonth({expr})"),
        };
        micros(&start)
    }

    fn boundaries_between(&self, unit: TimeUnit, from: &str, to: &str) -> String {
        // Days, weeks and months are counted between calendar dates, which
        // is cheaper per row than between `DateTime64`s.
        let between = match unit {
            TimeUnit::Minute | TimeUnit::Hour => format!("{from}, {to}"),
            TimeUnit::Day | TimeUnit::Week | TimeUnit::Month => {
                format!("toDate32({from}), toDate32({to})")
            }
        };
        match unit {
            TimeUnit::Week => self.int_div(&format!("dateDiff('day', {between})"), "7"),
            _ => format!("dateDiff('{}', {between})", unit_name(unit)),
        }
    }

    fn whole_units_between(&self, unit: TimeUnit, from: &str, to: &str) -> String {
        match unit {
            TimeUnit::Week => self.int_div(&format!("age('day', {from}, {to})"), "7"),
            _ => format!("age('{}', {from}, {to})", unit_name(unit)),
        }
    }

    fn epoch_micros(&self, expr: &str) -> String {
        format!("toUnixTimestamp64Micro({})", micros(expr))
    }

    fn json_text(&self, column: &str, key: &str) -> String {
        // Strings unquoted, other values as their JSON text, NULL for a
        // missing key or JSON null (as DuckDB's json_extract_string).
        let key = self.string(key);
        format!(
            "multiIf(JSONType({column}, {key}) = 'String', toNullable(JSONExtractString({column}, {key})), \
             JSONType({column}, {key}) IN ('Null') OR NOT JSONHas({column}, {key}), NULL, \
             toNullable(JSONExtractRaw({column}, {key})))"
        )
    }

    fn try_double(&self, expr: &str) -> String {
        format!("toFloat64OrNull(toString({expr}))")
    }

    fn try_timestamp(&self, expr: &str) -> String {
        format!("parseDateTime64BestEffortOrNull(toString({expr}), 6, 'UTC')")
    }

    fn try_timestamp_tz(&self, expr: &str) -> String {
        format!("parseDateTime64BestEffortOrNull(toString({expr}), 6, 'UTC')")
    }

    fn double(&self, expr: &str) -> String {
        format!("toFloat64({expr})")
    }

    fn integer(&self, expr: &str) -> String {
        format!("toInt32({expr})")
    }

    fn null_text(&self) -> &'static str {
        "CAST(NULL AS Nullable(String))"
    }

    fn text(&self, expr: &str) -> String {
        format!("toString({expr})")
    }

    fn int_div(&self, a: &str, b: &str) -> String {
        // intDiv rounds toward zero; insights need the floor: one less when
        // there is a remainder and the signs differ. In integers throughout
        // (a float division costs more per row).
        format!(
            "toInt64(intDiv({a}, {b}) - (modulo({a}, {b}) != 0 AND (({a}) < 0) != (({b}) < 0)))"
        )
    }

    fn regex_matches(&self, expr: &str, pattern: &str) -> String {
        format!("match({expr}, {})", self.string(pattern))
    }

    fn regex_full_match(&self, expr: &str, pattern: &str) -> String {
        format!(
            "match({expr}, {})",
            self.string(&format!("^(?:{pattern})$"))
        )
    }

    fn starts_with(&self, expr: &str, prefix: &str) -> String {
        format!("startsWith({expr}, {})", self.string(prefix))
    }

    fn ends_with(&self, expr: &str, suffix: &str) -> String {
        format!("endsWith({expr}, {})", self.string(suffix))
    }

    fn contains(&self, expr: &str, needle: &str) -> String {
        format!("(position({expr}, {}) > 0)", self.string(needle))
    }

    fn lower(&self, expr: &str) -> String {
        format!("lowerUTF8({expr})")
    }

    fn ascii_lower(&self, expr: &str) -> String {
        // ClickHouse's lower() folds ASCII letters only.
        format!("lower({expr})")
    }

    fn trim_end(&self, expr: &str, chars: &str) -> String {
        format!("trim(TRAILING {} FROM {expr})", self.string(chars))
    }

    fn concat_with(&self, separator: &str, parts: &[String]) -> String {
        format!(
            "arrayStringConcat(arrayFilter(x -> x IS NOT NULL, [{}]), {})",
            parts.join(", "),
            self.string(separator)
        )
    }

    fn rows_of(&self, values: &[String]) -> String {
        format!("arrayJoin([{}])", values.join(", "))
    }

    fn hash(&self, parts: &[&str]) -> String {
        // cityHash64 of a NULL argument is NULL; of a tuple holding one it is
        // a value (and a one-part tuple hashes as the part itself).
        format!("cityHash64(tuple({}))", parts.join(", "))
    }

    fn one_of_hashes(&self, expr: &str, hashes: &[u64]) -> String {
        format!(
            "{expr} IN (SELECT toUInt64(arrayJoin(splitByChar(',', '{}'))))",
            crate::dialect::comma_separated(hashes)
        )
    }

    fn first_by(&self, value: &str, order: &str, condition: Option<&str>) -> String {
        match condition {
            Some(condition) => format!("argMinIf({value}, {order}, {condition})"),
            None => format!("argMin({value}, {order})"),
        }
    }

    fn any_value(&self, expr: &str) -> String {
        format!("any({expr})")
    }

    fn bool_or(&self, condition: &str) -> String {
        format!("toBool(max(toUInt8({condition})))")
    }

    fn count_if(&self, condition: &str) -> String {
        format!("toInt64(countIf({condition}))")
    }

    fn bit_mask(&self, bit: &str, condition: &str) -> String {
        // A signed shift count makes bitShiftLeft signed; an unsigned one keeps it UInt64.
        format!(
            "groupBitOr(if({condition}, bitShiftLeft(toUInt64(1), toUInt8({bit})), toUInt64(0)))"
        )
    }

    fn quantile(&self, expr: &str, q: f64) -> String {
        // Interpolated, as DuckDB's quantile_cont and PostHog's.
        format!("quantileExactInclusive({q})({expr})")
    }

    fn distinct_small(&self, index: &str) -> String {
        format!("toInt64(bitCount(groupBitOr(bitShiftLeft(toUInt64(1), toUInt8({index})))))")
    }

    fn distinct_small_for_long_runs(&self) -> bool {
        true
    }

    fn group_by_all(&self) -> &'static str {
        "GROUP BY ALL"
    }
}
