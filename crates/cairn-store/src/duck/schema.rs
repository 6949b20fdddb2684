//! Tables of the embedded store. Migrations are idempotent statements run at
//! every start; the events table gets one column per allowed group type.

use duckdb::Connection;

use crate::schema::{group_column, EventColumn, FIXED_COLUMNS, MATERIALIZED};
use crate::Result;

const TABLES: &str = r#"
CREATE TABLE IF NOT EXISTS projects (
    id BIGINT PRIMARY KEY,
    name VARCHAR NOT NULL,
    api_token VARCHAR NOT NULL UNIQUE,
    timezone VARCHAR NOT NULL DEFAULT 'UTC',
    week_start_day SMALLINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS personal_api_keys (
    id UUID PRIMARY KEY,
    project_id BIGINT NOT NULL,
    label VARCHAR NOT NULL,
    secret_hash VARCHAR NOT NULL UNIQUE,
    mask_value VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    project_id BIGINT NOT NULL,
    uuid UUID NOT NULL,
    event VARCHAR NOT NULL,
    distinct_id VARCHAR NOT NULL,
    person_id UUID,
    timestamp TIMESTAMP NOT NULL,
    inserted_at TIMESTAMP NOT NULL,
    properties JSON NOT NULL
);
CREATE TABLE IF NOT EXISTS group_types (
    project_id BIGINT NOT NULL,
    group_type_index SMALLINT NOT NULL,
    group_type VARCHAR NOT NULL,
    name_singular VARCHAR,
    name_plural VARCHAR,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (project_id, group_type_index)
);
CREATE TABLE IF NOT EXISTS feature_flags (
    id BIGINT PRIMARY KEY,
    project_id BIGINT NOT NULL,
    key VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    filters JSON NOT NULL,
    active BOOLEAN NOT NULL,
    deleted BOOLEAN NOT NULL,
    ensure_experience_continuity BOOLEAN NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS flag_hash_key_overrides (
    project_id BIGINT NOT NULL,
    person_id UUID NOT NULL,
    feature_flag_key VARCHAR NOT NULL,
    hash_key VARCHAR NOT NULL,
    PRIMARY KEY (project_id, person_id, feature_flag_key)
);
CREATE TABLE IF NOT EXISTS insights (
    id BIGINT NOT NULL,
    project_id BIGINT NOT NULL,
    name VARCHAR NOT NULL,
    params VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (project_id, id)
);
CREATE TABLE IF NOT EXISTS users (
    id UUID PRIMARY KEY,
    email VARCHAR NOT NULL UNIQUE,
    password_hash VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash VARCHAR PRIMARY KEY,
    user_id UUID NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS ingestion_warnings (
    project_id BIGINT NOT NULL,
    type VARCHAR NOT NULL,
    details JSON NOT NULL,
    timestamp TIMESTAMP NOT NULL
);
-- The events' sorted runs, each of those inserted after the run before up
-- to `upto` (see clustering.rs).
CREATE TABLE IF NOT EXISTS event_runs (upto TIMESTAMP NOT NULL, rows BIGINT NOT NULL);
-- The last ingestion journal record loaded (see journal.rs): one row.
CREATE TABLE IF NOT EXISTS journal_loaded (seq UBIGINT NOT NULL);
INSERT INTO journal_loaded SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM journal_loaded);
"#;

/// A table of persons, distinct ids or groups: its columns, and those that
/// name a row, which loads write as delete-then-insert (see
/// `DuckWriter::upsert_staged`).
pub(crate) struct EntityTable {
    pub name: &'static str,
    columns: &'static str,
    pub key: &'static [&'static str],
}

/// Persons, distinct ids and groups. They have no PRIMARY KEY: DuckDB keeps
/// one as an index of every key, held in memory and updated at a random
/// place by each insert. With ten million persons that index outgrew the
/// memory limit (88 MiB at one million persons) and an upsert of a
/// thousand rows took seconds; a load's delete is instead one hash join
/// against the rows it writes (tens of milliseconds at ten million).
pub(crate) const ENTITY_TABLES: [EntityTable; 3] = [
    EntityTable {
        name: "persons",
        columns: "project_id BIGINT NOT NULL, id UUID NOT NULL, properties JSON NOT NULL,
                  is_identified BOOLEAN NOT NULL, created_at TIMESTAMP NOT NULL, version BIGINT NOT NULL",
        key: &["project_id", "id"],
    },
    EntityTable {
        name: "person_distinct_ids",
        columns: "project_id BIGINT NOT NULL, distinct_id VARCHAR NOT NULL, person_id UUID NOT NULL",
        key: &["project_id", "distinct_id"],
    },
    EntityTable {
        name: "groups",
        columns: "project_id BIGINT NOT NULL, group_type_index SMALLINT NOT NULL, group_key VARCHAR NOT NULL,
                  properties JSON NOT NULL, created_at TIMESTAMP NOT NULL, version BIGINT NOT NULL",
        key: &["project_id", "group_type_index", "group_key"],
    },
];

pub(crate) const PERSONS: &EntityTable = &ENTITY_TABLES[0];
pub(crate) const DISTINCT_IDS: &EntityTable = &ENTITY_TABLES[1];
pub(crate) const GROUPS: &EntityTable = &ENTITY_TABLES[2];

/// Creates the entity tables; a store from before drops their primary keys
/// (DuckDB cannot drop a constraint: the table is copied, in order).
fn migrate_entity_tables(conn: &Connection) -> Result<()> {
    for table in &ENTITY_TABLES {
        let EntityTable { name, columns, .. } = table;
        conn.execute_batch(&format!("CREATE TABLE IF NOT EXISTS {name} ({columns})"))?;
        let keyed: i64 = conn.query_row(
            "SELECT count(*) FROM duckdb_constraints()
             WHERE table_name = ? AND constraint_type = 'PRIMARY KEY'",
            [name],
            |row| row.get(0),
        )?;
        if keyed > 0 {
            conn.execute_batch(&format!(
                "BEGIN TRANSACTION;
                 CREATE TABLE {name}_unkeyed ({columns});
                 INSERT INTO {name}_unkeyed SELECT * FROM {name} ORDER BY rowid;
                 DROP TABLE {name};
                 ALTER TABLE {name}_unkeyed RENAME TO {name};
                 COMMIT;"
            ))?;
        }
    }
    Ok(())
}

/// The events table's columns in order.
pub(crate) fn event_layout(conn: &Connection) -> Result<Vec<EventColumn>> {
    let mut statement = conn.prepare(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'events' ORDER BY ordinal_position",
    )?;
    let names: Vec<String> = statement
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    names
        .iter()
        .map(|name| {
            if let Some(i) = FIXED_COLUMNS.iter().position(|c| c == name) {
                Ok(EventColumn::Fixed(i))
            } else if let Some(index) = name.strip_prefix("group_").and_then(|i| i.parse().ok()) {
                Ok(EventColumn::Group(index))
            } else if let Some((key, _)) = MATERIALIZED.iter().find(|(_, c)| c == name) {
                Ok(EventColumn::Materialized(key))
            } else {
                Err(crate::StoreError::Corrupt(format!(
                    "unexpected events column {name}"
                )))
            }
        })
        .collect()
}

/// Persons merged away, and the person each became (PostHog's
/// `person_distinct_id_overrides`): events keep the person id they were
/// stored with, and insights follow this small table instead of joining
/// every event to its distinct id.
const PERSON_OVERRIDES: &str = "
CREATE TABLE person_overrides (
    project_id BIGINT NOT NULL,
    old_person_id UUID NOT NULL,
    person_id UUID NOT NULL,
    PRIMARY KEY (project_id, old_person_id)
);
-- Stores from before this table: an event whose distinct id now belongs to
-- another person was stored before a merge.
INSERT INTO person_overrides
SELECT DISTINCT e.project_id, e.person_id, d.person_id
FROM events e JOIN person_distinct_ids d ON d.project_id = e.project_id AND d.distinct_id = e.distinct_id
WHERE e.person_id IS NOT NULL AND e.person_id <> d.person_id;
";

/// Who may see what: an account is an administrator (every project) or a
/// member of some projects; a personal key acts for the account that made it
/// (none: the operator's, made at first start). Accounts and keys from before
/// this were all administrators', and stay so.
const ACCESS: &str = "
ALTER TABLE users ADD COLUMN IF NOT EXISTS is_admin BOOLEAN DEFAULT true;
ALTER TABLE personal_api_keys ADD COLUMN IF NOT EXISTS user_id UUID;
CREATE TABLE IF NOT EXISTS project_members (
    project_id BIGINT NOT NULL,
    user_id UUID NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
";

pub(crate) fn migrate(conn: &Connection, group_columns: usize) -> Result<()> {
    conn.execute_batch(TABLES)?;
    migrate_entity_tables(conn)?;
    conn.execute_batch(ACCESS)?;
    let has_overrides: i64 = conn.query_row(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'person_overrides'",
        [],
        |row| row.get(0),
    )?;
    if has_overrides == 0 {
        conn.execute_batch(PERSON_OVERRIDES)?;
    }
    for (key, column) in MATERIALIZED {
        let exists: i64 = conn.query_row(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'events' AND column_name = ?",
            [column],
            |row| row.get(0),
        )?;
        if exists == 0 {
            // Stores from before the column: fill it once from the JSON.
            conn.execute_batch(&format!(
                "ALTER TABLE events ADD COLUMN {column} VARCHAR;
                 UPDATE events SET {column} = json_extract_string(properties, '/{key}');"
            ))?;
        }
    }
    for index in 0..group_columns {
        conn.execute_batch(&format!(
            "ALTER TABLE events ADD COLUMN IF NOT EXISTS {} VARCHAR",
            group_column(index)
        ))?;
    }
    Ok(())
}

/// How many `group_N` columns the events table has.
pub(crate) fn count_group_columns(conn: &Connection) -> Result<usize> {
    let count: i64 = conn.query_row(
        "SELECT count(*) FROM information_schema.columns
         WHERE table_name = 'events' AND regexp_matches(column_name, '^group_[0-9]+$')",
        [],
        |row| row.get(0),
    )?;
    Ok(count as usize)
}

#[cfg(test)]
mod tests {
    use crate::DuckStore;

    /// A store made by an older Cairn (its tables written by `sql`), opened
    /// by this one.
    fn store_from_before(sql: &str) -> (tempfile::TempDir, DuckStore) {
        let dir = tempfile::tempdir().unwrap();
        {
            let old =
                duckdb::Connection::open(dir.path().join(crate::duck::DATABASE_FILE)).unwrap();
            old.execute_batch(sql).unwrap();
        }
        let store = DuckStore::open(dir.path(), 5).unwrap();
        (dir, store)
    }

    #[test]
    fn a_store_from_before_person_overrides_derives_them_from_its_events() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (
            "00000000-0000-0000-0000-00000000000a",
            "00000000-0000-0000-0000-00000000000b",
        );
        {
            let store = DuckStore::open(dir.path(), 5).unwrap();
            let conn = store.conn().unwrap();
            conn.execute_batch(&format!(
                "DROP TABLE person_overrides;
                 INSERT INTO events (project_id, uuid, event, distinct_id, person_id, timestamp, inserted_at, properties)
                 VALUES (1, uuidv4(), 'e', 'anon', '{old}', now(), now(), '{{}}'),
                        (1, uuidv4(), 'e', 'kept', '{new}', now(), now(), '{{}}');
                 INSERT INTO person_distinct_ids VALUES (1, 'anon', '{new}'), (1, 'kept', '{new}');"
            ))
            .unwrap();
        }
        let store = DuckStore::open(dir.path(), 5).unwrap();
        let conn = store.conn().unwrap();
        let overrides: Vec<(String, String)> = conn
            .prepare("SELECT old_person_id::VARCHAR, person_id::VARCHAR FROM person_overrides")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(overrides, vec![(old.to_string(), new.to_string())]);
    }

    #[test]
    fn a_store_from_before_drops_the_primary_keys_of_its_entity_tables() {
        let (_dir, store) = store_from_before(
            "CREATE TABLE person_distinct_ids (project_id BIGINT NOT NULL,
                 distinct_id VARCHAR NOT NULL, person_id UUID NOT NULL,
                 PRIMARY KEY (project_id, distinct_id));
             INSERT INTO person_distinct_ids VALUES
                 (1, 'b', '00000000-0000-0000-0000-00000000000b'),
                 (1, 'a', '00000000-0000-0000-0000-00000000000a');",
        );
        let conn = store.conn().unwrap();
        let keys: i64 = conn
            .query_row(
                "SELECT count(*) FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'
                 AND table_name IN ('persons', 'person_distinct_ids', 'groups')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(keys, 0);
        let ids: Vec<String> = conn
            .prepare("SELECT distinct_id FROM person_distinct_ids ORDER BY rowid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            ids,
            ["b", "a"],
            "rows keep their order (a person's first id)"
        );
        let not_null: bool = conn
            .query_row(
                "SELECT bool_and(is_nullable = 'NO') FROM information_schema.columns
                 WHERE table_name = 'person_distinct_ids'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(not_null);
    }

    #[test]
    fn a_store_from_before_a_materialized_column_fills_it_from_the_json() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = DuckStore::open(dir.path(), 5).unwrap();
            store
                .conn()
                .unwrap()
                .execute_batch(
                    r#"ALTER TABLE events DROP COLUMN mat_current_url;
                       INSERT INTO events (project_id, uuid, event, distinct_id, timestamp, inserted_at, properties)
                       VALUES (1, uuidv4(), '$pageview', 'a', now(), now(), '{"$current_url": "https://a.io/x"}');"#,
                )
                .unwrap();
        }
        let store = DuckStore::open(dir.path(), 5).unwrap();
        let url: String = store
            .conn()
            .unwrap()
            .query_row("SELECT mat_current_url FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(url, "https://a.io/x");
    }

    #[test]
    fn accounts_and_keys_from_before_access_rules_stay_administrators() {
        let (_dir, store) = store_from_before(
            "CREATE TABLE users (id UUID PRIMARY KEY, email VARCHAR NOT NULL UNIQUE,
                 password_hash VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL);
             CREATE TABLE personal_api_keys (id UUID PRIMARY KEY, project_id BIGINT NOT NULL,
                 label VARCHAR NOT NULL, secret_hash VARCHAR NOT NULL UNIQUE,
                 mask_value VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL);
             INSERT INTO users VALUES (uuidv4(), 'old@example.com', 'h', now());
             INSERT INTO personal_api_keys VALUES (uuidv4(), 1, 'old', 'hash', 'phx_...', now());",
        );
        let conn = store.conn().unwrap();
        let user = crate::duck::users::find_user(&conn, "old@example.com")
            .unwrap()
            .unwrap();
        assert!(user.is_admin);
        let grants = crate::duck::keys::personal_key_grants(&conn).unwrap();
        assert_eq!(grants.len(), 1);
        assert_eq!(grants[0].1.owner, None, "an operator's key");
        let member = crate::duck::users::create_user(
            &conn,
            "new@example.com",
            "h",
            crate::catalog::Access::Member(vec![]),
        )
        .unwrap();
        assert!(!member.is_admin);
    }
}
