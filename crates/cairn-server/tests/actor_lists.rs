//! The plain actor lists of `POST query/`: `GroupsQuery` and `ActorsQuery`
//! without a source, in PostHog's `{columns, results, types, hasMore,
//! limit, offset}` shape.

mod common;

use common::{event, Server};
use serde_json::{json, Value};

/// The actor cells of one answer.
fn actors(answer: &Value) -> Vec<Value> {
    assert_eq!(answer["columns"], json!(["actor"]), "{answer}");
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            assert_eq!(row.as_array().unwrap().len(), 1, "{row}");
            row[0].clone()
        })
        .collect()
}

fn field(actors: &[Value], name: &str) -> Vec<String> {
    actors
        .iter()
        .map(|a| a[name].as_str().unwrap().to_string())
        .collect()
}

/// Pages through `query` `limit` at a time: each page's actors and `hasMore`.
fn pages(server: &Server, query: Value, limit: usize) -> Vec<(Vec<Value>, bool)> {
    let mut pages = Vec::new();
    for offset in (0..).step_by(limit) {
        let mut query = query.clone();
        query["limit"] = json!(limit);
        query["offset"] = json!(offset);
        let answer = server.answer(query);
        assert_eq!(answer["limit"], limit);
        assert_eq!(answer["offset"], offset);
        let more = answer["hasMore"].as_bool().unwrap();
        pages.push((actors(&answer), more));
        if !more {
            return pages;
        }
    }
    unreachable!()
}

/// Seven companies (some named, some not) and one project, created in two
/// batches so the order has ties to break.
fn companies() -> Server {
    let server = Server::start();
    let identify = |kind: &str, key: &str, set: Value| {
        event(
            "$groupidentify",
            "admin",
            json!({"$group_type": kind, "$group_key": key, "$group_set": set}),
        )
    };
    server.capture(json!([
        identify(
            "company",
            "acme",
            json!({"name": "Acme Inc", "tier": "gold"})
        ),
        identify("company", "globex", json!({"name": "Globex"})),
        identify("company", "k-unnamed", json!({"tier": "gold"})),
        identify("project", "p1", json!({"name": "Acme rocket"})),
    ]));
    server.capture(json!([
        identify("company", "initech", json!({"name": "Initech"})),
        identify(
            "company",
            "umbrella",
            json!({"name": "Umbrella", "note": "acme rival"})
        ),
        identify("company", "hooli", json!({})),
        event("e", "u", json!({"$groups": {"company": "event-only"}})),
    ]));
    server
}

#[test]
fn groups_query_lists_groups_with_display_names_search_and_paging() {
    let server = companies();
    let all = server.answer(json!({"kind": "GroupsQuery", "group_type_index": 0}));
    assert_eq!(all["kind"], "GroupsQuery");
    assert_eq!(all["types"], json!(["String"]));
    assert_eq!(all["hasMore"], false);
    assert_eq!(
        (all["limit"].as_u64(), all["offset"].as_u64()),
        (Some(100), Some(0))
    );
    let listed = actors(&all);
    let mut keys = field(&listed, "group_key");
    keys.sort();
    assert_eq!(
        keys,
        [
            "acme",
            "event-only",
            "globex",
            "hooli",
            "initech",
            "k-unnamed",
            "umbrella"
        ]
    );
    let acme = listed.iter().find(|a| a["group_key"] == "acme").unwrap();
    assert_eq!(acme["group_type_index"], 0);
    assert_eq!(acme["display_name"], "Acme Inc");
    assert_eq!(
        acme["properties"],
        json!({"name": "Acme Inc", "tier": "gold"})
    );
    let unnamed = listed
        .iter()
        .find(|a| a["group_key"] == "k-unnamed")
        .unwrap();
    assert_eq!(unnamed["display_name"], "k-unnamed");
    // The display name is the one the groups API shows.
    for actor in &listed {
        let key = actor["group_key"].as_str().unwrap();
        let group = server.group(0, key).unwrap();
        assert_eq!(actor["display_name"], group["display_name"], "{key}");
    }

    // Search: the `name` property or the key, case-insensitively; not other
    // properties ("acme rival", "gold"), not another group type.
    let search = |term: &str| {
        let answer =
            server.answer(json!({"kind": "GroupsQuery", "group_type_index": 0, "search": term}));
        let mut keys = field(&actors(&answer), "group_key");
        keys.sort();
        keys
    };
    assert_eq!(search("ACME"), ["acme"]);
    assert_eq!(search(" k-unn "), ["k-unnamed"]);
    assert_eq!(search("o"), ["event-only", "globex", "hooli"]);
    assert!(search("gold").is_empty());
    // Search text is text: `%` and `_` are no wildcards.
    assert!(search("%").is_empty());
    assert!(search("_").is_empty());
    let projects =
        server.answer(json!({"kind": "GroupsQuery", "group_type_index": 1, "search": "acme"}));
    assert_eq!(field(&actors(&projects), "display_name"), ["Acme rocket"]);

    // Pages of three: 3 + 3 + 1, in the same order as the whole list.
    let paged = pages(
        &server,
        json!({"kind": "GroupsQuery", "group_type_index": 0}),
        3,
    );
    let sizes: Vec<(usize, bool)> = paged.iter().map(|(a, more)| (a.len(), *more)).collect();
    assert_eq!(sizes, [(3, true), (3, true), (1, false)]);
    let joined: Vec<Value> = paged.into_iter().flat_map(|(a, _)| a).collect();
    assert_eq!(joined, listed);
    // The default order, asked for by name, is the same order.
    let ordered = server.answer(
        json!({"kind": "GroupsQuery", "group_type_index": 0, "orderBy": ["created_at DESC"]}),
    );
    assert_eq!(actors(&ordered), listed);
    // Newest batch first.
    assert!(field(&listed[..4], "group_key").contains(&"hooli".to_string()));
}

#[test]
fn actors_query_without_source_lists_persons_with_search_and_paging() {
    let server = Server::start();
    let people: Vec<Value> = (1..=5)
        .map(|i| {
            json!({"event": "$set", "distinct_id": format!("user-{i}"),
                   "$set": {"email": format!("p{i}@example.com"), "name": format!("Person {i}")}})
        })
        .collect();
    server.capture(Value::Array(people));
    server.capture(json!([event("pageview", "anon-7", json!({}))]));

    let all = server.answer(json!({"kind": "ActorsQuery"}));
    assert_eq!(all["types"], json!(["UUID"]));
    assert_eq!(all["hasMore"], false);
    let listed = actors(&all);
    assert_eq!(listed.len(), 6);
    // The person object of the persons API.
    let p3 = listed
        .iter()
        .find(|a| a["properties"]["email"] == "p3@example.com")
        .unwrap();
    assert_eq!(p3, &server.person("user-3").unwrap());
    assert_eq!(p3["distinct_ids"], json!(["user-3"]));
    assert_eq!(p3["name"], "p3@example.com");

    let search = |term: &str| {
        let answer = server.answer(json!({"kind": "ActorsQuery", "search": term}));
        let mut ids: Vec<String> = actors(&answer)
            .iter()
            .map(|a| a["distinct_ids"][0].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(search("P2@EXAMPLE"), ["user-2"]);
    assert_eq!(search("person 4"), ["user-4"]);
    assert_eq!(search("anon"), ["anon-7"]);
    assert_eq!(search("example.com").len(), 5);
    assert!(search("p_@example").is_empty());
    assert!(search("%").is_empty());
    assert_eq!(search(p3["id"].as_str().unwrap()), ["user-3"]);

    let paged = pages(
        &server,
        json!({"kind": "ActorsQuery", "orderBy": [], "select": ["actor"]}),
        4,
    );
    let sizes: Vec<(usize, bool)> = paged.iter().map(|(a, more)| (a.len(), *more)).collect();
    assert_eq!(sizes, [(4, true), (2, false)]);
    let joined: Vec<Value> = paged.into_iter().flat_map(|(a, _)| a).collect();
    assert_eq!(joined, listed);
    // The newest person (the second batch) comes first.
    assert_eq!(listed[0]["distinct_ids"], json!(["anon-7"]));
    // Past the end: an empty page.
    let past = server.answer(json!({"kind": "ActorsQuery", "offset": 6}));
    assert!(actors(&past).is_empty());
    assert_eq!(past["hasMore"], false);
}

#[test]
fn list_queries_refuse_what_they_cannot_answer_naming_the_field() {
    let server = companies();
    let refused = |query: Value, attr: &str, detail: &str| {
        let (status, body) = server.query(query.clone());
        assert_eq!(status, 400, "{query} -> {body}");
        assert_eq!(body["attr"], attr, "{query} -> {body}");
        let text = body["detail"].as_str().unwrap();
        assert!(text.contains(detail), "{query} -> {text}");
    };
    let groups = |extra: Value| {
        let mut query = json!({"kind": "GroupsQuery", "group_type_index": 0});
        query
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        query
    };
    refused(
        json!({"kind": "GroupsQuery"}),
        "query.group_type_index",
        "needs",
    );
    refused(
        groups(json!({"group_type_index": 4})),
        "query.group_type_index",
        "no group type",
    );
    refused(
        groups(json!({"group_type_index": -1})),
        "query.group_type_index",
        "no group type",
    );
    refused(
        groups(json!({"group_type_index": "0"})),
        "query.group_type_index",
        "integer",
    );
    refused(
        groups(json!({"limit": -1})),
        "query.limit",
        "between 1 and 1000",
    );
    refused(
        groups(json!({"limit": 0})),
        "query.limit",
        "between 1 and 1000",
    );
    refused(
        groups(json!({"limit": 1001})),
        "query.limit",
        "between 1 and 1000",
    );
    refused(groups(json!({"offset": -3})), "query.offset", "negative");
    refused(groups(json!({"search": 7})), "query.search", "text");
    refused(
        groups(json!({"colour": "red"})),
        "query.colour",
        "not supported",
    );
    refused(
        groups(json!({"colour": null})),
        "query.colour",
        "not supported",
    );
    refused(
        json!({"kind": "ActorsQuery", "source": {"kind": "HogQLQuery"}, "colour": 1}),
        "query.colour",
        "not supported",
    );
    refused(
        groups(json!({"source": {}})),
        "query.source",
        "not supported",
    );
    refused(
        groups(
            json!({"properties": [{"key": "tier", "value": "gold", "type": "group", "group_type_index": 1}]}),
        ),
        "query.properties[0]",
        "groups of type 0",
    );
    refused(
        groups(json!({"select": ["group_name", "colour"]})),
        "query.select",
        "not a column",
    );
    refused(
        groups(json!({"orderBy": ["event_count DESC"]})),
        "query.select",
        "drill-down",
    );

    let trends = json!({"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "e"}]});
    let source = json!({"kind": "InsightActorsQuery", "source": trends});
    // A drill-down (see drill_down.rs) names the number it lists.
    refused(
        json!({"kind": "ActorsQuery", "source": source}),
        "query.source.day",
        "name the point",
    );
    refused(
        json!({"kind": "ActorsQuery", "properties": [{"key": "tier", "value": "x", "type": "group", "group_type_index": 0}]}),
        "query.properties[0]",
        "person properties",
    );
    refused(
        json!({"kind": "ActorsQuery", "select": ["actor", "event_count"]}),
        "query.select",
        "drill-down",
    );
    refused(
        json!({"kind": "ActorsQuery", "limit": 50001}),
        "query.limit",
        "between 1 and 1000",
    );
    refused(
        json!({"kind": "ActorsQuery", "limit": 1.5}),
        "query.limit",
        "integer",
    );
    refused(
        json!({"kind": "ActorsQuery", "group_type_index": 0}),
        "query.group_type_index",
        "not supported",
    );
    refused(
        json!({"kind": "ActorsQuery", "search": "a\u{0}b"}),
        "query.search",
        "NUL",
    );

    // The largest page the rule allows is answered.
    let page = server.answer(groups(json!({"limit": 1000, "search": null})));
    assert_eq!(page["limit"], 1000);
}

#[test]
fn plain_lists_select_filter_and_order_by_the_actors_properties() {
    let server = companies();
    let answer = server.answer(json!({
        "kind": "GroupsQuery",
        "group_type_index": 0,
        "select": ["group_name", "properties.tier", "id"],
        "properties": [{"key": "tier", "value": "gold", "type": "group", "group_type_index": 0}],
        "orderBy": ["group_name DESC"],
    }));
    assert_eq!(
        answer["columns"],
        json!(["display_name", "properties.tier", "id"])
    );
    assert_eq!(answer["types"], json!(["String", "String", "String"]));
    assert_eq!(
        answer["results"],
        json!([
            ["k-unnamed", "gold", "k-unnamed"],
            ["Acme Inc", "gold", "acme"]
        ])
    );
    // By a property, missing last; then by key.
    let answer = server.answer(json!({
        "kind": "GroupsQuery",
        "group_type_index": 0,
        "select": ["id"],
        "orderBy": ["properties.name ASC"],
        "limit": 4,
    }));
    assert_eq!(
        answer["results"],
        json!([["acme"], ["globex"], ["initech"], ["umbrella"]])
    );
    assert_eq!(answer["hasMore"], true);

    let persons = Server::start();
    persons.capture(json!([
        event(
            "$set",
            "u1",
            json!({"$set": {"email": "b@corp.com", "age": 30}})
        ),
        event(
            "$set",
            "u2",
            json!({"$set": {"email": "a@corp.com", "age": 25}})
        ),
        event("$set", "u3", json!({"$set": {"email": "c@home.net"}})),
    ]));
    let answer = persons.answer(json!({
        "kind": "ActorsQuery",
        "select": ["person_display_name -- Person", "properties.age"],
        "properties": [{"key": "email", "value": "corp", "operator": "icontains", "type": "person"}],
        "orderBy": ["person ASC"],
    }));
    assert_eq!(
        answer["results"],
        json!([["a@corp.com", 25], ["b@corp.com", 30]])
    );
}
