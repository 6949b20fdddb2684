//! Which number of an insight a drill-down asks about: PostHog's
//! `InsightActorsQuery`, `FunnelsActorsQuery` and `StickinessActorsQuery`.
//! A field the insight kind does not read is refused, never ignored.

use serde::Deserialize;
use serde_json::Value;

use chrono::NaiveDateTime;

use crate::breakdown::Breakdown;
use crate::dates::{day_string, Range};
use crate::error::{QueryError, Result};
use crate::nodes::{InsightQuery, Interval};

/// The cell's coordinates; which ones apply depends on the insight.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cell {
    kind: String,
    source: Value,
    /// Trends and lifecycle: the bucket (as the insight's `days`);
    /// stickiness: the number of active intervals.
    day: Option<Value>,
    /// Lifecycle: new, returning, resurrecting or dormant.
    status: Option<String>,
    /// Retention: the cohort row.
    interval: Option<i64>,
    /// Retention (Cairn's addition): one column of the row, counting only
    /// the actors who came back then.
    column: Option<i64>,
    series: Option<i64>,
    breakdown: Option<Value>,
    compare: Option<String>,
    /// Stickiness: how `day` compares (`exact` unless cumulative).
    operator: Option<String>,
    #[serde(rename = "funnelStep")]
    funnel_step: Option<i64>,
    #[serde(rename = "funnelStepBreakdown")]
    funnel_step_breakdown: Option<Value>,
    #[serde(rename = "funnelTrendsDropOff")]
    funnel_trends_drop_off: Option<bool>,
    #[serde(rename = "funnelTrendsEntrancePeriodStart")]
    funnel_trends_entrance_period_start: Option<String>,
    #[serde(rename = "includeRecordings")]
    include_recordings: Option<bool>,
    // Bookkeeping of PostHog's client: nothing to apply.
    modifiers: Option<Value>,
    response: Option<Value>,
    version: Option<Value>,
}

/// The fields each insight kind reads.
fn fields_of(insight: &InsightQuery) -> &'static [&'static str] {
    match insight {
        InsightQuery::TrendsQuery(_) => &["day", "series", "breakdown", "compare"],
        InsightQuery::LifecycleQuery(_) => &["day", "status"],
        InsightQuery::RetentionQuery(_) => &["interval", "column", "breakdown"],
        InsightQuery::StickinessQuery(_) => &["day", "series", "compare", "operator"],
        InsightQuery::FunnelsQuery(_) => &[
            "funnelStep",
            "funnelStepBreakdown",
            "funnelTrendsDropOff",
            "funnelTrendsEntrancePeriodStart",
        ],
        InsightQuery::PathsQuery(_) => &[],
    }
}

impl Cell {
    /// Reads the node and the insight it wraps.
    pub fn parse(node: Value) -> Result<(Cell, InsightQuery)> {
        let mut cell: Cell = crate::parse(node)?;
        let kinds = [
            "InsightActorsQuery",
            "FunnelsActorsQuery",
            "StickinessActorsQuery",
        ];
        if !kinds.contains(&cell.kind.as_str()) {
            return Err(QueryError::invalid(
                "query.source.kind",
                format!(
                    "`{}` is not one of InsightActorsQuery, FunnelsActorsQuery, StickinessActorsQuery",
                    cell.kind
                ),
            ));
        }
        if cell.include_recordings == Some(true) {
            return Err(QueryError::invalid(
                "query.source.includeRecordings",
                "Cairn keeps no session recordings",
            ));
        }
        let insight = crate::parse_insight(cell.source.take()).map_err(|e| match e {
            QueryError::Invalid { field, detail } => QueryError::invalid(
                format!("query.source.source.{}", field.trim_start_matches("query.")),
                detail,
            ),
            other => other,
        })?;
        let expected = match &insight {
            InsightQuery::FunnelsQuery(_) => "FunnelsActorsQuery",
            InsightQuery::StickinessQuery(_) if cell.kind == "StickinessActorsQuery" => {
                "StickinessActorsQuery"
            }
            _ => "InsightActorsQuery",
        };
        if cell.kind != expected {
            return Err(QueryError::invalid(
                "query.source.kind",
                format!("the actors of this insight are asked for with a {expected}"),
            ));
        }
        let given = [
            ("day", cell.day.is_some()),
            ("status", cell.status.is_some()),
            ("interval", cell.interval.is_some()),
            ("column", cell.column.is_some()),
            ("series", cell.series.is_some()),
            ("breakdown", cell.breakdown.is_some()),
            ("compare", cell.compare.is_some()),
            ("operator", cell.operator.is_some()),
            ("funnelStep", cell.funnel_step.is_some()),
            ("funnelStepBreakdown", cell.funnel_step_breakdown.is_some()),
            ("funnelTrendsDropOff", cell.funnel_trends_drop_off.is_some()),
            (
                "funnelTrendsEntrancePeriodStart",
                cell.funnel_trends_entrance_period_start.is_some(),
            ),
        ];
        let read = fields_of(&insight);
        if let Some((name, _)) = given
            .iter()
            .find(|(name, present)| *present && !read.contains(name))
        {
            return Err(QueryError::invalid(
                format!("query.source.{name}"),
                "this insight's drill-down does not read it",
            ));
        }
        Ok((cell, insight))
    }

    /// The series drilled into (default the first) of `series`.
    pub fn series<'a, T>(&self, series: &'a [T]) -> Result<(usize, &'a T)> {
        let field = "query.source.series";
        let index = match self.series {
            None => 0,
            Some(i) => usize::try_from(i)
                .map_err(|_| QueryError::invalid(field, "must not be negative"))?,
        };
        let found = series.get(index).ok_or_else(|| {
            QueryError::invalid(field, format!("the insight has {} series", series.len()))
        })?;
        Ok((index, found))
    }

    /// The period drilled into of the insight's `periods` (the current one,
    /// or with `compare: previous` the one it is compared to).
    pub fn period<'a, L>(&self, periods: &'a [(Range, L)]) -> Result<&'a Range> {
        let field = "query.source.compare";
        let index = match self.compare.as_deref() {
            None | Some("current") => 0,
            Some("previous") => 1,
            Some(other) => {
                return Err(QueryError::invalid(
                    field,
                    format!("`{other}` is not current or previous"),
                ))
            }
        };
        periods
            .get(index)
            .map(|(range, _)| range)
            .ok_or_else(|| QueryError::invalid(field, "the insight compares no periods"))
    }

    /// The index in `buckets` of `day` (one of the insight's `days`), if
    /// given.
    pub fn bucket(&self, buckets: &[NaiveDateTime], interval: Interval) -> Result<Option<usize>> {
        let Some(day) = self.day_text()? else {
            return Ok(None);
        };
        let index = buckets
            .iter()
            .position(|b| day_string(*b, interval) == day)
            .ok_or_else(|| {
                QueryError::invalid(
                    "query.source.day",
                    format!("`{day}` is not one of the insight's `days`"),
                )
            })?;
        Ok(Some(index))
    }

    /// The breakdown value drilled into, in the form `breakdown` computes
    /// (required exactly when the insight has a breakdown).
    pub fn breakdown_value(&self, breakdown: Option<&Breakdown>) -> Result<Option<String>> {
        let field = "query.source.breakdown";
        match (breakdown, self.breakdown()) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(QueryError::invalid(field, "the insight has no breakdown")),
            (Some(_), None) => Err(QueryError::invalid(
                field,
                "name the breakdown value (the result's `breakdown_value`)",
            )),
            (Some(b), Some(value)) => b.text_of(value, field).map(Some),
        }
    }

    /// `day` as text (a bucket's `days` entry).
    pub fn day_text(&self) -> Result<Option<String>> {
        match &self.day {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(day)) => Ok(Some(day.clone())),
            Some(other) => Err(QueryError::invalid(
                "query.source.day",
                format!("must be one of the insight's `days`, not {other}"),
            )),
        }
    }

    /// `day` as a number of intervals (stickiness).
    pub fn day_count(&self) -> Result<i64> {
        let count = match &self.day {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        count.ok_or_else(|| {
            QueryError::invalid(
                "query.source.day",
                "must be the number of intervals the actors were active in",
            )
        })
    }

    pub fn status(&self) -> Option<&str> {
        self.status.as_deref()
    }

    pub fn operator(&self) -> Option<&str> {
        self.operator.as_deref()
    }

    /// Retention's row (required) and column.
    pub fn retention_cell(&self) -> Result<(usize, Option<usize>)> {
        let index = |value: Option<i64>, name: &str| -> Result<Option<usize>> {
            value
                .map(|i| {
                    usize::try_from(i).map_err(|_| {
                        QueryError::invalid(format!("query.source.{name}"), "must not be negative")
                    })
                })
                .transpose()
        };
        let row = index(self.interval, "interval")?.ok_or_else(|| {
            QueryError::invalid(
                "query.source.interval",
                "name the cohort row (0 is the first) whose actors to list",
            )
        })?;
        Ok((row, index(self.column, "column")?))
    }

    /// The breakdown value as the insight returned it (`breakdown_value`).
    pub fn breakdown(&self) -> Option<&Value> {
        self.breakdown.as_ref().filter(|v| !v.is_null())
    }

    pub fn funnel_step(&self) -> Option<i64> {
        self.funnel_step
    }

    pub fn funnel_step_breakdown(&self) -> Option<&Value> {
        self.funnel_step_breakdown.as_ref().filter(|v| !v.is_null())
    }

    /// Conversion trends: `(entrance period, drop-offs?)`, both or neither.
    pub fn funnel_trends(&self) -> Result<Option<(String, bool)>> {
        match (
            &self.funnel_trends_entrance_period_start,
            self.funnel_trends_drop_off,
        ) {
            (None, None) => Ok(None),
            (Some(start), Some(drop_off)) => Ok(Some((start.clone(), drop_off))),
            _ => Err(QueryError::invalid(
                "query.source.funnelTrendsEntrancePeriodStart",
                "conversion trends drill into an entrance period with funnelTrendsEntrancePeriodStart and funnelTrendsDropOff together",
            )),
        }
    }
}
