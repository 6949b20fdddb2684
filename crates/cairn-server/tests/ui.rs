//! The web UI in headless Chromium against the real binary with `cairn
//! demo` data: first-start account, Persons & Groups, a group's page,
//! renaming a group type, Insights and the actors behind their numbers,
//! Feature flags, Events, script-bearing names and properties on every page
//! under the Content-Security-Policy, sign-out and sign-in. Screenshots of each page are kept under the target
//! directory (`tmp/ui-screenshots`).

mod common;
#[path = "../../../scripts/node_compat.rs"]
mod node_compat;

use std::path::PathBuf;
use std::process::Command;

use common::{Server, PERSONAL_KEY, PROJECT_KEY};
use node_compat::run_node;
use serde_json::{json, Value};

/// The JSON a page showed as text.
fn shown_json(shown: &Value) -> Value {
    serde_json::from_str(shown.as_str().unwrap()).unwrap()
}

/// Runs the query JSON a page showed through the query API.
fn query(server: &Server, shown: &Value) -> Value {
    server.answer(shown_json(shown))
}

/// The query API's CSV answer to `query`.
fn query_csv(server: &Server, query: Value) -> String {
    let response = server
        .authed(server.client.post(server.api("/query/")))
        .header("Accept", "text/csv")
        .json(&json!({ "query": query }))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().unwrap()
}

/// Every result kind links its numbers to the actors behind them, and the
/// first link of each lists them.
fn check_drill_links(out: &Value) {
    let kinds = out["drill"].as_object().unwrap();
    assert_eq!(kinds.len(), 7, "{out}");
    for (kind, drill) in kinds {
        assert!(drill["links"].as_u64().unwrap() > 0, "{kind}: {drill}");
        assert_eq!(drill["errors"], json!([]), "{kind}: {drill}");
        let title = drill["title"].as_str().unwrap();
        assert!(
            title.starts_with("Persons · ") || title.starts_with("Organisations · "),
            "{kind}: {drill}"
        );
    }
}

/// The organisations that dropped off before step 2 of a company funnel:
/// the page followed from the count lists what the query API lists for
/// that cell, as many as the count says, and its CSV is the API's CSV.
fn check_dropped_off(server: &Server, out: &Value) {
    let funnel = shown_json(&out["dropped_query"]);
    assert_eq!(funnel["aggregation_group_type_index"], 0, "{funnel}");
    let cell = json!({"kind": "FunnelsActorsQuery", "source": funnel, "funnelStep": -2});
    assert_eq!(shown_json(&out["dropped_cell"]), cell);
    assert_eq!(
        out["dropped_title"],
        "Organisations · dropped off before step 2 (activated)"
    );
    assert_eq!(out["dropped_columns"][0], "Organisation", "{out}");
    let page = server.answer(json!({"kind": "ActorsQuery", "source": cell, "limit": 50}));
    let listed: Vec<Value> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            json!({"key": row[0]["group_key"], "path": "/project/1/groups/0",
                "name": row[0]["display_name"]})
        })
        .collect();
    assert!(!listed.is_empty(), "{page}");
    assert_eq!(out["dropped"], json!(listed));
    assert_eq!(out["dropped_next"] == 1, page["hasMore"] == true, "{out}");
    let all = server.answer(json!({"kind": "ActorsQuery", "source": cell, "limit": 1000}));
    let total = all["results"].as_array().unwrap().len();
    let step = out["dropped_step"].as_str().unwrap().replace(',', "");
    assert!(step.contains(&format!("{total} dropped off")), "{step}");

    let download = &out["dropped_csv"];
    assert_eq!(download["status"], 200);
    assert!(download["type"].as_str().unwrap().starts_with("text/csv"));
    let body = download["body"].as_str().unwrap();
    assert_eq!(
        body,
        query_csv(server, json!({"kind": "ActorsQuery", "source": cell}))
    );
    let mut rows = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<&str> = rows.headers().unwrap().iter().take(2).collect();
    assert_eq!(header, ["id", "name"]);
    let keys: Vec<String> = rows.records().map(|r| r.unwrap()[0].to_string()).collect();
    assert_eq!(keys.len(), total);
    for actor in &listed {
        assert!(keys.contains(&actor["key"].as_str().unwrap().to_string()));
    }

    // Searched, with a property column; a cell it cannot answer says why.
    let first = &listed[0]["name"];
    assert!(
        out["dropped_searched"].as_array().unwrap().contains(first),
        "{out}"
    );
    assert!(out["dropped_searched_columns"]
        .as_array()
        .unwrap()
        .contains(&json!("plan")));
    let refused = out["bad_cell"][0].as_str().unwrap();
    assert!(refused.contains("between 1 and 2"), "{refused}");
}

#[test]
fn the_web_ui_signs_in_and_browses_persons_groups_settings_and_events() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let demo = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["demo", "--events", "20000", "--days", "30", "--data-dir"])
        .arg(&data)
        .env("CAIRN_PROJECT_API_KEY", PROJECT_KEY)
        .env("CAIRN_PERSONAL_API_KEY", PERSONAL_KEY)
        .env("CAIRN_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    let server = Server::start_in(data, Some(temp), &[]);
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    let out = run_node(
        "ui.mjs",
        &[&server.base, shots.to_str().unwrap(), PROJECT_KEY],
        true,
    );
    println!("{out:#}");

    assert_eq!(out["errors"], json!([]), "{out}");
    assert_eq!(out["first_url"], "/setup");
    assert_eq!(out["persons_title"], "Persons & Groups · Cairn");
    assert_eq!(out["tabs"][0], "Persons");
    assert_eq!(out["tabs"][1], "Companies", "{out}");
    assert!(out["person_rows"].as_u64().unwrap() > 10);
    assert!(out["group_rows"].as_u64().unwrap() > 10);
    // A group's page is titled by its name, with properties and events.
    assert_eq!(out["group_page_heading"], out["group_name"]);
    assert!(out["group_properties"].as_u64().unwrap() >= 3, "{out}");
    assert!(out["group_events"].as_u64().unwrap() > 0, "{out}");
    assert!(!out["person_page_heading"].as_str().unwrap().is_empty());
    // Renaming a group type shows everywhere, the API included.
    assert!(out["saved_notice"].as_str().unwrap().starts_with("Saved"));
    assert_eq!(out["tabs_after_rename"][1], "Organisations");
    let types = server.get("/groups_types/");
    assert_eq!(types[0]["name_plural"], "organisations", "{types}");
    assert!(out["event_rows"].as_u64().unwrap() > 50);
    assert_eq!(out["live_refresh"], "5");
    assert_eq!(out["live_seen"], true);
    // Insights offer the group type by its new name, and show what the query API answers.
    assert!(out["counted_by_options"]
        .as_array()
        .unwrap()
        .contains(&json!("Unique organisations")));
    let trends = query(&server, &out["trends_query"]);
    let expected: Vec<String> = trends["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} signed up · {}",
                s["aggregated_value"],
                s["breakdown_value"].as_str().unwrap()
            )
        })
        .collect();
    let shown: Vec<String> = out["trends_numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().replace(',', ""))
        .collect();
    assert!(expected.len() >= 2, "{trends}");
    assert_eq!(shown, expected);
    assert_eq!(out["saved_insights"], json!(["Sign-ups by plan"]));
    // A saved insight opens filled in, and runs on Calculate (a POST), not on opening.
    assert_eq!(out["saved_insight_event"], "signed up");
    assert_eq!(out["saved_insight_ran_on_open"], 0);
    assert!(out["saved_insight_numbers"].as_u64().unwrap() >= 2, "{out}");
    assert_eq!(out["line_chart_lines"], 1);
    let funnel = query(&server, &out["funnel_query"]);
    let shown: Value = serde_json::from_str(out["funnel_query"].as_str().unwrap()).unwrap();
    assert_eq!(
        shown["properties"],
        json!([{"key": "plan", "type": "group", "group_type_index": 0,
            "operator": "exact", "value": ["enterprise", "pro"]}])
    );
    assert_eq!(funnel["results"].as_array().unwrap().len(), 2);
    let steps = out["funnel_steps"].as_array().unwrap();
    for (step, answer) in steps.iter().zip(funnel["results"].as_array().unwrap()) {
        let count = answer["count"].as_u64().unwrap();
        assert!(
            step.as_str()
                .unwrap()
                .replace(',', "")
                .contains(&format!("{count} (")),
            "{step} vs {answer}"
        );
    }
    assert!(out["retention_rows"].as_u64().unwrap() > 0);
    assert_eq!(
        out["lifecycle_legend"],
        json!(["new", "returning", "resurrecting", "dormant"])
    );
    assert!(out["stickiness_bars"].as_u64().unwrap() > 0);
    assert!(out["path_rows"].as_u64().unwrap() > 0, "{out}");
    check_drill_links(&out);
    check_dropped_off(&server, &out);
    // A flag matched by the group type, tested from its page.
    assert_eq!(out["match_by_options"], json!(["Persons", "Organisations"]));
    assert_eq!(out["flag_saved"], "Saved.");
    let enterprise = out["flag_enterprise"].as_str().unwrap();
    assert!(
        enterprise.contains("true") && enterprise.contains("Matched condition set 1"),
        "{enterprise}"
    );
    let starter = out["flag_starter"].as_str().unwrap();
    assert!(
        starter.contains("false") && starter.contains("No matching condition set"),
        "{starter}"
    );
    let listed = out["flag_list"][0].as_str().unwrap();
    assert!(
        listed.contains("org-beta")
            && listed.contains("Organisations")
            && listed.contains("Enabled"),
        "{listed}"
    );
    assert!(
        out["flag_duplicate"].as_str().unwrap().contains("org-beta"),
        "{out}"
    );
    assert_eq!(out["flag_duplicate_key_kept"], "org-beta");
    // Every page carries the CSP, nothing on them breaks it (no inline
    // style or script), and hostile text shows as text and runs nothing.
    let csp = "default-src 'self'; script-src 'none'; frame-ancestors 'none'";
    assert_eq!(out["document_csp"], json!([csp]), "{out}");
    assert_eq!(out["csp_violations"], json!([]), "{out}");
    assert_eq!(out["dialogs"], json!([]), "{out}");
    let expected = [
        ("persons", &["group_type"][..]),
        ("person", &["person_property", "event"]),
        ("groups", &["group_type"]),
        ("group", &["group_type", "group_property", "event"]),
        ("events", &["event"]),
        ("insights", &["group_type", "event"]),
        ("actors", &["person_property", "event"]),
        (
            "group_actors",
            &["group_type", "group_property", "group_name", "event"],
        ),
        ("flags", &["group_type", "flag_name"]),
        ("flag", &["group_type"]),
        ("settings", &["group_type"]),
    ];
    for (page, fields) in expected {
        let seen = &out["hostile"][page];
        assert_eq!(seen["csp"], csp, "{page}: {seen}");
        assert_eq!(seen["scripts"], 0, "{page}: {seen}");
        // What the scripts would have done: the title would be theirs.
        assert!(
            !seen["title"].as_str().unwrap().starts_with("xss"),
            "{page}: {seen}"
        );
        for field in fields {
            assert!(
                seen["shown"].as_array().unwrap().contains(&json!(field)),
                "{page} does not show the {field} as text: {seen}"
            );
        }
    }
    // In a form, the description is the field's value, character for character.
    assert!(
        out["hostile"]["flag"]["in_fields"]
            .as_array()
            .unwrap()
            .contains(&json!("flag_name")),
        "{out}"
    );
    // Sessions end at sign-out; the password is checked.
    assert_eq!(out["after_sign_out"], "/login");
    assert_eq!(out["settings_without_session"], "/login");
    assert!(out["wrong_password"]
        .as_str()
        .unwrap()
        .contains("do not match"));
    assert_eq!(out["signed_in_again"], "/project/1/persons");
    for (page, ms) in out["timings"].as_object().unwrap() {
        assert!(ms.as_u64().unwrap() < 2_000, "{page} took {ms} ms");
    }
}
