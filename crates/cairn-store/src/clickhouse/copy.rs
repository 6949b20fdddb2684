//! Copies a DuckDB store's events, persons, groups and person overrides
//! into ClickHouse (moving a data directory to ClickHouse, and the tests
//! that compare the two engines on the same data).

use crate::duck::DuckStore;
use crate::Result;

use super::ClickHouse;

/// Rows per insert.
const BATCH: usize = 50_000;

/// What was copied: rows per table.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Copied {
    pub events: u64,
    pub persons: u64,
    pub groups: u64,
    pub person_overrides: u64,
}

fn stamp(column: &str) -> String {
    format!("strftime({column}, '%Y-%m-%d %H:%M:%S.%f')")
}

/// Copies every row of `duck`'s insight tables into ClickHouse (whose
/// layout exists), calling `progress` with each table, the rows copied of
/// it so far and its rows in all. `nodes`
/// are the servers: the events go in through the first (on a cluster, its
/// `Distributed` table shards them), persons, groups and overrides into each.
/// The copy records the last journal record DuckDB holds as loaded, so the
/// journal's ClickHouse loader goes on from there; the rows copied take it
/// as their version, below every later load's.
pub fn copy_from(
    duck: &DuckStore,
    nodes: &[&ClickHouse],
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<Copied> {
    let conn = duck.conn()?;
    let loaded: u64 =
        conn.query_row("SELECT max(seq) FROM journal_loaded", [], |row| row.get(0))?;
    let version = loaded.to_string();
    let groups: Vec<String> = {
        let mut statement = conn.prepare(
            "SELECT column_name FROM information_schema.columns
             WHERE table_name = 'events' AND regexp_matches(column_name, '^group_[0-9]+$')
             ORDER BY ordinal_position",
        )?;
        let names = statement.query_map([], |row| row.get::<_, String>(0))?;
        names.collect::<Result<_, _>>()?
    };
    // (column, DuckDB expression) per table.
    let field = |name: &str, expr: &str| (name.to_string(), expr.to_string());
    let same = |name: &str| field(name, name);
    let mut events = vec![
        same("project_id"),
        field("uuid", "uuid::VARCHAR"),
        same("event"),
        same("distinct_id"),
        field("person_id", "person_id::VARCHAR"),
        field("timestamp", &stamp("timestamp")),
        field("inserted_at", &stamp("inserted_at")),
        field("properties", "properties::VARCHAR"),
    ];
    events.extend(groups.iter().map(|g| same(g)));
    events.extend(crate::schema::MATERIALIZED.iter().map(|(_, c)| same(c)));
    let tables = [
        ("events", "events", events),
        (
            "persons",
            "persons_versions",
            vec![
                same("project_id"),
                field("id", "id::VARCHAR"),
                field("properties", "properties::VARCHAR"),
                same("is_identified"),
                field("created_at", &stamp("created_at")),
                field("version", &version),
            ],
        ),
        (
            "groups",
            "groups_versions",
            vec![
                same("project_id"),
                same("group_type_index"),
                same("group_key"),
                field("properties", "properties::VARCHAR"),
                field("created_at", &stamp("created_at")),
                field("version", &version),
            ],
        ),
        (
            "person_overrides",
            "person_overrides_versions",
            vec![
                same("project_id"),
                field("old_person_id", "old_person_id::VARCHAR"),
                field("person_id", "person_id::VARCHAR"),
                field("version", &version),
            ],
        ),
    ];
    let mut copied = Copied::default();
    for (from, to, fields) in tables {
        let fields: Vec<String> = fields
            .iter()
            .map(|(name, expr)| format!("{name} := {expr}"))
            .collect();
        let sql = format!(
            "SELECT to_json(struct_pack({}))::VARCHAR FROM {from}",
            fields.join(", ")
        );
        let rows_in_all: u64 =
            conn.query_row(&format!("SELECT count(*) FROM {from}"), [], |row| {
                row.get(0)
            })?;
        progress(from, 0, rows_in_all);
        let mut statement = conn.prepare(&sql)?;
        let mut rows = statement.query([])?;
        let (mut lines, mut count, mut total) = (String::new(), 0usize, 0u64);
        let mut flush = |lines: &mut String, count: &mut usize, total: &mut u64| -> Result<()> {
            if *count > 0 {
                let targets = if to == "events" { &nodes[..1] } else { nodes };
                for node in targets {
                    node.insert_json_rows(to, lines)?;
                }
                *total += *count as u64;
                progress(from, *total, rows_in_all);
                lines.clear();
                *count = 0;
            }
            Ok(())
        };
        while let Some(row) = rows.next()? {
            let line: String = row.get(0)?;
            lines.push_str(&line);
            lines.push('\n');
            count += 1;
            if count == BATCH {
                flush(&mut lines, &mut count, &mut total)?;
            }
        }
        flush(&mut lines, &mut count, &mut total)?;
        match from {
            "events" => copied.events = total,
            "persons" => copied.persons = total,
            "groups" => copied.groups = total,
            _ => copied.person_overrides = total,
        }
    }
    nodes[0].execute(&format!("INSERT INTO cairn_loads (seq) VALUES ({loaded})"))?;
    Ok(copied)
}
