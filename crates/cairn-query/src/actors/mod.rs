//! Drill-down (spec/actors-cohorts.md §2): the actors behind one number of
//! an insight: a trends point, a funnel step's converted or dropped-off
//! count, a retention row, a lifecycle bar, a stickiness bar, a paths node
//! or edge. Each insight kind picks its cell's actors with the code that
//! counts them, so the list holds exactly the actors the number counted.
//!
//! State machines know actors by hash; [`resolve`] turns the hashes back
//! into person ids or group keys with one scan of the events they came from.
//! A filter on the actors' own properties (person properties, or the
//! group's) is applied there, or in the scan that lists them.

mod cell;
mod resolve;

use serde_json::Value;

use cairn_store::EventScanner;

use crate::context::ProjectContext;
use crate::error::{QueryError, Result};
use crate::nodes::{InsightQuery, Properties, PropertyKind, PropertyNode};
use crate::sql::{Actor, Scan};

pub use cell::Cell;
pub(crate) use resolve::resolve;

/// What one actor did to be counted, where the insight knows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// Matching events (trends), or paths through the node (paths).
    pub event_count: Option<u64>,
    /// The first and last matching event, epoch µs.
    pub first_event: Option<i64>,
    pub last_event: Option<i64>,
    /// Seconds from the funnel's first step to the step drilled into.
    pub seconds_to_convert: Option<f64>,
    /// For a group: the distinct persons whose events counted it.
    pub members: Option<u64>,
    /// Retention: whether the actor came back in each column of its row.
    pub appearances: Option<Vec<bool>>,
}

/// A fact as a column of the actors list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fact {
    EventCount,
    FirstEvent,
    LastEvent,
    TimeToConvert,
    Members,
    Appearances,
}

impl Fact {
    pub const ALL: [Fact; 6] = [
        Fact::EventCount,
        Fact::FirstEvent,
        Fact::LastEvent,
        Fact::TimeToConvert,
        Fact::Members,
        Fact::Appearances,
    ];

    /// The column name, in `select` and in the response.
    pub fn name(self) -> &'static str {
        match self {
            Fact::EventCount => "event_count",
            Fact::FirstEvent => "first_event_time",
            Fact::LastEvent => "last_event_time",
            Fact::TimeToConvert => "time_to_convert",
            Fact::Members => "members",
            Fact::Appearances => "appearances",
        }
    }

    pub fn parse(name: &str) -> Option<Fact> {
        Fact::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// One actor of the cell: a person's uuid or a group's key.
#[derive(Debug, Clone, PartialEq)]
pub struct ActorRow {
    pub id: String,
    pub facts: Facts,
}

/// The actors of one cell.
#[derive(Debug)]
pub struct ActorSet {
    pub actor: Actor,
    pub rows: Vec<ActorRow>,
    /// The facts this insight knows of each actor.
    pub facts: Vec<Fact>,
}

/// The actors behind the number `node` (an `InsightActorsQuery`,
/// `FunnelsActorsQuery` or `StickinessActorsQuery`) points at, those whose
/// own properties pass `filter` (see [`ActorFilter`]), in no order.
pub fn run(
    db: &dyn EventScanner,
    ctx: &ProjectContext,
    node: Value,
    filter: &Properties,
) -> Result<ActorSet> {
    crate::limits::reject_nul(&node)?;
    let (cell, insight) = Cell::parse(node)?;
    let actor = match &insight {
        InsightQuery::TrendsQuery(q) => crate::trends::actor_of_series(ctx, q, &cell)?,
        InsightQuery::StickinessQuery(q) => {
            let (index, _) = cell.series(&q.series)?;
            crate::stickiness::actor_of_series(ctx, q, index)?
        }
        InsightQuery::FunnelsQuery(q) => Actor::of(ctx, q.aggregation_group_type_index)?,
        InsightQuery::RetentionQuery(q) => Actor::of(ctx, q.aggregation_group_type_index)?,
        InsightQuery::LifecycleQuery(q) => Actor::of(ctx, q.aggregation_group_type_index)?,
        InsightQuery::PathsQuery(q) => Actor::of(ctx, q.aggregation_group_type_index)?,
    };
    let filter = ActorFilter::new(filter, actor)?;
    ctx.budget.watch(db, || match &insight {
        InsightQuery::TrendsQuery(q) => crate::trends::actors(db, ctx, q, &cell, &filter),
        InsightQuery::StickinessQuery(q) => crate::stickiness::actors(db, ctx, q, &cell, &filter),
        InsightQuery::LifecycleQuery(q) => crate::lifecycle::actors(db, ctx, q, &cell, &filter),
        InsightQuery::RetentionQuery(q) => crate::retention::actors(db, ctx, q, &cell, &filter),
        InsightQuery::FunnelsQuery(q) => crate::funnels::actors(db, ctx, q, &cell, &filter),
        InsightQuery::PathsQuery(q) => crate::paths::actors(db, ctx, q, &cell, &filter),
    })
}

/// A filter on the actors' own properties: person properties for persons,
/// the group's properties for a group type. An actor's properties are the
/// same on all its events, so ANDing the filter into a scan keeps or drops
/// whole actors and leaves the insight's answer for the others unchanged.
#[derive(Debug, Clone, Default)]
pub struct ActorFilter(pub(crate) Properties);

impl ActorFilter {
    pub fn new(properties: &Properties, actor: Actor) -> Result<Self> {
        fn check(node: &PropertyNode, actor: Actor, field: &str) -> Result<()> {
            match node {
                PropertyNode::All(nodes) | PropertyNode::Any(nodes) => {
                    for (i, n) in nodes.iter().enumerate() {
                        check(n, actor, &format!("{field}[{i}]"))?;
                    }
                    Ok(())
                }
                PropertyNode::Filter(p) => match (actor, p.kind, p.group_type_index) {
                    (Actor::Person, PropertyKind::Person, _) => Ok(()),
                    (Actor::Group(i), PropertyKind::Group, Some(j)) if i == j => Ok(()),
                    (Actor::Person, ..) => Err(QueryError::invalid(
                        field,
                        "these actors are persons: filter them by person properties (\"type\": \"person\")",
                    )),
                    (Actor::Group(i), ..) => Err(QueryError::invalid(
                        field,
                        format!("these actors are groups of type {i}: filter them by their properties (\"type\": \"group\", \"group_type_index\": {i})"),
                    )),
                },
            }
        }
        if let Some(node) = &properties.0 {
            check(node, actor, "query.properties")?;
        }
        Ok(Self(properties.clone()))
    }

    /// The filter as SQL over the stored actor's row (see
    /// [`crate::sql::stored_actor_condition`]), for lists of stored actors.
    pub fn stored_condition(
        &self,
        ctx: &ProjectContext,
        d: &dyn cairn_store::dialect::Dialect,
    ) -> Result<Option<String>> {
        crate::sql::stored_actor_condition(ctx, d, &self.0, "query.properties")
    }

    /// ANDs the filter into `scan`.
    pub(crate) fn apply(&self, scan: &mut Scan<'_>) -> Result<()> {
        scan.properties(&self.0, "properties")
    }
}
