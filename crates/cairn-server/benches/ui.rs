//! Web UI benchmark: how long the server takes to answer each page on the
//! `cairn demo` data set (target: under 200 ms, insights aside). Copies the
//! cached data set, adds an account, signs in, and times every page.
//!
//!     cargo bench --profile dev -p cairn-server --bench ui -- [--events N] [--runs R]

mod support;

use std::process::Command;
use std::time::Instant;

use support::{arg, build, BenchServer};

/// The first `prefix…"` link on a page, without the quote.
fn first_link(html: &str, prefix: &str) -> Option<String> {
    let start = html.find(prefix)?;
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}

fn main() {
    let events = arg("--events", 200_000);
    let runs = arg("--runs", 20);
    let cached = build(events);
    let copy = tempfile::tempdir().unwrap();
    let dir = copy.path().join("data");
    let status = Command::new("cp")
        .arg("-r")
        .arg(&cached)
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success(), "copying the data set failed");
    let status = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args([
            "users",
            "create",
            "--email",
            "bench@example.com",
            "--password",
            "bench-password",
            "--data-dir",
        ])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success(), "cairn users create failed");
    let server = BenchServer::start_in(copy, &dir);
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = client
        .post(format!("{}/login", server.base))
        .header("Origin", &server.base)
        .form(&[
            ("email", "bench@example.com"),
            ("password", "bench-password"),
        ])
        .send()
        .unwrap();
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let get = |path: &str| {
        let response = client
            .get(format!("{}{path}", server.base))
            .header("Cookie", &cookie)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.text().unwrap()
    };
    let persons = get("/project/1/persons");
    let person = first_link(&persons, "/project/1/persons/").expect("a person link");
    let groups = get("/project/1/groups/0");
    let group = first_link(&groups, "/project/1/groups/0/").expect("a group link");
    let pages = [
        ("persons", "/project/1/persons".to_string()),
        (
            "persons search",
            "/project/1/persons?search=user-1".to_string(),
        ),
        ("person", person),
        ("companies", "/project/1/groups/0".to_string()),
        ("company", group),
        ("events", "/project/1/events".to_string()),
        ("insights form", "/project/1/insights".to_string()),
        ("feature flags", "/project/1/feature_flags".to_string()),
        ("settings", "/project/1/settings".to_string()),
    ];
    println!(
        "web UI on the demo data set ({events} events): server time per page over {runs} runs"
    );
    println!("  {:<16} {:>9} {:>9} {:>9}", "page", "median", "p95", "max");
    for (name, path) in pages {
        get(&path); // warm-up
        let mut times: Vec<f64> = (0..runs)
            .map(|_| {
                let started = Instant::now();
                get(&path);
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        println!(
            "  {name:<16} {:>7.1}ms {:>7.1}ms {:>7.1}ms",
            at(0.5),
            at(0.95),
            times[times.len() - 1]
        );
    }
}
