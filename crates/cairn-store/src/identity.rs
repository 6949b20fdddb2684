//! Person identity: which person an event belongs to now, one definition
//! for insights and for the API's event listings.
//!
//! An event keeps the person id it was stored with. When that person is
//! merged into another, ingestion records `(old person → surviving person)`
//! in `person_overrides` (PostHog's `person_distinct_id_overrides`). The
//! writer keeps that table **flattened**: every row leads straight to a
//! person that has not been merged away, because a merge into `merged`
//! also re-points the rows that led to `merged` (see `DuckWriter`'s
//! `write_changes`). So one lookup, never a chain, gives an event's current
//! person: [`CURRENT_PERSON`] over [`OVERRIDES_JOIN`].

/// Joins each event `e` to the override of its stored person, if any, as `po`.
pub const OVERRIDES_JOIN: &str =
    "LEFT JOIN person_overrides po ON po.project_id = e.project_id AND po.old_person_id = e.person_id";

/// The person event `e` belongs to now (with [`OVERRIDES_JOIN`]): the one
/// it was stored with, or the person that one was merged into.
pub const CURRENT_PERSON: &str = "coalesce(po.person_id, e.person_id)";
