//! Actor hashes back to ids: the state machines key actors by the engine's
//! hash of the person id or group key. One scan of the stored persons (or
//! groups of the type) names them, applying the actors' filter there; the
//! few actors with no stored row (personless events, group keys never
//! identified) are named from the events they were counted from.

use std::collections::HashMap;

use arrow_array::{StringArray, UInt64Array};
use chrono::{DateTime, Utc};

use cairn_store::EventScanner;

use super::{ActorFilter, ActorRow, Facts};
use crate::context::ProjectContext;
use crate::error::Result;
use crate::sql::{column, for_each_batch, stored_actors_sql, Actor, Scan};

/// Hashes per statement of the fallback: a list the engine reads once.
const CHUNK: usize = 20_000;

/// Up to this many persons, the stored ones are looked up by their hashes:
/// naming every person turns each id into text (DuckDB, 151k persons: all
/// 17 ms, 4k hashes 5 ms, 20k 22 ms). Group keys are text already, and
/// reading them all costs less than matching a list.
const LOOKED_UP: usize = 8_192;

/// The actors of `facts` (by hash) that `filter` passes, named; those not
/// stored are named from the events of `[from, to]`.
pub(crate) fn resolve(
    db: &dyn EventScanner,
    ctx: &ProjectContext,
    actor: Actor,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    mut facts: HashMap<u64, Facts>,
    filter: &ActorFilter,
) -> Result<Vec<ActorRow>> {
    let d = db.dialect();
    let mut rows = Vec::with_capacity(facts.len());
    if facts.is_empty() {
        return Ok(rows);
    }
    let wanted: Option<Vec<u64>> =
        (actor == Actor::Person && facts.len() <= LOOKED_UP).then(|| {
            let mut hashes: Vec<u64> = facts.keys().copied().collect();
            hashes.sort_unstable();
            hashes
        });
    let stored = stored_actors_sql(
        ctx,
        d,
        actor,
        &filter.0,
        "query.properties",
        wanted.as_deref(),
    )?;
    name(db, &stored, &mut facts, &mut rows)?;
    // An actor without a stored row has no properties to pass a filter.
    if filter.0 .0.is_some() {
        return Ok(rows);
    }
    let mut scan = Scan::new(ctx, d, from, to);
    scan.require_actor(actor);
    let a = scan.actor(actor);
    let hash = d.hash(&[&a]);
    let mut unnamed: Vec<u64> = facts.keys().copied().collect();
    unnamed.sort_unstable();
    for chunk in unnamed.chunks(CHUNK) {
        ctx.budget.check()?;
        let sql = format!(
            "SELECT DISTINCT {hash}, {id} {fw} AND {listed}",
            id = d.text(&a),
            fw = scan.from_where(),
            listed = d.one_of_hashes(&hash, chunk),
        );
        name(db, &sql, &mut facts, &mut rows)?;
    }
    Ok(rows)
}

/// Moves the actors `sql` names (`hash, id` rows) from `facts` to `rows`.
fn name(
    db: &dyn EventScanner,
    sql: &str,
    facts: &mut HashMap<u64, Facts>,
    rows: &mut Vec<ActorRow>,
) -> Result<()> {
    for_each_batch(db, sql, |batch| {
        let hashes = column::<UInt64Array>(batch, 0)?;
        let ids = column::<StringArray>(batch, 1)?;
        for i in 0..batch.num_rows() {
            if let Some(facts) = facts.remove(&hashes.value(i)) {
                rows.push(ActorRow {
                    id: ids.value(i).to_string(),
                    facts,
                });
            }
        }
        Ok(())
    })
}
