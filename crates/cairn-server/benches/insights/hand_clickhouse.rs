//! Hand-written ClickHouse SQL for retention, lifecycle and paths, as a
//! ClickHouse user would write it for speed (per-actor bit masks of active
//! weeks; one `groupArray` per actor for paths, walked with array
//! functions), returning exactly Cairn's numbers: the benchmark checks that
//! cell by cell before it prints a ratio. Placeholders: `{from}`, `{to}`
//! (the query's dates) and, for the weekly grids, `{first}`, `{before}`,
//! `{after}` and `{n}` (see [`render`]).

use super::answers::fill;

/// Retention, recurring: cell (cohort week, k) counts the actors active in
/// both weeks; `{masks}` is each actor's bit mask of active weeks.
const RETENTION: &str = r#"
SELECT toString(toDate('{first}') + 7 * c) AS cohort, k, count() AS actors
FROM
(
    SELECT m, arrayJoin(arrayFilter(i -> bitTest(m, i), range({n}))) AS c
    FROM
    ({masks}
    )
)
ARRAY JOIN arrayFilter(j -> bitTest(m, c + j), range(8)) AS k
GROUP BY c, k
ORDER BY c, k
SETTINGS join_use_nulls = 1
"#;

/// Each person's active weeks, merges folded after the scan.
const RETENTION_MASKS_PERSON: &str = r#"
        SELECT groupBitOr(x.m) AS m
        FROM
        (
            SELECT e.person_id AS pid,
                   groupBitOr(bitShiftLeft(toUInt64(1), toUInt8(intDiv(dateDiff('day', toDate('{first}'), toDate(e.timestamp)), 7)))) AS m
            FROM events AS e
            WHERE e.project_id = 1
              AND e.event = '$pageview'
              AND e.timestamp >= toDateTime64('{first} 00:00:00', 6, 'UTC')
              AND e.timestamp <  toDateTime64('{after} 00:00:00', 6, 'UTC')
            GROUP BY pid
        ) AS x
        LEFT JOIN (SELECT old_person_id, person_id FROM person_overrides WHERE project_id = 1) AS po
            ON po.old_person_id = x.pid
        GROUP BY coalesce(po.person_id, x.pid)
"#;

/// Each company's active weeks.
const RETENTION_MASKS_COMPANY: &str = r#"
        SELECT groupBitOr(bitShiftLeft(toUInt64(1), toUInt8(intDiv(dateDiff('day', toDate('{first}'), toDate(e.timestamp)), 7)))) AS m
        FROM events AS e
        WHERE e.project_id = 1
          AND e.event = '$pageview'
          AND e.group_0 != ''
          AND e.timestamp >= toDateTime64('{first} 00:00:00', 6, 'UTC')
          AND e.timestamp <  toDateTime64('{after} 00:00:00', 6, 'UTC')
        GROUP BY e.group_0
"#;

/// Lifecycle: new, returning, resurrecting and dormant actors per week,
/// from `{actors}`: each actor's active weeks and created week.
const LIFECYCLE: &str = r#"
SELECT toString(toDate('{before}') + 7 * p) AS bucket, status,
       if(status = 'dormant', -toInt64(count()), toInt64(count())) AS value
FROM
(
    SELECT p,
           multiIf(bitTest(m, p) AND bitTest(m, p - 1), 'returning',
                   bitTest(m, p) AND bitAnd(m, bitShiftLeft(toUInt64(1), p) - 1) = 0
                       AND (ifNull(known, 0) = 0 OR cw = toDate('{before}') + 7 * p), 'new',
                   bitTest(m, p), 'resurrecting',
                   bitTest(m, p - 1), 'dormant',
                   '') AS status
    FROM
    ({actors}
    )
    ARRAY JOIN range(1, {n} + 1) AS p
)
WHERE status != ''
GROUP BY p, status
ORDER BY p, status
SETTINGS join_use_nulls = 1
"#;

/// Persons with a profile.
const LIFECYCLE_ACTORS_PERSON: &str = r#"
        SELECT s.m AS m, c.cw AS cw, c.known AS known
        FROM
        (
            SELECT coalesce(po.person_id, x.pid) AS a, groupBitOr(x.m) AS m
            FROM
            (
                SELECT e.person_id AS pid, groupBitOr(bitShiftLeft(toUInt64(1), toUInt8(intDiv(dateDiff('day', toDate('{before}'), toDate(e.timestamp)), 7)))) AS m
                FROM events AS e
                WHERE e.project_id = 1
                  AND e.event = '$pageview'
                  AND e.timestamp >= toDateTime64('{before} 00:00:00', 6, 'UTC')
                  AND e.timestamp <  toDateTime64('{after} 00:00:00', 6, 'UTC')
                GROUP BY pid
            ) AS x
            LEFT JOIN (SELECT old_person_id, person_id FROM person_overrides WHERE project_id = 1) AS po
                ON po.old_person_id = x.pid
            GROUP BY a
        ) AS s
        INNER JOIN (SELECT id, toStartOfWeek(created_at, 0) AS cw, toUInt8(1) AS known FROM persons WHERE project_id = 1) AS c
            ON c.id = s.a
"#;

/// Companies, known or not.
const LIFECYCLE_ACTORS_COMPANY: &str = r#"
        SELECT s.m AS m, g.cw AS cw, g.known AS known
        FROM
        (
            SELECT e.group_0 AS a, groupBitOr(bitShiftLeft(toUInt64(1), toUInt8(intDiv(dateDiff('day', toDate('{before}'), toDate(e.timestamp)), 7)))) AS m
            FROM events AS e
            WHERE e.project_id = 1
                  AND e.event = '$pageview'
                  AND e.timestamp >= toDateTime64('{before} 00:00:00', 6, 'UTC')
                  AND e.timestamp <  toDateTime64('{after} 00:00:00', 6, 'UTC')
              AND e.group_0 != ''
            GROUP BY a
        ) AS s
        LEFT JOIN (SELECT group_key, toStartOfWeek(created_at, 0) AS cw, toUInt8(1) AS known
                   FROM groups WHERE project_id = 1 AND group_type_index = 0) AS g
            ON g.group_key = s.a
"#;

/// Paths: the top 50 edges of the first 5 steps of each 30-minute session,
/// from `{events}`: each actor's (time, page) pairs in order.
const PATHS: &str = r#"
SELECT concat(toString(step), '_', source_item) AS source,
       concat(toString(step + 1), '_', target_item) AS target,
       count() AS value,
       sum(dt) / count() / 1000 AS average_conversion_time
FROM
(
    SELECT edge.1 AS source_item, edge.2 AS target_item, edge.3 AS dt, edge.4 - 1 AS step
    FROM
    (
        -- Steps: one per block, plus one where a long block's chain restarts
        -- the session; `pos` is the step's place in its session (1-based).
        SELECT arrayMap(x -> x.1, steps) AS su,
               arrayMap(x -> x.2, steps) AS st,
               arrayMap(x -> x.3, steps) AS ss,
               arrayMap((i, s0) -> i - s0 + 1, arrayEnumerate(ss),
                        arrayFill(x -> x != 0, arrayMap((s, i) -> if(s = 1, i, 0), ss, arrayEnumerate(ss)))) AS pos,
               arrayFilter(x -> x.5 = 0 AND x.4 <= 5,
                           arrayZip(arrayPushFront(arrayPopBack(su), ''), su, arrayDifference(st), pos, ss)) AS edges
        FROM
        (
            SELECT arrayFlatten(arrayMap((u, f, a, pa, j) ->
                       if(a = f, [(u, f, toUInt8(j = 1 OR f - pa >= 1800000000))],
                                 [(u, f, toUInt8(j = 1 OR f - pa >= 1800000000)), (u, a, toUInt8(1))]),
                       items, firsts, anchors, arrayPushFront(arrayPopBack(anchors), toInt64(0)), arrayEnumerate(items))) AS steps
            FROM
            (
                -- Blocks: runs of one item with gaps under 30 minutes. The
                -- anchor is the block's last kept event (the last of the chain
                -- of events 30 minutes or more after the previous kept one).
                SELECT arrayMap(x -> x.1, ev) AS ts,
                       arrayMap(x -> x.2, ev) AS us,
                       arrayMap((t, u, pt, pu, i) -> i = 1 OR u != pu OR t - pt >= 1800000000,
                                ts, us, arrayPushFront(arrayPopBack(ts), toInt64(0)),
                                arrayPushFront(arrayPopBack(us), ''), arrayEnumerate(ts)) AS starts,
                       arrayFilter((u, s) -> s, us, starts) AS items,
                       arrayFilter((t, s) -> s, ts, starts) AS firsts,
                       arrayMap(b -> if(b[-1] - b[1] >= 1800000000,
                                        arrayFold((acc, t) -> if(t - acc >= 1800000000, t, acc), b, b[1]),
                                        b[1]),
                                arraySplit((t, s) -> s, ts, starts)) AS anchors
                FROM
                ({events}
                )
            )
        )
    )
    ARRAY JOIN edges AS edge
)
GROUP BY step, source_item, target_item
ORDER BY value DESC, step, source_item, target_item
LIMIT 50
SETTINGS join_use_nulls = 1
"#;

/// Each person's pageviews.
const PATH_EVENTS_PERSON: &str = r#"
        SELECT arraySort(groupArray((toUnixTimestamp64Micro(e.timestamp), coalesce(nullif(trim(TRAILING '/' FROM e.mat_current_url), ''), '/')))) AS ev
        FROM events AS e
        LEFT JOIN (SELECT old_person_id, person_id FROM person_overrides WHERE project_id = 1) AS po
            ON po.old_person_id = e.person_id
        WHERE e.project_id = 1
          AND e.event = '$pageview'
          AND e.timestamp >= toDateTime64('{from} 00:00:00.000000', 6, 'UTC')
          AND e.timestamp <= toDateTime64('{to} 23:59:59.999999', 6, 'UTC')
        GROUP BY coalesce(po.person_id, e.person_id)
"#;

/// Each company's pageviews.
const PATH_EVENTS_COMPANY: &str = r#"
        SELECT arraySort(groupArray((toUnixTimestamp64Micro(e.timestamp), coalesce(nullif(trim(TRAILING '/' FROM e.mat_current_url), ''), '/')))) AS ev
        FROM events AS e
        WHERE e.project_id = 1
          AND e.event = '$pageview'
          AND e.timestamp >= toDateTime64('{from} 00:00:00.000000', 6, 'UTC')
          AND e.timestamp <= toDateTime64('{to} 23:59:59.999999', 6, 'UTC')
          AND e.group_0 != ''
        GROUP BY e.group_0
"#;

/// The statement of `kind` for persons or companies over `from`..`to`.
pub fn render(kind: &str, group: bool, from: &str, to: &str) -> String {
    let pick = |person, company| if group { company } else { person };
    let template = match kind {
        "retention" => RETENTION.replace(
            "{masks}",
            pick(RETENTION_MASKS_PERSON, RETENTION_MASKS_COMPANY),
        ),
        "lifecycle" => LIFECYCLE.replace(
            "{actors}",
            pick(LIFECYCLE_ACTORS_PERSON, LIFECYCLE_ACTORS_COMPANY),
        ),
        "paths" => PATHS.replace("{events}", pick(PATH_EVENTS_PERSON, PATH_EVENTS_COMPANY)),
        _ => panic!("no hand-written ClickHouse SQL for {kind}"),
    };
    fill(&template, from, to)
}
