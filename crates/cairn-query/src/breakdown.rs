//! Breakdowns (spec/insights.md §0.4, §1.6): the value expression, the null
//! and "Other" labels, and the ranking that keeps the top values.

use std::cmp::Ordering;

use serde_json::Value;

use crate::error::{QueryError, Result};
use crate::nodes::{BreakdownFilter, BreakdownType, PropertyKind};
use cairn_store::dialect::Dialect;

use crate::sql::Scan;

pub const NULL_LABEL: &str = "$$_posthog_breakdown_null_$$";
pub const OTHER_LABEL: &str = "$$_posthog_breakdown_other_$$";
pub const DEFAULT_LIMIT: usize = 25;
/// Joins the parts of a multi-property breakdown value in one SQL string.
const PART_SEPARATOR: char = '\u{1f}';

#[derive(Debug, Clone)]
struct Part {
    kind: PropertyKind,
    key: String,
    group: Option<u8>,
    normalize_url: bool,
}

#[derive(Debug, Clone)]
pub struct Breakdown {
    parts: Vec<Part>,
    multi: bool,
    pub limit: usize,
    pub hide_other: bool,
}

fn kind_of(kind: Option<BreakdownType>) -> PropertyKind {
    match kind.unwrap_or(BreakdownType::Event) {
        BreakdownType::Event => PropertyKind::Event,
        BreakdownType::Person => PropertyKind::Person,
        BreakdownType::Group => PropertyKind::Group,
    }
}

fn key_of(value: &Value, field: &str) -> Result<String> {
    match value {
        Value::String(key) if !key.is_empty() => Ok(key.clone()),
        _ => Err(QueryError::invalid(field, "a breakdown is a property name")),
    }
}

impl Breakdown {
    /// `None` when the filter asks for no breakdown.
    pub fn parse(filter: &BreakdownFilter) -> Result<Option<Self>> {
        let field = "breakdownFilter";
        let normalize = filter.breakdown_normalize_url.unwrap_or(false);
        let (parts, multi) = match (&filter.breakdowns, &filter.breakdown) {
            (Some(items), _) if !items.is_empty() => {
                if items.len() > 3 {
                    return Err(QueryError::invalid(
                        format!("{field}.breakdowns"),
                        "at most 3 breakdowns",
                    ));
                }
                let parts = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        Ok(Part {
                            kind: kind_of(item.kind),
                            key: key_of(
                                &item.property,
                                &format!("{field}.breakdowns[{i}].property"),
                            )?,
                            group: item.group_type_index,
                            normalize_url: item.normalize_url.unwrap_or(false),
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                (parts, true)
            }
            (_, Some(Value::Null)) | (_, None) => return Ok(None),
            (_, Some(value)) => {
                let part = Part {
                    kind: kind_of(filter.breakdown_type),
                    key: key_of(value, &format!("{field}.breakdown"))?,
                    group: filter.breakdown_group_type_index,
                    normalize_url: normalize,
                };
                (vec![part], false)
            }
        };
        if let Some(0) = filter.breakdown_limit {
            return Err(QueryError::invalid(
                format!("{field}.breakdown_limit"),
                "must be at least 1",
            ));
        }
        Ok(Some(Self {
            parts,
            multi,
            limit: filter.breakdown_limit.unwrap_or(DEFAULT_LIMIT),
            hide_other: filter.breakdown_hide_other_aggregation.unwrap_or(false),
        }))
    }

    /// The value of each event as one SQL string, null label for none.
    pub fn sql(&self, scan: &mut Scan<'_>) -> Result<String> {
        self.expression(scan, true)
    }

    /// The value of each event as one SQL string, NULL for none.
    pub fn raw_sql(&self, scan: &mut Scan<'_>) -> Result<String> {
        self.expression(scan, false)
    }

    /// Whether values are a group's (scalars in funnels, not arrays).
    pub fn is_group(&self) -> bool {
        !self.multi && self.parts[0].kind == PropertyKind::Group
    }

    pub fn is_multi(&self) -> bool {
        self.multi
    }

    fn expression(&self, scan: &mut Scan<'_>, null_label: bool) -> Result<String> {
        let d = scan.dialect();
        let mut parts = Vec::new();
        for (i, part) in self.parts.iter().enumerate() {
            let field = if self.multi {
                format!("breakdownFilter.breakdowns[{i}]")
            } else {
                "breakdownFilter.breakdown_group_type_index".into()
            };
            let group = match (part.kind, part.group) {
                (PropertyKind::Group, None) => {
                    return Err(QueryError::invalid(
                        field,
                        "a group breakdown needs its group type index",
                    ))
                }
                (_, group) => group,
            };
            let mut x = scan.property(part.kind, &part.key, group, &field)?;
            if part.normalize_url {
                x = format!(
                    "coalesce(nullif({}, ''), CASE WHEN {x} IS NULL THEN NULL ELSE '/' END)",
                    d.trim_end(&x, "/?#")
                );
            }
            parts.push(if null_label {
                format!("coalesce(nullif({x}, ''), {})", d.string(NULL_LABEL))
            } else {
                format!("coalesce({x}, '')")
            });
        }
        let separator = PART_SEPARATOR.to_string();
        let joined = if parts.len() == 1 {
            parts.pop().unwrap_or_default()
        } else {
            d.concat_with(&separator, &parts)
        };
        Ok(if null_label {
            joined
        } else {
            // NULL when every part is missing or empty.
            let empty = separator.repeat(self.parts.len() - 1);
            format!("nullif({joined}, {})", d.string(&empty))
        })
    }

    /// The parts of a value. The empty value (every part missing, NULL in
    /// `raw_sql`) is one "" per part, as PostHog's `['', '']`.
    pub fn parts_of<'t>(&self, text: &'t str) -> Vec<&'t str> {
        if text.is_empty() {
            return vec![""; self.parts.len()];
        }
        text.split(PART_SEPARATOR).collect()
    }

    /// The parts of a multi-property value: "Other" is one Other per
    /// breakdown, as PostHog writes it.
    fn multi_parts<'t>(&self, text: &'t str) -> Vec<&'t str> {
        if text == OTHER_LABEL {
            vec![OTHER_LABEL; self.parts.len()]
        } else {
            text.split(PART_SEPARATOR).collect()
        }
    }

    /// A value as the response's `breakdown_value`.
    pub fn value_json(&self, text: &str) -> Value {
        if self.multi {
            Value::Array(
                self.multi_parts(text)
                    .into_iter()
                    .map(|p| Value::String(p.into()))
                    .collect(),
            )
        } else {
            Value::String(text.into())
        }
    }

    /// The value the response showed as `value` (its `breakdown_value`),
    /// in the form [`Self::sql`] computes: the inverse of [`Self::value_json`].
    pub fn text_of(&self, value: &Value, field: &str) -> Result<String> {
        let scalar = |v: &Value| match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(QueryError::invalid(
                field,
                format!("{value} is not a breakdown value of the insight"),
            )),
        };
        match (self.multi, value) {
            (true, Value::Array(parts)) if parts.len() == self.parts.len() => {
                let parts: Vec<String> = parts.iter().map(scalar).collect::<Result<_>>()?;
                if parts.iter().all(|p| p == OTHER_LABEL) {
                    Ok(OTHER_LABEL.to_string())
                } else {
                    Ok(parts.join(&PART_SEPARATOR.to_string()))
                }
            }
            (true, _) => Err(QueryError::invalid(
                field,
                format!(
                    "a value of {} breakdowns is a list of {} values",
                    self.parts.len(),
                    self.parts.len()
                ),
            )),
            // A one-element list, as funnels show single values.
            (false, Value::Array(parts)) if parts.len() == 1 => scalar(&parts[0]),
            (false, value) => scalar(value),
        }
    }

    /// The label a value contributes to a series label.
    pub fn label(&self, text: &str) -> String {
        if self.multi {
            self.multi_parts(text).join("::")
        } else {
            text.to_string()
        }
    }
}

/// SQL true when the value `expr` (see [`Breakdown::sql`]) is one of
/// `values`, or with `other`, none of them (the "Other" bucket).
pub fn one_of(d: &dyn Dialect, expr: &str, values: &[String], other: bool) -> String {
    if values.is_empty() {
        return if other { "TRUE" } else { "FALSE" }.into();
    }
    let list: Vec<String> = values.iter().map(|v| d.string(v)).collect();
    let not = if other { "NOT " } else { "" };
    format!("{expr} {not}IN ({})", list.join(", "))
}

fn ordering(value: &str) -> u8 {
    match value {
        OTHER_LABEL => 2,
        NULL_LABEL => 1,
        _ => 0,
    }
}

/// PostHog's order of breakdown values: real values before the null label
/// before "Other", larger totals first, then by value.
pub fn compare_ranked(a: (&str, f64), b: (&str, f64)) -> Ordering {
    ordering(a.0)
        .cmp(&ordering(b.0))
        .then(b.1.partial_cmp(&a.1).unwrap_or(Ordering::Equal))
        .then(a.0.cmp(b.0))
}

/// Splits `(value, total)` into the values kept (in order) and the rest.
pub fn top_values(mut totals: Vec<(String, f64)>, limit: usize) -> (Vec<String>, Vec<String>) {
    totals.sort_by(|a, b| compare_ranked((&a.0, a.1), (&b.0, b.1)));
    let rest = totals.split_off(totals.len().min(limit));
    (
        totals.into_iter().map(|(v, _)| v).collect(),
        rest.into_iter().map(|(v, _)| v).collect(),
    )
}
