//! Hostile connections: clients that stall mid-body on any route, sit idle,
//! stall HTTP/2 streams, flood the server with connections or send too
//! much. Each is answered (408 or 413 naming the limit) or disconnected
//! within the request timeout, and the server keeps serving everyone else.

mod common;

use std::convert::Infallible;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use common::{event, Server, PERSONAL_KEY};
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};

/// The server's `--request-timeout` in these tests, in seconds.
const TIMEOUT: u64 = 2;

fn address(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_string()
}

/// A connection that sent `request` and stalls.
fn send(server: &Server, request: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address(server)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    stream
}

/// A POST whose headers promise 1000 bytes of body, of which 10 come.
fn stalled_post(server: &Server, path: &str, content_type: &str, authorization: &str) -> String {
    let host = address(server);
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n{authorization}Content-Length: 1000\r\n\r\n0123456789"
    )
}

fn get_health(server: &Server) -> String {
    format!("GET /_health HTTP/1.1\r\nHost: {}\r\n\r\n", address(server))
}

/// Everything the server sends until it closes the connection, and when it
/// closed it; `None` for the time if it still had not after `limit`.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        if left.is_zero() {
            return (String::from_utf8_lossy(&received).into(), None);
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (String::from_utf8_lossy(&received).into(), None)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break, // reset: closed too
        }
    }
    (
        String::from_utf8_lossy(&received).into(),
        Some(started.elapsed()),
    )
}

/// One HTTP/1.1 response read off a kept-alive connection (headers, and a
/// body of `Content-Length` bytes), or what arrived within `limit`.
fn read_response(stream: &mut TcpStream, limit: Duration) -> String {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        let text = String::from_utf8_lossy(&received).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                return text;
            }
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return text,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

fn detail(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["detail"].as_str().map(str::to_string))
        .unwrap_or_default()
}

fn trends() -> Value {
    json!({"query": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "meanwhile"}]}})
}

/// The server answers capture and the private API at once.
fn serves_everyone_else(server: &Server) {
    let started = Instant::now();
    for _ in 0..5 {
        server.capture(json!([event("meanwhile", "u", json!({}))]));
    }
    let query = server
        .authed(server.client.post(server.api("/query/")))
        .json(&trends())
        .send()
        .unwrap();
    assert_eq!(query.status(), 200, "{}", query.text().unwrap());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "others waited on stalled clients: {:?}",
        started.elapsed()
    );
}

#[test]
fn a_body_that_stalls_on_an_api_route_or_a_form_gets_408_and_holds_no_one_up() {
    let server = Server::start_with(&["--request-timeout", &TIMEOUT.to_string()]);
    let bearer = format!("Authorization: Bearer {PERSONAL_KEY}\r\n");
    let form = "application/x-www-form-urlencoded";
    let attacks = [
        (
            "private API query",
            stalled_post(
                &server,
                "/api/projects/1/query/",
                "application/json",
                &bearer,
            ),
        ),
        (
            "feature flag create",
            stalled_post(
                &server,
                "/api/projects/1/feature_flags/",
                "application/json",
                &bearer,
            ),
        ),
        ("sign-in form", stalled_post(&server, "/login", form, "")),
        (
            "first-account form",
            stalled_post(&server, "/setup", form, ""),
        ),
    ];
    let stalled: Vec<_> = attacks
        .iter()
        .map(|(name, request)| (name, send(&server, request), Instant::now()))
        .collect();

    serves_everyone_else(&server);

    for (name, mut stream, sent) in stalled {
        let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(TIMEOUT + 5));
        let waited = sent.elapsed();
        assert!(
            closed.is_some(),
            "{name}: still open after {waited:?}, answered {answer:?}"
        );
        assert!(answer.starts_with("HTTP/1.1 408"), "{name}: {answer}");
        let body = answer.split_once("\r\n\r\n").unwrap().1;
        assert!(
            detail(body).contains(&format!("did not arrive within {TIMEOUT} s")),
            "{name}: {answer}"
        );
        assert!(
            waited < Duration::from_secs(TIMEOUT + 3),
            "{name}: {waited:?}"
        );
    }
    assert_eq!(server.events("event=meanwhile").len(), 5);
}

#[test]
fn an_oversize_api_body_or_form_is_413_naming_the_limit() {
    let server = Server::start();
    let padding = "x".repeat(3 << 20);
    let query = json!({"query": {"kind": "TrendsQuery", "padding": padding}});
    let oversize = [
        server
            .authed(server.client.post(server.api("/query/")))
            .json(&query),
        server
            .authed(server.client.post(server.api("/feature_flags/")))
            .json(&json!({"key": "big", "name": padding})),
        server
            .client
            .post(server.url("/login"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("email=a%40b.c&password={padding}")),
    ];
    for request in oversize {
        let response = request.send().unwrap();
        let status = response.status();
        let body = response.text().unwrap();
        assert_eq!(status, 413, "{body}");
        assert!(detail(&body).contains("2 MiB limit"), "{body}");
    }
    // Under the limit, a body reaches its handler.
    let under = json!({"key": "under", "name": "x".repeat(1 << 20), "filters": {"groups": []}});
    let response = server
        .authed(server.client.post(server.api("/feature_flags/")))
        .json(&under)
        .send()
        .unwrap();
    assert_ne!(response.status(), 413, "{}", response.text().unwrap());
    serves_everyone_else(&server);
}

#[test]
fn idle_connections_are_closed_after_the_request_timeout() {
    let server = Server::start_with(&["--request-timeout", &TIMEOUT.to_string()]);
    // HTTP/1.1 keep-alive, after one answered request.
    let mut kept = send(&server, &get_health(&server));
    let answer = read_response(&mut kept, Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // A connection that never sends a byte.
    let mut silent = TcpStream::connect(address(&server)).unwrap();
    // One that sends half a request line.
    let mut partial = send(&server, "GET /_hea");

    let limit = Duration::from_secs(TIMEOUT + 5);
    for (name, stream) in [
        ("kept-alive", &mut kept),
        ("silent", &mut silent),
        ("partial", &mut partial),
    ] {
        let (_, closed) = read_until_closed(stream, limit);
        let closed =
            closed.unwrap_or_else(|| panic!("{name} connection still open after {limit:?}"));
        assert!(
            closed < Duration::from_secs(TIMEOUT + 3),
            "{name}: {closed:?}"
        );
    }
    serves_everyone_else(&server);
}

/// A request body for the HTTP/2 client: `first`, then either the end or
/// nothing ever again.
struct TestBody {
    first: Option<Bytes>,
    stall: bool,
}

impl hyper::body::Body for TestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.first.take() {
            Some(bytes) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
            None if self.stall => Poll::Pending,
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && !self.stall
    }
}

#[test]
fn stalled_http2_streams_get_408_and_the_idle_connection_is_closed() {
    let server = Server::start_with(&["--request-timeout", &TIMEOUT.to_string()]);
    let address = address(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(&address).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .unwrap();
        let connection = tokio::spawn(connection);
        let request = |path: &str, content_type: &str, stall: bool| {
            hyper::Request::post(format!("http://{address}{path}"))
                .header("authorization", format!("Bearer {PERSONAL_KEY}"))
                .header("content-type", content_type)
                .body(TestBody {
                    first: Some(Bytes::from_static(b"{\"query\":")),
                    stall,
                })
                .unwrap()
        };
        sender.ready().await.unwrap();
        let started = Instant::now();
        let stalled: Vec<_> = [
            "/api/projects/1/query/",
            "/api/projects/1/feature_flags/",
            "/login",
        ]
        .into_iter()
        .map(|path| (path, tokio::spawn(sender.send_request(request(path, "application/json", true)))))
        .collect();

        let others = tokio::task::spawn_blocking({
            let base = server.base.clone();
            move || {
                // The same server, reached on its own connections.
                let client = reqwest::blocking::Client::new();
                let started = Instant::now();
                for _ in 0..5 {
                    let response = client
                        .post(format!("{base}/batch/"))
                        .json(&json!({"api_key": common::PROJECT_KEY, "batch": [event("meanwhile", "u", json!({}))]}))
                        .send()
                        .unwrap();
                    assert_eq!(response.status(), 200);
                }
                started.elapsed()
            }
        });
        let others = others.await.unwrap();
        assert!(others < Duration::from_secs(1), "capture waited: {others:?}");

        for (path, response) in stalled {
            let response = tokio::time::timeout(Duration::from_secs(TIMEOUT + 5), response)
                .await
                .unwrap_or_else(|_| panic!("{path}: no answer within {}s", TIMEOUT + 5))
                .unwrap()
                .unwrap();
            assert_eq!(response.status(), 408, "{path}");
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let body = String::from_utf8_lossy(&body);
            assert!(detail(&body).contains(&format!("within {TIMEOUT} s")), "{path}: {body}");
        }
        assert!(started.elapsed() < Duration::from_secs(TIMEOUT + 3));

        // The connection still works; once idle, the server closes it.
        let health = hyper::Request::get(format!("http://{address}/_health"))
            .body(TestBody { first: None, stall: false })
            .unwrap();
        let health = sender.send_request(health).await.unwrap();
        assert_eq!(health.status(), 200);
        let idle_since = Instant::now();
        tokio::time::timeout(Duration::from_secs(TIMEOUT + 5), connection)
            .await
            .expect("the idle HTTP/2 connection was not closed")
            .unwrap()
            .ok();
        let idle = idle_since.elapsed();
        assert!(idle >= Duration::from_secs(TIMEOUT) - Duration::from_millis(200), "closed too soon: {idle:?}");
        drop(sender);
    });
    assert_eq!(server.events("event=meanwhile").len(), 5);
}

#[test]
fn past_the_connection_cap_new_connections_wait_for_a_free_slot() {
    let server = Server::start_with(&[
        "--max-connections",
        "4",
        "--request-timeout",
        &TIMEOUT.to_string(),
    ]);
    // Four connections the server is working on (their bodies stall).
    let capture = stalled_post(&server, "/batch/", "application/json", "");
    let mut busy: Vec<_> = (0..4).map(|_| send(&server, &capture)).collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(200));
    let mut waiting = send(&server, &get_health(&server));

    // The cap holds: nothing for the fifth while the four are worked on.
    let early = read_response(&mut waiting, Duration::from_millis(1500));
    assert!(early.is_empty(), "a fifth connection was served: {early}");
    // Once the stalled ones are cut off (408), it is served.
    let answer = read_response(&mut waiting, Duration::from_secs(TIMEOUT + 5));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(2 * TIMEOUT + 3), "{waited:?}");
    for stream in &mut busy {
        let (answer, _) = read_until_closed(stream, Duration::from_secs(TIMEOUT + 5));
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
}

#[test]
fn at_the_connection_cap_idle_connections_make_room() {
    // A long idle timeout: only the cap can explain a quick close.
    let server = Server::start_with(&["--max-connections", "4", "--request-timeout", "60"]);
    let mut silent: Vec<_> = (0..4)
        .map(|_| TcpStream::connect(address(&server)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let mut waiting = send(&server, &get_health(&server));
    let answer = read_response(&mut waiting, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(4), "{waited:?}");
    // Some idle connection was closed to make that room.
    let closed = silent
        .iter_mut()
        .map(|stream| read_until_closed(stream, Duration::from_millis(100)).1)
        .filter(Option::is_some)
        .count();
    assert!(closed >= 1, "no idle connection was closed");
    drop((silent, waiting));
    std::thread::sleep(Duration::from_millis(200));
    serves_everyone_else(&server);
}

#[test]
fn bodies_held_at_once_stay_within_the_memory_limit() {
    let server = Server::start_with(&["--request-timeout", "3"]);
    let head = format!(
        "POST /batch/ HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 20000000\r\n\r\n",
        address(&server)
    );
    // 20 bodies of 17 MB (340 MB) that never finish: more than the 256 MiB
    // the server holds at once.
    let part = vec![b' '; 17_000_000];
    let mut parked: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut stream = send(&server, &head);
            let _ = stream.write_all(&part); // refused ones are cut off
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let rss = common::memory_kb(server.pid()).0 as f64 / 1024.0;
    assert!(rss < 450.0, "the server holds {rss:.0} MB");

    let mut refused = 0;
    for stream in &mut parked {
        let (answer, _) = read_until_closed(stream, Duration::from_secs(10));
        if answer.starts_with("HTTP/1.1 503") {
            assert!(answer.contains("256 MiB of request bodies"), "{answer}");
            refused += 1;
        } else {
            assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        }
    }
    eprintln!("{refused} of 20 parked bodies refused; server RSS {rss:.0} MB");
    assert!(refused >= 4, "only {refused} of 20 bodies were refused");
    // Their memory is given back: capture works again.
    serves_everyone_else(&server);
}
