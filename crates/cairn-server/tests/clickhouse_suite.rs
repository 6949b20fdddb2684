//! The black-box tests of everything that reads stored events (insights of
//! every kind, their options, breakdowns and drill-downs), run again with
//! each server loading its events into a 2-shard ClickHouse cluster and
//! answering insights from there (see `common::on_clickhouse`). Persons,
//! groups, flags and event listings are Cairn's own on either
//! configuration, and their suites run once.

// Each included suite brings its own copy of the harness, as it does in its
// own test binary.
#![allow(clippy::duplicate_mod)]

#[path = "breakdown_rows.rs"]
mod breakdown_rows;
#[path = "drill_down.rs"]
mod drill_down;
#[path = "drill_down_sums.rs"]
mod drill_down_sums;
#[path = "insight_options.rs"]
mod insight_options;
#[path = "insights.rs"]
mod insights;
