//! Date ranges and buckets (spec/insights.md §0.2). Everything calendar-like
//! happens in the project's local wall-clock time, so a day is a local day
//! across DST changes; instants are converted back to UTC only to scan.

use chrono::{
    DateTime, Datelike, Days, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone,
    Timelike, Utc,
};

use crate::context::{ProjectContext, WeekStart};
use crate::error::{QueryError, Result};
use crate::nodes::{CompareFilter, DateRange, Interval};

/// The local wall-clock reading of an instant.
pub fn local(ctx: &ProjectContext, instant: DateTime<Utc>) -> NaiveDateTime {
    instant.with_timezone(&ctx.timezone).naive_local()
}

/// The instant of a local reading; in a DST gap, the first instant after it.
pub fn instant(ctx: &ProjectContext, local: NaiveDateTime) -> DateTime<Utc> {
    let mut reading = local;
    for _ in 0..4 {
        if let Some(t) = ctx.timezone.from_local_datetime(&reading).earliest() {
            return t.to_utc();
        }
        reading += TimeDelta::minutes(30);
    }
    Utc.from_utc_datetime(&local)
}

fn midnight(date: NaiveDate) -> NaiveDateTime {
    date.and_time(NaiveTime::MIN)
}

/// The start of the bucket holding `t`.
pub fn align(t: NaiveDateTime, interval: Interval, week_start: WeekStart) -> NaiveDateTime {
    match interval {
        Interval::Minute => t
            .with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(t),
        Interval::Hour => midnight(t.date()) + TimeDelta::hours(t.hour().into()),
        Interval::Day => midnight(t.date()),
        Interval::Week => {
            let from_start = match week_start {
                WeekStart::Sunday => t.weekday().num_days_from_sunday(),
                WeekStart::Monday => t.weekday().num_days_from_monday(),
            };
            midnight(t.date() - Days::new(from_start.into()))
        }
        Interval::Month => midnight(t.date().with_day(1).unwrap_or(t.date())),
    }
}

/// `t` moved by `n` intervals (months keep the day, clamped).
pub fn shift(t: NaiveDateTime, interval: Interval, n: i64) -> NaiveDateTime {
    match interval {
        Interval::Minute => t + TimeDelta::minutes(n),
        Interval::Hour => t + TimeDelta::hours(n),
        Interval::Day => t + TimeDelta::days(n),
        Interval::Week => t + TimeDelta::days(7 * n),
        Interval::Month => {
            let months = Months::new(n.unsigned_abs() as u32);
            if n >= 0 {
                t.checked_add_months(months).unwrap_or(t)
            } else {
                t.checked_sub_months(months).unwrap_or(t)
            }
        }
    }
}

/// A `date_from`/`date_to` value: relative to now or absolute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DateValue {
    Relative { local: NaiveDateTime, hours: bool },
    Absolute(NaiveDateTime),
}

impl DateValue {
    pub fn local(self) -> NaiveDateTime {
        match self {
            Self::Relative { local, .. } | Self::Absolute(local) => local,
        }
    }
}

/// Parses `-7d`, `-1mStart`, `dStart`, `-2h`, ISO dates and datetimes,
/// between the years 1 and 9999.
pub fn parse_date(ctx: &ProjectContext, text: &str, field: &str) -> Result<DateValue> {
    let value = parse_any_date(ctx, text, field)?;
    if !(1..=9999).contains(&value.local().year()) {
        return Err(QueryError::invalid(
            field,
            format!("`{text}` is outside the years 1 to 9999"),
        ));
    }
    Ok(value)
}

fn parse_any_date(ctx: &ProjectContext, text: &str, field: &str) -> Result<DateValue> {
    if let Some(value) = parse_relative(ctx, text) {
        return Ok(value);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(DateValue::Absolute(local(ctx, t.to_utc())));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(DateValue::Absolute(midnight(date)));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(DateValue::Absolute(t));
        }
    }
    Err(QueryError::invalid(
        field,
        format!("`{text}` is neither a date (2024-01-31, 2024-01-31T12:00:00Z) nor relative (-7d, -1mStart, all)"),
    ))
}

fn parse_relative(ctx: &ProjectContext, text: &str) -> Option<DateValue> {
    let body = text.strip_prefix('-').unwrap_or(text);
    let (body, snap) = if let Some(b) = body.strip_suffix("Start") {
        (b, Some(true))
    } else if let Some(b) = body.strip_suffix("End") {
        (b, Some(false))
    } else {
        (body, None)
    };
    let unit = body.chars().last()?;
    let digits = &body[..body.len() - unit.len_utf8()];
    if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 6 {
        return None;
    }
    let n: i64 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let now = local(ctx, ctx.now);
    let months = |m: i64| now.checked_sub_months(Months::new(m as u32));
    let then = match unit {
        's' => now - TimeDelta::seconds(n),
        'M' => now - TimeDelta::minutes(n),
        'h' => now - TimeDelta::hours(n),
        'd' => now - TimeDelta::days(n),
        'w' => now - TimeDelta::weeks(n),
        'q' => now - TimeDelta::weeks(13 * n),
        'm' => months(n)?,
        'y' => months(12 * n)?,
        _ => return None,
    };
    let snapped = match snap {
        None => then,
        Some(start) => {
            let (begin, next) = match unit {
                'h' => {
                    let b = align(then, Interval::Hour, ctx.week_start);
                    (b, b + TimeDelta::hours(1))
                }
                'w' => {
                    let b = align(then, Interval::Week, ctx.week_start);
                    (b, b + TimeDelta::weeks(1))
                }
                'm' | 'q' => {
                    let b = align(then, Interval::Month, ctx.week_start);
                    (b, shift(b, Interval::Month, 1))
                }
                'y' => {
                    let b = midnight(NaiveDate::from_ymd_opt(then.year(), 1, 1)?);
                    (b, shift(b, Interval::Month, 12))
                }
                'M' => {
                    let b = align(then, Interval::Minute, ctx.week_start);
                    (b, b + TimeDelta::minutes(1))
                }
                's' => (then, then),
                _ => {
                    let b = midnight(then.date());
                    (b, b + TimeDelta::days(1))
                }
            };
            if start {
                begin
            } else {
                next - TimeDelta::microseconds(1)
            }
        }
    };
    Some(DateValue::Relative {
        local: snapped,
        hours: unit == 'h',
    })
}

/// A query's resolved range: local readings of its ends, the interval, and
/// whether the ends are exact (`explicitDate`).
#[derive(Debug, Clone)]
pub struct Range {
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
    pub interval: Interval,
    pub explicit: bool,
    /// `date_from` was `-Nd` with N a multiple of 7 and `date_to` not relative.
    pub whole_weeks_back: Option<i64>,
}

fn end_of_day(t: NaiveDateTime) -> NaiveDateTime {
    midnight(t.date()) + TimeDelta::days(1) - TimeDelta::microseconds(1)
}

impl Range {
    /// Resolves `dateRange` by PostHog's rules; `earliest` answers `all`.
    pub fn resolve(
        ctx: &ProjectContext,
        range: &DateRange,
        interval: Interval,
        earliest: impl FnOnce() -> Result<Option<DateTime<Utc>>>,
    ) -> Result<Self> {
        let explicit = range.explicit_date.unwrap_or(false);
        let now = local(ctx, ctx.now);
        let to = match range.date_to.as_deref() {
            None => DateValue::Relative {
                local: now,
                hours: false,
            },
            Some(text) => parse_date(ctx, text, "dateRange.date_to")?,
        };
        let to_local = if explicit {
            to.local()
        } else {
            match (interval, to) {
                (Interval::Day | Interval::Week | Interval::Month, _) => end_of_day(to.local()),
                (Interval::Hour, DateValue::Relative { local, .. }) => {
                    align(local, Interval::Hour, ctx.week_start) + TimeDelta::hours(1)
                        - TimeDelta::microseconds(1)
                }
                (Interval::Minute, DateValue::Relative { local, .. }) => {
                    align(local, Interval::Minute, ctx.week_start) + TimeDelta::minutes(1)
                        - TimeDelta::microseconds(1)
                }
                (_, value) => value.local(),
            }
        };
        let mut whole_weeks_back = None;
        let from_local = match range.date_from.as_deref() {
            None => midnight(now.date()) - TimeDelta::days(7),
            Some("all") => match earliest()? {
                Some(t) => local(ctx, t),
                None => midnight(now.date()) - TimeDelta::days(7),
            },
            Some(text) => match parse_date(ctx, text, "dateRange.date_from")? {
                DateValue::Relative { local, hours } => {
                    if let Some(days) = text
                        .strip_prefix('-')
                        .and_then(|t| t.strip_suffix('d'))
                        .and_then(|n| n.parse::<i64>().ok())
                    {
                        let to_relative =
                            matches!(to, DateValue::Relative { .. }) && range.date_to.is_some();
                        if days % 7 == 0 && !to_relative {
                            whole_weeks_back = Some(days);
                        }
                    }
                    if explicit || interval == Interval::Minute {
                        local
                    } else if hours {
                        align(local, Interval::Hour, ctx.week_start)
                    } else {
                        midnight(local.date())
                    }
                }
                DateValue::Absolute(local) => local,
            },
        };
        if from_local > to_local {
            return Err(QueryError::invalid(
                "dateRange",
                "date_from is after date_to",
            ));
        }
        Ok(Self {
            from: from_local,
            to: to_local,
            interval,
            explicit,
            whole_weeks_back,
        })
    }

    /// The first local reading whose events count (trends' WHERE bound).
    pub fn scan_from(&self, ctx: &ProjectContext) -> NaiveDateTime {
        if self.explicit {
            return self.from;
        }
        match self.interval {
            Interval::Minute | Interval::Hour => self.from,
            Interval::Week => midnight(self.from.date()),
            _ => align(self.from, self.interval, ctx.week_start),
        }
    }

    /// The instants `[scan_from, to]` to scan.
    pub fn instants(&self, ctx: &ProjectContext) -> (DateTime<Utc>, DateTime<Utc>) {
        (instant(ctx, self.scan_from(ctx)), instant(ctx, self.to))
    }

    /// Local starts of every bucket from `from`'s bucket through `to`.
    pub fn buckets(&self, ctx: &ProjectContext) -> Vec<NaiveDateTime> {
        let mut buckets = Vec::new();
        let mut start = align(self.from, self.interval, ctx.week_start);
        while start <= self.to && buckets.len() < MAX_BUCKETS {
            buckets.push(start);
            start = shift(start, self.interval, 1);
        }
        buckets
    }

    /// The same range `n` intervals (or `days`) earlier, for comparison.
    pub fn earlier(&self, ctx: &ProjectContext) -> Self {
        let (from, to) = match (self.interval, self.whole_weeks_back) {
            (Interval::Day, Some(days)) => (
                self.from - TimeDelta::days(days),
                self.to - TimeDelta::days(days),
            ),
            _ => {
                let n = self.buckets(ctx).len() as i64;
                (
                    shift(self.from, self.interval, -n),
                    shift(self.to, self.interval, -n),
                )
            }
        };
        Self {
            from,
            to,
            ..self.clone()
        }
    }

    /// The range moved back by a relative amount (`compare_to: "-1w"`).
    pub fn moved_back(&self, ctx: &ProjectContext, by: &str) -> Result<Self> {
        let Some(DateValue::Relative { local, .. }) = parse_relative(ctx, by) else {
            return Err(QueryError::invalid(
                "compareFilter.compare_to",
                format!("`{by}` is not a relative date such as -1w or -30d"),
            ));
        };
        let delta = local - self::local(ctx, ctx.now);
        let moved = |t: NaiveDateTime| {
            t.checked_add_signed(delta)
                .filter(|t| (1..=9999).contains(&t.year()))
        };
        match (moved(self.from), moved(self.to)) {
            (Some(from), Some(to)) => Ok(Self {
                from,
                to,
                ..self.clone()
            }),
            _ => Err(QueryError::invalid(
                "compareFilter.compare_to",
                format!("`{by}` moves the range outside the years 1 to 9999"),
            )),
        }
    }
}

/// The periods a `compareFilter` asks for, as trends and stickiness share
/// them: the range alone, or `current` and `previous`, the previous being the
/// range moved back by `compare_to` or, without it, the preceding range.
pub fn compare_periods(
    ctx: &ProjectContext,
    range: &Range,
    compare: &CompareFilter,
) -> Result<Vec<(Range, Option<&'static str>)>> {
    if compare.compare != Some(true) {
        return Ok(vec![(range.clone(), None)]);
    }
    let previous = match &compare.compare_to {
        Some(by) => range.moved_back(ctx, by)?,
        None => range.earlier(ctx),
    };
    Ok(vec![
        (range.clone(), Some("current")),
        (previous, Some("previous")),
    ])
}

/// Beyond this, a range is refused rather than answered slowly.
pub const MAX_BUCKETS: usize = 10_000;

/// `days` strings of PostHog's responses.
pub fn day_string(bucket: NaiveDateTime, interval: Interval) -> String {
    match interval {
        Interval::Minute | Interval::Hour => bucket.format("%Y-%m-%d %H:%M:%S").to_string(),
        _ => bucket.format("%Y-%m-%d").to_string(),
    }
}

/// Human labels (`1-Jan-2020`, weeks as `29-Dec-2019 – 4-Jan-2020`).
pub fn label(bucket: NaiveDateTime, interval: Interval) -> String {
    match interval {
        Interval::Minute | Interval::Hour => bucket.format("%-d-%b-%Y %H:%M").to_string(),
        Interval::Day => bucket.format("%-d-%b-%Y").to_string(),
        Interval::Week => format!(
            "{} – {}",
            bucket.format("%-d-%b-%Y"),
            (bucket + TimeDelta::days(6)).format("%-d-%b-%Y")
        ),
        Interval::Month => bucket.format("%b %Y").to_string(),
    }
}

/// Checks a range's bucket count before any work is done.
pub fn check_buckets(buckets: &[NaiveDateTime]) -> Result<()> {
    if buckets.len() >= MAX_BUCKETS {
        return Err(QueryError::invalid(
            "interval",
            format!("the range has more than {MAX_BUCKETS} buckets; choose a longer interval"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::ProjectId;

    fn ctx(tz: &str, now: &str) -> ProjectContext {
        let now = DateTime::parse_from_rfc3339(now).unwrap().to_utc();
        ProjectContext::new(ProjectId(1), tz, 0, now)
    }

    fn range(
        ctx: &ProjectContext,
        from: Option<&str>,
        to: Option<&str>,
        interval: Interval,
    ) -> Range {
        let range = DateRange {
            date_from: from.map(String::from),
            date_to: to.map(String::from),
            explicit_date: None,
        };
        Range::resolve(ctx, &range, interval, || Ok(None)).unwrap()
    }

    #[test]
    fn last_seven_days_has_eight_daily_buckets() {
        let ctx = ctx("UTC", "2024-03-15T10:30:00Z");
        let r = range(&ctx, Some("-7d"), None, Interval::Day);
        let buckets = r.buckets(&ctx);
        assert_eq!(buckets.len(), 8);
        assert_eq!(day_string(buckets[0], Interval::Day), "2024-03-08");
        assert_eq!(r.to.to_string(), "2024-03-15 23:59:59.999999");
    }

    #[test]
    fn a_local_day_spans_twenty_three_hours_across_spring_forward() {
        let ctx = ctx("America/New_York", "2024-03-12T12:00:00Z");
        let r = range(&ctx, Some("2024-03-10"), Some("2024-03-11"), Interval::Day);
        let (from, to) = r.instants(&ctx);
        assert_eq!(from.to_rfc3339(), "2024-03-10T05:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2024-03-12T03:59:59.999999+00:00");
        let day = instant(&ctx, r.buckets(&ctx)[1]) - instant(&ctx, r.buckets(&ctx)[0]);
        assert_eq!(day, TimeDelta::hours(23));
    }

    #[test]
    fn start_and_end_snap_to_the_unit() {
        let ctx = ctx("UTC", "2024-03-15T10:30:00Z");
        let v = parse_date(&ctx, "-1mStart", "f").unwrap();
        assert_eq!(v.local().to_string(), "2024-02-01 00:00:00");
        let v = parse_date(&ctx, "-1mEnd", "f").unwrap();
        assert_eq!(v.local().to_string(), "2024-02-29 23:59:59.999999");
        let v = parse_date(&ctx, "dStart", "f").unwrap();
        assert_eq!(v.local().to_string(), "2024-03-15 00:00:00");
    }

    #[test]
    fn weeks_start_on_the_project_week_start_day() {
        let t = NaiveDate::from_ymd_opt(2024, 3, 13)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap();
        assert_eq!(
            align(t, Interval::Week, WeekStart::Sunday).to_string(),
            "2024-03-10 00:00:00"
        );
        assert_eq!(
            align(t, Interval::Week, WeekStart::Monday).to_string(),
            "2024-03-11 00:00:00"
        );
    }

    #[test]
    fn a_bad_date_names_its_field() {
        let ctx = ctx("UTC", "2024-03-15T10:30:00Z");
        let err = parse_date(&ctx, "yesterday", "dateRange.date_from").unwrap_err();
        assert!(err.to_string().starts_with("dateRange.date_from:"), "{err}");
        let err = parse_date(&ctx, "-999999q", "dateRange.date_from").unwrap_err();
        assert!(err.to_string().contains("outside the years"), "{err}");
    }
}
