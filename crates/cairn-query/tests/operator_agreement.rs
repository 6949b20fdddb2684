//! One operator table, two engines: for every filter of a generated corpus
//! (operators × filter values) and every property value (strings in several
//! cases, numbers, bools, null, lists, objects, dates, epoch numbers, and a
//! missing property), flag matching in Rust and insight SQL on a real DuckDB
//! store give the same answer. The only exceptions are the differences
//! `cairn_flags::operators` documents, each excluded here by name.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Map, Value};

use arrow_array::Int32Array;
use cairn_core::Event;
use cairn_core::ProjectId;
use cairn_flags::operators::{Difference, Operator, RULES};
use cairn_flags::PropertyFilter;
use cairn_query::nodes::Properties;
use cairn_query::sql::{column, for_each_batch, Scan};
use cairn_query::{ProjectContext, QueryError};
use cairn_store::{Commit, DuckStore, EventStore, IngestStore};

/// Property values; `None` is a missing property.
fn property_values() -> Vec<Option<Value>> {
    let strings = [
        "pro",
        "Pro",
        "PRO",
        "free",
        "team@acme.io",
        "TEAM@ACME.IO",
        "",
        "null",
        "true",
        "TRUE",
        "false",
        "False",
        "yes",
        "5",
        "5.0",
        "10",
        "-3",
        "1e3",
        " 7",
        "inf",
        "NaN",
        "abc123",
        "Straße",
        "ÉCOLE",
        "école",
        "50%",
        "a_b",
        "it's",
        "2024-06-01",
        "2024-06-01T12:00:00Z",
        "2024-06-01 12:00:00",
        "2024-06-01T14:00:00+02:00",
        "2024-06-01 12:00",
        "2024-05-31T23:59:59.5Z",
        "2024-03-10T00:00:00Z",
        "1717243200",
        "not a date",
        "Sat, 01 Jun 2024 12:00:00 +0000",
        "v1.2.3",
    ];
    let mut values: Vec<Option<Value>> = strings.iter().map(|s| Some(json!(s))).collect();
    for other in [
        json!(0),
        json!(5),
        json!(5.5),
        json!(10),
        json!(-3),
        json!(1717243200),
        json!(1717243200.5),
        json!(1e20),
        json!(true),
        json!(false),
        Value::Null,
        json!([]),
        json!(["pro"]),
        json!([true]),
        json!([1, 2]),
        json!({"b": 1, "a": 2}),
    ] {
        values.push(Some(other));
    }
    values.push(None);
    values
}

/// Filter values worth trying for each operator.
fn filter_values(operator: Operator) -> Vec<Option<Value>> {
    use Operator::*;
    let some = |values: Vec<Value>| values.into_iter().map(Some).collect();
    match operator {
        Exact | IsNot => some(vec![
            json!("pro"),
            json!("PRO"),
            json!(["free", "Pro"]),
            json!([]),
            json!(5),
            json!("5"),
            json!(true),
            json!("true"),
            json!("FALSE"),
            json!([true, "false"]),
            json!("null"),
            json!(""),
            json!("team@acme.io"),
            json!("école"),
            json!("STRASSE"),
            json!(["pro", 5]),
        ]),
        Icontains | NotIcontains | StartsWith | NotStartsWith | EndsWith | NotEndsWith => {
            some(vec![
                json!("PRO"),
                json!("acme"),
                json!(""),
                json!("@"),
                json!("%"),
                json!("_"),
                json!("'"),
                json!("É"),
                json!("é"),
                json!("1"),
                json!("E"),
                json!(5),
            ])
        }
        Regex | NotRegex => some(vec![
            json!("^pro$"),
            json!("(?i)^pro$"),
            json!(r"acme\.io$"),
            json!("^[0-9]+$"),
            json!(""),
            json!(r"^\w+$"),
            json!(r"\d"),
            json!("(unclosed"),
            json!(r"^(.)\1"),
            json!("^(?!pro)"),
            json!("a{2,}|%"),
            json!(5),
        ]),
        Gt | Gte | Lt | Lte => some(vec![
            json!(5),
            json!("5"),
            json!(0),
            json!(-3.5),
            json!(1e3),
            json!("abc"),
            json!(" 5"),
            json!(1717243200),
        ]),
        Between | NotBetween => some(vec![
            json!([0, 10]),
            json!(["1", "6"]),
            json!([10, 0]),
            json!([5]),
            json!("5"),
        ]),
        IsSet | IsNotSet => vec![None],
        IsDateBefore | IsDateAfter | IsDateExact => some(vec![
            json!("2024-06-01"),
            json!("2024-06-01T12:00:00Z"),
            json!("2024-06-01T14:00:00+02:00"),
            json!("2024-06-01 12:00"),
            json!("-1d"),
            json!("-7d"),
            json!("-3m"),
            json!("not a date"),
            json!(1717243200),
        ]),
        _ => vec![],
    }
}

/// The documented difference a (filter, property value) pair falls under.
fn difference(filter: &PropertyFilter, value: &Value) -> Option<Difference> {
    use Operator::*;
    if matches!(filter.operator, IsSet | IsNotSet) {
        return value.is_null().then_some(Difference::NullIsMissing);
    }
    match value {
        Value::Null => Some(Difference::NullIsMissing),
        Value::Array(_) | Value::Object(_) => Some(Difference::StructuredText),
        Value::String(s) => {
            let pattern = filter.value.as_ref().and_then(Value::as_str).unwrap_or("");
            let perl_class = ["\\d", "\\w", "\\s", "\\b"]
                .iter()
                .any(|c| pattern.contains(c));
            if matches!(filter.operator, Regex | NotRegex) && perl_class && !s.is_ascii() {
                Some(Difference::UnicodeClasses)
            } else if s.starts_with("Sat, ") {
                Some(Difference::LooseDates)
            } else {
                None
            }
        }
        Value::Number(n)
            if n.to_string().contains('e')
                && !matches!(
                    filter.operator,
                    Gt | Gte
                        | Lt
                        | Lte
                        | Between
                        | NotBetween
                        | IsDateBefore
                        | IsDateAfter
                        | IsDateExact
                ) =>
        {
            Some(Difference::NumberSpelling)
        }
        _ => None,
    }
}

/// Why insights refuse a filter: a regex beyond RE2, which flags evaluate,
/// or a value no operator can read, for which flags match no present
/// property (and give missing ones the table's answer).
fn refusal(filter: &PropertyFilter) -> Difference {
    let pattern = filter.value.as_ref().and_then(Value::as_str).unwrap_or("");
    let fancy = ["(?=", "(?!", "(?<=", "(?<!", "\\1"]
        .iter()
        .any(|construct| pattern.contains(construct));
    if matches!(filter.operator, Operator::Regex | Operator::NotRegex) && fancy {
        Difference::FancyRegex
    } else {
        Difference::UnusableValue
    }
}

struct Corpus {
    _dir: tempfile::TempDir,
    store: DuckStore,
    /// Each row's properties, by row number.
    rows: Vec<Map<String, Value>>,
}

impl Corpus {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = DuckStore::open(dir.path(), 2).unwrap();
        let at = DateTime::parse_from_rfc3339("2024-03-10T12:00:00Z")
            .unwrap()
            .to_utc();
        let mut rows = Vec::new();
        let mut events = Vec::new();
        for (i, value) in property_values().into_iter().enumerate() {
            let mut properties = Map::new();
            properties.insert("row".into(), json!(i));
            if let Some(value) = value {
                properties.insert("k".into(), value);
            }
            events.push(Event {
                project_id: ProjectId(1),
                uuid: uuid::Uuid::new_v4(),
                event: "e".into(),
                distinct_id: "d".into(),
                person_id: None,
                timestamp: at,
                inserted_at: at,
                properties: properties.clone(),
                groups: vec![None; 2],
            });
            rows.push(properties);
        }
        let commit = Commit {
            events,
            ..Commit::default()
        };
        store.writer().unwrap().commit(Arc::new(commit)).unwrap();
        Self {
            _dir: dir,
            store,
            rows,
        }
    }

    /// The rows insight SQL keeps for `filter`.
    fn sql(&self, ctx: &ProjectContext, filter: &Value) -> Result<BTreeSet<usize>, QueryError> {
        let properties: Properties = serde_json::from_value(json!([filter])).unwrap();
        let (from, to) = (
            DateTime::parse_from_rfc3339("2024-03-01T00:00:00Z")
                .unwrap()
                .to_utc(),
            DateTime::parse_from_rfc3339("2024-03-31T00:00:00Z")
                .unwrap()
                .to_utc(),
        );
        let scanner = self.store.scanner().unwrap();
        let d = scanner.dialect();
        let mut scan = Scan::new(ctx, d, from, to);
        scan.properties(&properties, "properties")?;
        let sql = format!(
            "SELECT {} {}",
            d.integer(&d.json_text("e.properties", "row")),
            scan.from_where()
        );
        let mut rows = BTreeSet::new();
        for_each_batch(&*scanner, &sql, |batch| {
            let column = column::<Int32Array>(batch, 0)?;
            rows.extend(column.values().iter().map(|&r| r as usize));
            Ok(())
        })?;
        Ok(rows)
    }
}

fn context(timezone: &str, now: DateTime<Utc>) -> ProjectContext {
    let mut ctx = ProjectContext::new(ProjectId(1), timezone, 0, now);
    ctx.person_overrides = false;
    ctx
}

#[test]
fn flags_and_insights_agree_on_every_operator() {
    let corpus = Corpus::new();
    let now = DateTime::parse_from_rfc3339("2024-06-02T06:00:00Z")
        .unwrap()
        .to_utc();
    let (mut compared, mut excluded) = (0, 0);
    let mut disagreements = Vec::new();
    for timezone in ["UTC", "Europe/Berlin"] {
        let ctx = context(timezone, now);
        let tz: Tz = timezone.parse().unwrap();
        for rule in RULES.iter().filter(|r| r.insights) {
            let values = filter_values(rule.operator);
            assert!(!values.is_empty(), "no corpus for {}", rule.name);
            for value in values {
                let mut json = json!({"key": "k", "operator": rule.name});
                if let Some(value) = &value {
                    json["value"] = value.clone();
                }
                let filter: PropertyFilter = serde_json::from_value(json.clone()).unwrap();
                let flags = |row: &Map<String, Value>| {
                    cairn_flags::properties::matches(&filter, row, tz, now)
                };
                let sql = match corpus.sql(&ctx, &json) {
                    Ok(rows) => rows,
                    Err(QueryError::Invalid { .. }) => {
                        if refusal(&filter) == Difference::UnusableValue {
                            for row in &corpus.rows {
                                if let Some(present) = row.get("k") {
                                    assert!(
                                        !flags(row),
                                        "{json}: flags matched {present} with a value insights refuse"
                                    );
                                }
                            }
                        }
                        excluded += 1;
                        continue;
                    }
                    Err(other) => panic!("{json}: {other}"),
                };
                for (i, row) in corpus.rows.iter().enumerate() {
                    if let Some(value) = row.get("k") {
                        if difference(&filter, value).is_some() {
                            excluded += 1;
                            continue;
                        }
                    }
                    compared += 1;
                    if flags(row) != sql.contains(&i) {
                        disagreements.push(format!(
                            "{timezone}: {json} on {:?}: flags {}, insights {}",
                            row.get("k"),
                            flags(row),
                            sql.contains(&i)
                        ));
                    }
                }
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    // The exclusions stay a small part of the corpus.
    assert!(
        compared > 4 * excluded,
        "{compared} compared, {excluded} excluded"
    );
}

/// Insights' relative dates count back from the query's `now`, not the
/// wall clock (they read the wall clock before).
#[test]
fn relative_dates_in_insights_use_the_query_now() {
    let corpus = Corpus::new();
    let now = DateTime::parse_from_rfc3339("2024-03-15T12:00:00Z")
        .unwrap()
        .to_utc();
    let ctx = context("UTC", now);
    let filter = json!({"key": "k", "operator": "is_date_after", "value": "-7d"});
    let rows = corpus.sql(&ctx, &filter).unwrap();
    let march_10 = corpus
        .rows
        .iter()
        .position(|r| r.get("k") == Some(&json!("2024-03-10T00:00:00Z")))
        .unwrap();
    assert!(rows.contains(&march_10));
}
