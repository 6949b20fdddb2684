//! Hand-written DuckDB SQL for retention and lifecycle that returns
//! exactly Cairn's numbers (the same per-actor bit masks of active weeks as
//! the ClickHouse statements in `hand_clickhouse.rs`, in DuckDB's
//! spelling); placeholders as [`fill`] fills them.

use super::answers::fill;

/// Sunday of the week of `x`.
const SUNDAY: &str = "(date_trunc('week', {x} + INTERVAL 1 DAY) - INTERVAL 1 DAY)::DATE";

/// The bit of an event's week, counted from `{origin}`.
const WEEK_BIT: &str = "1::UBIGINT << (date_diff('day', DATE '{origin}', e.timestamp::DATE) // 7)";

/// Retention, recurring: cell (cohort week, k) counts the actors active in
/// both weeks; `{masks}` gives each actor's weeks since `{first}`.
const RETENTION: &str = r#"
WITH a AS ({masks})
SELECT strftime(DATE '{first}' + (7 * c)::INTEGER, '%Y-%m-%d'), k::VARCHAR, count(*)::VARCHAR
FROM a, range({n}) r(c), range(8) s(k)
WHERE c + k < {n} AND (m >> c) & 1 = 1 AND (m >> (c + k)) & 1 = 1
GROUP BY c, k ORDER BY c, k
"#;

/// Each person's weeks, merges folded after grouping.
const MASKS_PERSON: &str = r#"
SELECT coalesce(po.person_id, x.pid) AS a, bit_or(x.m) AS m
FROM (SELECT e.person_id AS pid, bit_or({bit}) AS m FROM events e
      WHERE e.project_id = 1 AND e.event = '$pageview'
        AND e.timestamp >= TIMESTAMP '{start}' AND e.timestamp < TIMESTAMP '{after}'
      GROUP BY 1) x
LEFT JOIN person_overrides po ON po.project_id = 1 AND po.old_person_id = x.pid
GROUP BY 1
"#;

/// Each company's weeks.
const MASKS_COMPANY: &str = r#"
SELECT e.group_0 AS a, bit_or({bit}) AS m FROM events e
WHERE e.project_id = 1 AND e.event = '$pageview' AND coalesce(e.group_0, '') <> ''
  AND e.timestamp >= TIMESTAMP '{start}' AND e.timestamp < TIMESTAMP '{after}'
GROUP BY 1
"#;

/// Lifecycle: per week, new (first active week in the scan, and the
/// created week; a company without a profile counts as created then),
/// returning, resurrecting and (negative) dormant actors. `{created}`
/// gives each actor's weeks since `{before}` and created week.
const LIFECYCLE: &str = r#"
WITH a AS ({masks}), c AS ({created}),
t AS (
  SELECT p, CASE
      WHEN (m >> p) & 1 = 1 AND (m >> (p - 1)) & 1 = 1 THEN 'returning'
      WHEN (m >> p) & 1 = 1 AND m & ((1::UBIGINT << p) - 1) = 0
           AND (known IS NULL OR cw = DATE '{before}' + (7 * p)::INTEGER) THEN 'new'
      WHEN (m >> p) & 1 = 1 THEN 'resurrecting'
      WHEN (m >> (p - 1)) & 1 = 1 THEN 'dormant'
      ELSE '' END AS status
  FROM c, range(1, {n} + 1) r(p))
SELECT strftime(DATE '{before}' + (7 * p)::INTEGER, '%Y-%m-%d'), status,
       (CASE WHEN status = 'dormant' THEN -count(*) ELSE count(*) END)::VARCHAR
FROM t WHERE status <> '' GROUP BY p, status ORDER BY p, status
"#;

/// Persons with a profile.
const CREATED_PERSON: &str = r#"
SELECT a.m, {sunday_p} AS cw, 1 AS known FROM a JOIN persons p ON p.project_id = 1 AND p.id = a.a
"#;

/// Companies, with a profile or not.
const CREATED_COMPANY: &str = r#"
SELECT a.m, {sunday_g} AS cw, CASE WHEN g.group_key IS NULL THEN NULL ELSE 1 END AS known
FROM a LEFT JOIN groups g ON g.project_id = 1 AND g.group_type_index = 0 AND g.group_key = a.a
"#;

/// The statement of `kind` for persons or companies over `from`..`to`.
pub fn render(kind: &str, group: bool, from: &str, to: &str) -> String {
    let masks = if group { MASKS_COMPANY } else { MASKS_PERSON };
    let template = match kind {
        "retention" => RETENTION
            .replace("{masks}", masks)
            .replace("{start}", "{first}")
            .replace("{bit}", &WEEK_BIT.replace("{origin}", "{first}")),
        "lifecycle" => LIFECYCLE
            .replace("{masks}", masks)
            .replace(
                "{created}",
                if group {
                    CREATED_COMPANY
                } else {
                    CREATED_PERSON
                },
            )
            .replace("{start}", "{before}")
            .replace("{bit}", &WEEK_BIT.replace("{origin}", "{before}"))
            .replace("{sunday_p}", &SUNDAY.replace("{x}", "p.created_at"))
            .replace("{sunday_g}", &SUNDAY.replace("{x}", "g.created_at")),
        _ => panic!("no hand-written DuckDB SQL for {kind}"),
    };
    fill(&template, from, to)
}
