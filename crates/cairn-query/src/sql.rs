//! SQL for one scan of the events table: the joins it needs (current
//! person, current group properties), its conditions, and expressions for
//! actors, properties and local-time buckets; and reading the batches a
//! scan returns. Every engine-specific spelling comes from the scanner's
//! [`Dialect`].
//!
//! Values are written as escaped literals rather than bound parameters so
//! the engine sees constant JSON paths and timestamps and can plan with them.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;
use std::ops::ControlFlow;

use chrono::{DateTime, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use serde_json::Value;

use std::borrow::Cow;

use arrow_array::{
    Array, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    UInt64Array,
};
use arrow_schema::DataType;
use cairn_flags::operators::{self, Fold};
use cairn_flags::Operator;
use cairn_store::dialect::{Dialect, TimeUnit};
use cairn_store::identity::{CURRENT_PERSON, OVERRIDES_JOIN};
use cairn_store::EventScanner;

use crate::context::{ProjectContext, WeekStart};
use crate::error::{QueryError, Result};
use crate::nodes::{Interval, Properties, Property, PropertyKind, PropertyNode};

/// A timestamp literal for an instant (the events table stores UTC).
pub fn timestamp(d: &dyn Dialect, t: DateTime<Utc>) -> String {
    d.timestamp(t.naive_utc())
}

impl From<Interval> for TimeUnit {
    fn from(interval: Interval) -> Self {
        match interval {
            Interval::Minute => Self::Minute,
            Interval::Hour => Self::Hour,
            Interval::Day => Self::Day,
            Interval::Week => Self::Week,
            Interval::Month => Self::Month,
        }
    }
}

/// Hashing for maps keyed by the engine's hashes already.
pub type FastHash = foldhash::fast::RandomState;

/// Merged persons, by hash: old person → the person it was merged into.
pub type Merges = HashMap<u64, u64, FastHash>;

/// Whom an insight counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Person,
    Group(u8),
}

impl Actor {
    /// The actor of `aggregation_group_type_index`: persons, or a group
    /// type the project has.
    pub fn of(ctx: &ProjectContext, index: Option<u8>) -> Result<Self> {
        match index {
            Some(i) => Ok(Self::Group(
                ctx.group_type(i, "aggregation_group_type_index")?,
            )),
            None => Ok(Self::Person),
        }
    }
}

/// Distinct strings as small ids (breakdown values read row by row).
#[derive(Debug, Default)]
pub struct Interner {
    ids: std::collections::HashMap<String, u32>,
    texts: Vec<String>,
}

impl Interner {
    pub fn id(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        self.texts.push(text.to_string());
        let id = self.texts.len() as u32 - 1;
        self.ids.insert(text.to_string(), id);
        id
    }

    /// The strings, indexed by id.
    pub fn into_texts(self) -> Vec<String> {
        self.texts
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Join {
    PersonId,
    Person,
    Group(u8),
}

/// One `FROM events e … WHERE …` under construction.
#[derive(Debug, Clone)]
pub struct Scan<'a> {
    ctx: &'a ProjectContext,
    d: &'a dyn Dialect,
    joins: BTreeSet<Join>,
    conditions: Vec<String>,
    /// The instants scanned, which bound the timezone conversion.
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl<'a> Scan<'a> {
    /// Events of the project with `from <= timestamp <= to`.
    pub fn new(
        ctx: &'a ProjectContext,
        d: &'a dyn Dialect,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Self {
        Self {
            ctx,
            d,
            joins: BTreeSet::new(),
            conditions: vec![
                format!("e.project_id = {}", ctx.project.0),
                format!("e.timestamp >= {}", timestamp(d, from)),
                format!("e.timestamp <= {}", timestamp(d, to)),
            ],
            from,
            to,
        }
    }

    pub fn ctx(&self) -> &'a ProjectContext {
        self.ctx
    }

    /// The dialect the scan is written in.
    pub fn dialect(&self) -> &'a dyn Dialect {
        self.d
    }

    pub fn condition(&mut self, sql: impl Into<String>) {
        self.conditions.push(sql.into());
    }

    /// Only events named `event` (`None`: every event).
    pub fn event(&mut self, event: Option<&str>) {
        if let Some(name) = event {
            self.conditions
                .push(format!("e.event = {}", self.d.string(name)));
        }
    }

    /// Only events whose actor is known: groups need the event's key. (A
    /// condition of the WHERE clause: a NULL key fails it as '' does.)
    pub fn require_actor(&mut self, actor: Actor) {
        if let Actor::Group(index) = actor {
            self.conditions.push(format!("e.group_{index} <> ''"));
        }
    }

    /// SQL true for events named `event` (any if `None`) that pass the
    /// filters of `properties` (at `field`).
    pub fn matches(
        &mut self,
        event: Option<&str>,
        properties: &Properties,
        field: &str,
    ) -> Result<String> {
        let mut parts = Vec::new();
        if let Some(event) = event {
            parts.push(format!("e.event = {}", self.d.string(event)));
        }
        if let Some(p) = self.predicate(properties, &format!("{field}.properties"))? {
            parts.push(p);
        }
        Ok(if parts.is_empty() {
            "TRUE".into()
        } else {
            format!("({})", parts.join(" AND "))
        })
    }

    /// ANDs a property filter tree in.
    pub fn properties(&mut self, properties: &Properties, field: &str) -> Result<()> {
        if let Some(sql) = self.predicate(properties, field)? {
            self.conditions.push(sql);
        }
        Ok(())
    }

    /// The SQL of a filter tree (registering the joins it reads).
    pub fn predicate(&mut self, properties: &Properties, field: &str) -> Result<Option<String>> {
        match &properties.0 {
            None => Ok(None),
            Some(node) => self.node(node, field).map(Some),
        }
    }

    fn node(&mut self, node: &PropertyNode, field: &str) -> Result<String> {
        let (parts, joiner) = match node {
            PropertyNode::Filter(property) => return self.filter(property, field),
            PropertyNode::All(nodes) => (nodes, " AND "),
            PropertyNode::Any(nodes) => (nodes, " OR "),
        };
        if parts.is_empty() {
            return Ok("TRUE".into());
        }
        let sql: Result<Vec<String>> = parts
            .iter()
            .enumerate()
            .map(|(i, n)| self.node(n, &format!("{field}[{i}]")))
            .collect();
        Ok(format!("({})", sql?.join(joiner)))
    }

    /// The text of a property, NULL when absent.
    pub fn property(
        &mut self,
        kind: PropertyKind,
        key: &str,
        group: Option<u8>,
        field: &str,
    ) -> Result<String> {
        let column = match kind {
            PropertyKind::Event => {
                if let Some(column) = cairn_store::schema::materialized_column(key) {
                    return Ok(format!("e.{column}"));
                }
                "e.properties".to_string()
            }
            PropertyKind::Person => {
                self.person();
                self.joins.insert(Join::Person);
                "p.properties".to_string()
            }
            PropertyKind::Group => {
                let Some(index) = group else {
                    return Err(QueryError::invalid(
                        format!("{field}.group_type_index"),
                        "a group property needs group_type_index",
                    ));
                };
                let index = self
                    .ctx
                    .group_type(index, &format!("{field}.group_type_index"))?;
                self.joins.insert(Join::Group(index));
                format!("g{index}.properties")
            }
        };
        Ok(self.d.json_text(&column, key))
    }

    fn filter(&mut self, property: &Property, field: &str) -> Result<String> {
        let x = self.property(
            property.kind,
            &property.key,
            property.group_type_index,
            field,
        )?;
        filter_sql(self.ctx, self.d, &x, property, field)
    }

    /// The actor's id as SQL: the person an event's distinct id belongs to
    /// now, or the event's key of the group type.
    pub fn actor(&mut self, actor: Actor) -> String {
        match actor {
            Actor::Person => self.person(),
            Actor::Group(index) => format!("e.group_{index}"),
        }
    }

    /// The person of the event now (following merges only if there were any).
    fn person(&mut self) -> String {
        if self.ctx.person_overrides {
            self.joins.insert(Join::PersonId);
            CURRENT_PERSON.into()
        } else {
            "e.person_id".into()
        }
    }

    /// The local wall-clock reading of `e.timestamp` (DST-correct).
    pub fn local_time(&self) -> String {
        local_time_sql(self.ctx, self.d, "e.timestamp", self.from, self.to)
    }

    /// The index of each event's bucket, counted from the bucket starting
    /// at `first` (the events are at or after it): straight from the local
    /// reading, without the bucket start of each event.
    pub fn bucket_index(&self, interval: Interval, first: NaiveDateTime) -> String {
        bucket_index_sql(self.d, interval, first, &self.local_time())
    }

    /// The local start of the bucket of each event.
    pub fn bucket(&self, interval: Interval) -> String {
        bucket_sql(self.d, &self.local_time(), interval, self.ctx.week_start)
    }

    pub fn from_where(&self) -> String {
        let mut sql = String::from("FROM events e");
        for join in &self.joins {
            let _ = match join {
                Join::PersonId => write!(sql, " {OVERRIDES_JOIN}"),
                Join::Person => write!(
                    sql,
                    " LEFT JOIN persons p ON p.project_id = e.project_id AND p.id = {}",
                    if self.joins.contains(&Join::PersonId) { CURRENT_PERSON } else { "e.person_id" }
                ),
                Join::Group(i) => write!(
                    sql,
                    " LEFT JOIN groups g{i} ON g{i}.project_id = e.project_id AND g{i}.group_type_index = {i} AND g{i}.group_key = e.group_{i}"
                ),
            };
        }
        let _ = write!(sql, " WHERE {}", self.conditions.join(" AND "));
        sql
    }
}

/// `SELECT hash, id` of every stored actor of the project passing
/// `filter` (and, if given, among `hashes`): its persons, or its groups of
/// one type (keys only seen on events are not stored). The hash is the one
/// `Scan::actor` hashes to, merged persons included (an event's current
/// person is a stored one).
pub fn stored_actors_sql(
    ctx: &ProjectContext,
    d: &dyn Dialect,
    actor: Actor,
    filter: &Properties,
    field: &str,
    hashes: Option<&[u64]>,
) -> Result<String> {
    let mut condition = stored_actor_condition(ctx, d, filter, field)?
        .map_or(String::new(), |sql| format!(" AND {sql}"));
    let project = ctx.project.0;
    let (hash, id, from) = match actor {
        Actor::Person => (
            d.hash(&["p.id"]),
            d.text("p.id"),
            format!("persons p WHERE p.project_id = {project}"),
        ),
        Actor::Group(i) => (
            d.hash(&[&format!("g{i}.group_key")]),
            format!("g{i}.group_key"),
            format!(
                "groups g{i} WHERE g{i}.project_id = {project} AND g{i}.group_type_index = {i}"
            ),
        ),
    };
    if let Some(hashes) = hashes {
        condition.push_str(&format!(" AND {}", d.one_of_hashes(&hash, hashes)));
    }
    Ok(format!("SELECT {hash}, {id} FROM {from}{condition}"))
}

/// `filter` (on the actors' own properties) as SQL over a stored person
/// row `p` or group row `g<index>`, the names a scan joins them as.
pub fn stored_actor_condition(
    ctx: &ProjectContext,
    d: &dyn Dialect,
    filter: &Properties,
    field: &str,
) -> Result<Option<String>> {
    let mut scan = Scan::new(ctx, d, DateTime::UNIX_EPOCH, DateTime::UNIX_EPOCH);
    scan.predicate(filter, field)
}

/// The number of whole `interval`s from the bucket starting at `first` to
/// the bucket of `local`: a bucket start, or any local reading at or after
/// `first` (as `first` starts a bucket, each boundary crossed starts the
/// next one, so counting boundaries is exact either way).
pub fn bucket_index_sql(
    d: &dyn Dialect,
    interval: Interval,
    first: NaiveDateTime,
    local: &str,
) -> String {
    d.boundaries_between(interval.into(), &d.timestamp(first), local)
}

/// The bucket start of a local reading, as a naive timestamp.
pub fn bucket_sql(
    d: &dyn Dialect,
    local: &str,
    interval: Interval,
    week_start: WeekStart,
) -> String {
    d.bucket_start(local, interval.into(), week_start)
}

/// `column + offset`, the offset chosen by which side of each DST change in
/// `[from, to]` the instant falls (so no engine needs time zone data, and
/// every engine agrees with chrono-tz).
pub fn local_time_sql(
    ctx: &ProjectContext,
    d: &dyn Dialect,
    column: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> String {
    let segments = offset_segments(ctx, from - TimeDelta::days(1), to + TimeDelta::days(1));
    if segments.len() == 1 {
        return match segments[0].1 {
            0 => column.to_string(),
            offset => d.add_seconds(column, &offset.to_string()),
        };
    }
    let mut offset = String::from("CASE");
    for pair in segments.windows(2) {
        let _ = write!(
            offset,
            " WHEN {column} < {} THEN {}",
            timestamp(d, pair[1].0),
            pair[0].1
        );
    }
    let _ = write!(offset, " ELSE {} END", segments[segments.len() - 1].1);
    d.add_seconds(column, &offset)
}

fn offset_at(ctx: &ProjectContext, t: DateTime<Utc>) -> i32 {
    ctx.timezone
        .offset_from_utc_datetime(&t.naive_utc())
        .fix()
        .local_minus_utc()
}

/// `(start, offset seconds)` for each stretch of constant UTC offset.
fn offset_segments(
    ctx: &ProjectContext,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, i32)> {
    let mut segments = vec![(from, offset_at(ctx, from))];
    let mut t = from;
    while t < to {
        let next = (t + TimeDelta::days(1)).min(to);
        let offset = offset_at(ctx, next);
        if offset != segments[segments.len() - 1].1 {
            // Narrow the change down to the second.
            let (mut lo, mut hi) = (t, next);
            while hi - lo > TimeDelta::seconds(1) {
                let mid = lo + (hi - lo) / 2;
                if offset_at(ctx, mid) == offset {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            segments.push((hi.with_timezone(&Utc), offset));
        }
        t = next;
    }
    segments
}

/// Each operator as SQL over the text `x` of a property (NULL when it is
/// missing), following `cairn_flags::operators`: its table gives the folds
/// and the answers for missing properties, its readers the filter values,
/// and its patterns what SQL may cast; the differences it lists are the
/// only ones from flag matching.
fn filter_sql(
    ctx: &ProjectContext,
    d: &dyn Dialect,
    x: &str,
    property: &Property,
    field: &str,
) -> Result<String> {
    let rule = property.operator.rule();
    if !rule.insights {
        return Err(QueryError::invalid(
            format!("{field}.operator"),
            format!("operator `{}` is not supported in insights", rule.name),
        ));
    }
    let value_field = format!("{field}.value");
    let unusable = |detail: &str| QueryError::invalid(&value_field, detail);
    let value = || {
        property
            .value
            .as_ref()
            .ok_or_else(|| unusable("this operator needs a value"))
    };
    let folded = || Ok::<_, QueryError>(rule.fold.apply(&operators::text(value()?)));
    let number = |value: Option<&Value>| {
        value
            .and_then(operators::number)
            .filter(|n| n.is_finite())
            .ok_or_else(|| unusable("this operator compares numbers; the value is not one"))
    };
    let x_folded = fold_sql(d, rule.fold, x);
    let x_number = number_sql(d, x);
    let positive = match property.operator {
        Operator::IsSet => return Ok(format!("{x} IS NOT NULL")),
        Operator::IsNotSet => return Ok(format!("{x} IS NULL")),
        Operator::Exact | Operator::IsNot => exact_sql(d, x, value()?),
        Operator::Icontains | Operator::NotIcontains => d.contains(&x_folded, &folded()?),
        Operator::StartsWith | Operator::NotStartsWith => d.starts_with(&x_folded, &folded()?),
        Operator::EndsWith | Operator::NotEndsWith => d.ends_with(&x_folded, &folded()?),
        Operator::Regex | Operator::NotRegex => {
            // The syntax both sides honour is the regex crate's, which is RE2's.
            let pattern = operators::text(value()?);
            regex_syntax::Parser::new()
                .parse(&pattern)
                .map_err(|e| unusable(&format!("invalid regular expression: {e}")))?;
            d.regex_matches(x, &pattern)
        }
        Operator::Gt => format!("{x_number} > {:?}", number(property.value.as_ref())?),
        Operator::Gte => format!("{x_number} >= {:?}", number(property.value.as_ref())?),
        Operator::Lt => format!("{x_number} < {:?}", number(property.value.as_ref())?),
        Operator::Lte => format!("{x_number} <= {:?}", number(property.value.as_ref())?),
        Operator::Between | Operator::NotBetween => {
            let (lo, hi) = match value()?.as_array().map(Vec::as_slice) {
                Some([lo, hi]) => (number(Some(lo))?, number(Some(hi))?),
                _ => return Err(unusable("between needs [low, high]")),
            };
            format!("{x_number} BETWEEN {lo:?} AND {hi:?}")
        }
        Operator::IsDateBefore | Operator::IsDateAfter | Operator::IsDateExact => {
            let text = value()?
                .as_str()
                .ok_or_else(|| unusable("this operator needs a date"))?;
            let instant = cairn_flags::dates::filter_instant(text, ctx.timezone, ctx.now)
                .ok_or_else(|| unusable(&format!("`{text}` is not a date")))?;
            let compare = match property.operator {
                Operator::IsDateBefore => "<",
                Operator::IsDateAfter => ">",
                _ => "=",
            };
            date_sql(ctx, d, x, compare, instant)
        }
        _ => unreachable!("the table refuses the rest in insights"),
    };
    // The operators answering true for a missing property are the negations.
    Ok(if rule.when_missing {
        format!("({x} IS NULL OR NOT {positive})")
    } else {
        positive
    })
}

/// `x` case-folded as `fold` folds in Rust.
fn fold_sql(d: &dyn Dialect, fold: Fold, x: &str) -> String {
    match fold {
        Fold::None => x.to_string(),
        Fold::Unicode => d.lower(x),
        Fold::Ascii => d.ascii_lower(x),
    }
}

/// `x` as a DOUBLE where `operators::number` reads one, else NULL.
fn number_sql(d: &dyn Dialect, x: &str) -> String {
    format!(
        "(CASE WHEN {} THEN {} END)",
        d.regex_full_match(x, operators::NUMBER_PATTERN),
        d.try_double(x)
    )
}

/// `exact` for a present `x`: truthiness against a truthy literal, else
/// folded text against any of the value's texts.
fn exact_sql(d: &dyn Dialect, x: &str, value: &Value) -> String {
    if operators::is_truthy_literal(value) {
        return format!(
            "(({} = 'true') = {})",
            fold_sql(d, Fold::Ascii, x),
            operators::truthy(value)
        );
    }
    let options: Vec<String> = match value {
        Value::Array(options) => options.iter().map(operators::text).collect(),
        single => vec![operators::text(single)],
    };
    if options.is_empty() {
        return "FALSE".into();
    }
    let options: Vec<String> = options
        .iter()
        .map(|o| d.string(&Fold::Unicode.apply(o)))
        .collect();
    format!(
        "({} IN ({}))",
        fold_sql(d, Fold::Unicode, x),
        options.join(", ")
    )
}

/// `x` read as an instant the way flags read a property date, compared
/// with `instant`: epoch seconds, ISO 8601 with an offset, or naive ISO 8601
/// in the project's timezone (compared by wall-clock reading).
fn date_sql(
    ctx: &ProjectContext,
    d: &dyn Dialect,
    x: &str,
    compare: &str,
    instant: DateTime<Utc>,
) -> String {
    let micros = instant.timestamp_micros();
    let local = instant
        .with_timezone(&ctx.timezone)
        .naive_local()
        .and_utc()
        .timestamp_micros();
    let (min, max) = (
        DateTime::<Utc>::MIN_UTC.timestamp(),
        DateTime::<Utc>::MAX_UTC.timestamp(),
    );
    let seconds = d.try_double(x);
    format!(
        "(CASE WHEN {number} THEN ({seconds} BETWEEN {min} AND {max}) \
         AND {seconds} * 1000000 {compare} {micros} \
         WHEN {zoned} THEN {zoned_micros} {compare} {micros} \
         WHEN {naive} THEN {naive_micros} {compare} {local} END)",
        number = d.regex_full_match(x, operators::NUMBER_PATTERN),
        zoned = d.regex_full_match(x, cairn_core::time::ZONED_PATTERN),
        zoned_micros = d.epoch_micros(&d.try_timestamp_tz(x)),
        naive = d.regex_full_match(x, cairn_core::time::NAIVE_PATTERN),
        naive_micros = d.epoch_micros(&d.try_timestamp(x)),
    )
}

/// Runs `sql` and hands each Arrow batch to `f`, stopping at its first
/// error.
pub fn for_each_batch(
    db: &dyn EventScanner,
    sql: &str,
    mut f: impl FnMut(&RecordBatch) -> Result<()>,
) -> Result<()> {
    tracing::debug!(sql, "insight query");
    let mut failed = None;
    db.scan(sql, &mut |batch| match f(&batch) {
        Ok(()) => ControlFlow::Continue(()),
        Err(e) => {
            failed = Some(e);
            ControlFlow::Break(())
        }
    })?;
    failed.map_or(Ok(()), Err)
}

/// Column `i` of a batch as a typed Arrow array.
///
/// Engines type integers and flags their own way (ClickHouse counts are
/// `UInt64`, its flags `UInt8`): an integer or boolean column of another
/// width or signedness is converted to the one asked for; nothing else is.
pub fn column<T: Column>(batch: &RecordBatch, i: usize) -> Result<Cow<'_, T>> {
    let array = batch.column(i);
    if let Some(typed) = array.as_any().downcast_ref::<T>() {
        return Ok(Cow::Borrowed(typed));
    }
    let wrong = || QueryError::Internal(format!("column {i} has type {}", array.data_type()));
    let convertible = |t: &DataType| t.is_integer() || *t == DataType::Boolean;
    if !convertible(array.data_type()) || !convertible(&T::TYPE) {
        return Err(wrong());
    }
    let converted = arrow_cast::cast(array, &T::TYPE).map_err(|_| wrong())?;
    converted
        .as_any()
        .downcast_ref::<T>()
        .cloned()
        .map(Cow::Owned)
        .ok_or_else(wrong)
}

/// An Arrow array type insights read columns as.
pub trait Column: Array + Clone + 'static {
    const TYPE: DataType;
}

/// The Arrow type of each array type.
macro_rules! columns {
    ($($array:ty => $kind:ident),*) => {
        $(impl Column for $array {
            const TYPE: DataType = DataType::$kind;
        })*
    };
}

columns!(
    Int64Array => Int64,
    UInt64Array => UInt64,
    Int32Array => Int32,
    Float64Array => Float64,
    StringArray => Utf8,
    BooleanArray => Boolean
);

/// The earliest event of the project (for `date_from: "all"`).
pub fn earliest_event(
    db: &dyn EventScanner,
    ctx: &ProjectContext,
    events: &[Option<&str>],
) -> Result<Option<DateTime<Utc>>> {
    let d = db.dialect();
    let mut sql = format!(
        "SELECT {} FROM events WHERE project_id = {}",
        d.epoch_micros("min(timestamp)"),
        ctx.project.0
    );
    if !events.is_empty() && events.iter().all(Option::is_some) {
        let names: Vec<String> = events.iter().flatten().map(|e| d.string(e)).collect();
        let _ = write!(sql, " AND event IN ({})", names.join(", "));
    }
    // Grouped, so no events means no row: engines disagree on the min() of
    // no rows (NULL, or ClickHouse's 1970).
    sql.push_str(" GROUP BY project_id");
    let mut earliest = None;
    for_each_batch(db, &sql, |batch| {
        let micros = column::<arrow_array::Int64Array>(batch, 0)?;
        if earliest.is_none() && batch.num_rows() > 0 && micros.is_valid(0) {
            earliest = DateTime::from_timestamp_micros(micros.value(0));
        }
        Ok(())
    })?;
    Ok(earliest)
}

/// The engine's hash of each merged-away person id, mapped to the hash of
/// the person it now belongs to: for insights that gather actors in Rust,
/// this replaces joining every event to `person_overrides`, which costs
/// more than the rest of their scan. One lookup suffices because the
/// overrides are flattened (`cairn_store::identity`).
pub fn person_merges(db: &dyn EventScanner, ctx: &ProjectContext) -> Result<Merges> {
    let mut merges = Merges::default();
    if !ctx.person_overrides {
        return Ok(merges);
    }
    let d = db.dialect();
    let sql = format!(
        "SELECT {}, {} FROM person_overrides WHERE project_id = {}",
        d.hash(&["old_person_id"]),
        d.hash(&["person_id"]),
        ctx.project.0
    );
    for_each_batch(db, &sql, |batch| {
        let (old, new) = (
            column::<UInt64Array>(batch, 0)?,
            column::<UInt64Array>(batch, 1)?,
        );
        merges.extend((0..batch.num_rows()).map(|i| (old.value(i), new.value(i))));
        Ok(())
    })?;
    Ok(merges)
}
