//! The SQL each insight kind generates for fixed inputs (a fixed "now",
//! project and context), as reviewed snapshots: a change in generated SQL
//! shows in review. Each backend has its own snapshots (its dialect's).
//! `cargo insta review` (or `INSTA_UPDATE=always`) accepts a deliberate change.

#[macro_use]
mod fixture;

use serde_json::{json, Value};

backend_suite! {
    /// A project in New York (a DST change on 2024-03-10, inside the last
    /// week) with one group type; the SQL does not depend on the events.
    fn project() -> Fixture {
        let mut f = Fixture::new("America/New_York");
        f.group_type(0, "company");
        f
    }

    /// The statements of `query`, one after another.
    fn sql(query: Value) -> String {
        project().statements(query).join(";\n\n")
    }

    #[test]
    fn trends_total_by_day_with_a_breakdown_and_filters() {
        insta::assert_snapshot!(sql(json!({
            "kind": "TrendsQuery",
            "series": [{"kind": "EventsNode", "event": "$pageview",
                        "properties": [{"key": "plan", "value": "pro", "type": "person", "operator": "exact"}]}],
            "dateRange": {"date_from": "-7d"},
            "breakdownFilter": {"breakdown": "$browser", "breakdown_type": "event"},
        })));
    }

    #[test]
    fn trends_unique_groups_weekly() {
        insta::assert_snapshot!(sql(json!({
            "kind": "TrendsQuery",
            "series": [{"kind": "EventsNode", "event": "used", "math": "unique_group", "math_group_type_index": 0}],
            "interval": "week",
            "dateRange": {"date_from": "-30d"},
            "breakdownFilter": {"breakdown": "plan", "breakdown_type": "group", "breakdown_group_type_index": 0},
        })));
    }

    #[test]
    fn trends_property_math_and_counts_per_actor() {
        insta::assert_snapshot!(sql(json!({
            "kind": "TrendsQuery",
            "series": [
                {"kind": "EventsNode", "event": "paid", "math": "median", "math_property": "amount"},
                {"kind": "EventsNode", "event": "paid", "math": "avg_count_per_actor"},
            ],
            "dateRange": {"date_from": "-7d"},
        })));
    }

    #[test]
    fn trends_weekly_active_and_first_time_for_user() {
        insta::assert_snapshot!(sql(json!({
            "kind": "TrendsQuery",
            "series": [
                {"kind": "EventsNode", "event": "used", "math": "weekly_active"},
                {"kind": "EventsNode", "event": "signed up", "math": "first_time_for_user"},
            ],
            "dateRange": {"date_from": "-7d"},
        })));
    }

    #[test]
    fn funnels_with_an_exclusion_and_a_breakdown() {
        insta::assert_snapshot!(sql(json!({
            "kind": "FunnelsQuery",
            "series": [
                {"kind": "EventsNode", "event": "signed up"},
                {"kind": "EventsNode", "event": "activated", "math": "first_time_for_user"},
                {"kind": "EventsNode", "event": "paid"},
            ],
            "funnelsFilter": {"exclusions": [{"kind": "EventsNode", "event": "churned",
                                              "funnelFromStep": 0, "funnelToStep": 2}]},
            "breakdownFilter": {"breakdown": "email", "breakdown_type": "person"},
            "dateRange": {"date_from": "2024-03-01", "date_to": "2024-03-15"},
        })));
    }

    #[test]
    fn retention_recurring_by_persons() {
        insta::assert_snapshot!(sql(json!({
            "kind": "RetentionQuery",
            "dateRange": {"date_from": "2024-03-01", "date_to": "2024-03-14"},
            "retentionFilter": {"targetEntity": {"id": "signed up", "type": "events"},
                                "returningEntity": {"id": "used", "type": "events"},
                                "period": "Week", "totalIntervals": 3},
        })));
    }

    #[test]
    fn retention_first_time_by_company_with_a_breakdown() {
        insta::assert_snapshot!(sql(json!({
            "kind": "RetentionQuery",
            "aggregation_group_type_index": 0,
            "dateRange": {"date_from": "2024-03-10", "date_to": "2024-03-14"},
            "retentionFilter": {"targetEntity": {"id": "used", "type": "events"},
                                "returningEntity": {"id": "used", "type": "events"},
                                "retentionType": "retention_first_time", "totalIntervals": 5},
            "breakdownFilter": {"breakdown": "plan", "breakdown_type": "group", "breakdown_group_type_index": 0},
        })));
    }

    #[test]
    fn lifecycle_by_day() {
        insta::assert_snapshot!(sql(json!({
            "kind": "LifecycleQuery",
            "series": [{"kind": "EventsNode", "event": "used"}],
            "dateRange": {"date_from": "2024-03-08", "date_to": "2024-03-14"},
        })));
    }

    #[test]
    fn stickiness_by_day_and_by_periods_of_two_weeks() {
        let f = project();
        let mut statements = f.statements(json!({
            "kind": "StickinessQuery",
            "series": [{"kind": "EventsNode", "event": "used"}],
            "dateRange": {"date_from": "2024-03-08", "date_to": "2024-03-14"},
        }));
        statements.extend(f.statements(json!({
            "kind": "StickinessQuery",
            "series": [{"kind": "EventsNode", "event": "used", "math": "unique_group", "math_group_type_index": 0}],
            "interval": "week",
            "intervalCount": 2,
            "dateRange": {"date_from": "-60d"},
        })));
        insta::assert_snapshot!(statements.join(";\n\n"));
    }

    #[test]
    fn paths_of_pageviews_and_custom_events() {
        insta::assert_snapshot!(sql(json!({
            "kind": "PathsQuery",
            "pathsFilter": {"includeEventTypes": ["$pageview", "custom_event"]},
            "dateRange": {"date_from": "2024-03-10", "date_to": "2024-03-14"},
        })));
    }
}
