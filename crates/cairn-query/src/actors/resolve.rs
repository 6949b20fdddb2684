//! Actor hashes back to ids: the state machines key actors by the engine's
//! hash of the person id or group key; one scan of the events they were read
//! from names them again.

use std::collections::HashMap;

use arrow_array::{StringArray, UInt64Array};
use chrono::{DateTime, Utc};

use cairn_store::EventScanner;

use super::{ActorFilter, ActorRow, Facts};
use crate::context::ProjectContext;
use crate::error::Result;
use crate::sql::{column, for_each_batch, Actor, Scan};

/// Hashes per statement: a list the engine turns into a hash join.
const CHUNK: usize = 20_000;

/// The actors of `facts` (by hash), named from the events of `[from, to]`
/// they were counted from, keeping those `filter` passes.
pub(crate) fn resolve(
    db: &dyn EventScanner,
    ctx: &ProjectContext,
    actor: Actor,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    mut facts: HashMap<u64, Facts>,
    filter: &ActorFilter,
) -> Result<Vec<ActorRow>> {
    let d = db.dialect();
    let mut scan = Scan::new(ctx, d, from, to);
    scan.require_actor(actor);
    filter.apply(&mut scan)?;
    let a = scan.actor(actor);
    let hash = d.hash(&[&a]);
    let mut hashes: Vec<u64> = facts.keys().copied().collect();
    hashes.sort_unstable();
    let mut rows = Vec::with_capacity(hashes.len());
    for chunk in hashes.chunks(CHUNK) {
        ctx.budget.check()?;
        let list: Vec<String> = chunk.iter().map(u64::to_string).collect();
        let sql = format!(
            "SELECT DISTINCT {hash}, {id} {fw} AND {hash} IN ({list})",
            id = d.text(&a),
            fw = scan.from_where(),
            list = list.join(", "),
        );
        for_each_batch(db, &sql, |batch| {
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
        })?;
    }
    Ok(rows)
}
