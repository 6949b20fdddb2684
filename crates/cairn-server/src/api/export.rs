//! CSV downloads: an actors list (every row, streamed as it is read, with
//! no row cap) and insight results (trends series, funnel steps, the
//! retention grid, …). The `csv` crate quotes commas, quotes and newlines;
//! text that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab,
//! carriage return first) is written with a leading `'`.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::actors::{self, Column, Listing};
use crate::error::{ApiError, ApiResult};

/// Whether the client asked for CSV: `Accept: text/csv` or `?format=csv`.
pub fn wants_csv(headers: &HeaderMap, query: Option<&str>) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let by_accept = accept
        .split(',')
        .any(|part| part.split(';').next().unwrap_or_default().trim() == "text/csv");
    let by_format = query.is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "format" && v == "csv")
    });
    by_accept || by_format
}

/// A cell as spreadsheet-safe text.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => safe(text),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => safe(&other.to_string()),
    }
}

/// Text that does not start a formula.
fn safe(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

/// One CSV record as bytes.
fn record<I: IntoIterator<Item = String>>(cells: I) -> ApiResult<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(cells)
        .map_err(|e| ApiError::Internal(format!("csv: {e}")))?;
    writer
        .into_inner()
        .map_err(|e| ApiError::Internal(format!("csv: {e}")))
}

fn attachment(name: &str, body: Body) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// Rows written per chunk sent to the client.
const ROWS_PER_CHUNK: usize = 500;

/// Streams every row of `listing` as CSV: rows are looked up and written a
/// chunk at a time on a blocking thread, and a chunk waits for the client
/// to take the previous ones, so memory stays flat however many rows.
pub fn actors_csv(listing: Listing) -> Response {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tokio::task::spawn_blocking(move || {
        let send = |chunk: ApiResult<Vec<u8>>| {
            let chunk = chunk
                .map(Bytes::from)
                .map_err(|e| std::io::Error::other(e.to_string()));
            sender.blocking_send(chunk).is_ok()
        };
        let header = listing.columns.iter().flat_map(|column| match column {
            // The actor object becomes its id and name.
            Column::Actor => vec!["id".to_string(), "name".to_string()],
            other => vec![other.name()],
        });
        if !send(record(header)) {
            return;
        }
        let mut chunk = Vec::new();
        for (n, (row, entity)) in listing.rows(0).enumerate() {
            let line = entity.and_then(|entity| {
                let texts = listing.columns.iter().flat_map(|column| match column {
                    Column::Actor => vec![safe(&row.id), safe(&entity.display_name(&row.id))],
                    other => {
                        let value =
                            actors::cell(other, listing.set.actor, &row.id, &entity, Some(row));
                        vec![cell(&value)]
                    }
                });
                record(texts)
            });
            match line {
                Ok(line) => chunk.extend(line),
                Err(e) => {
                    send(Err(e));
                    return;
                }
            }
            if (n + 1) % ROWS_PER_CHUNK == 0 && !send(Ok(std::mem::take(&mut chunk))) {
                return; // the client went away
            }
        }
        if !chunk.is_empty() {
            send(Ok(chunk));
        }
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    attachment("actors.csv", Body::from_stream(stream))
}

/// An insight's results as CSV: one line per series (trends, lifecycle,
/// stickiness), funnel step, retention cohort or paths edge.
pub fn insight_csv(kind: &str, answer: &Value) -> ApiResult<Response> {
    let results = answer.get("results").unwrap_or(&Value::Null);
    let mut out = Vec::new();
    let mut line = |cells: Vec<String>| -> ApiResult<()> {
        out.extend(record(cells)?);
        Ok(())
    };
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let text = |v: Option<&Value>| v.map(cell).unwrap_or_default();
    match kind {
        "FunnelsQuery" if results.get("bins").is_some() => {
            line(vec!["seconds".into(), "actors".into()])?;
            for bin in list(&results["bins"]) {
                line(vec![text(bin.get(0)), text(bin.get(1))])?;
            }
        }
        "FunnelsQuery"
            if list(results)
                .first()
                .is_some_and(|r| r.get("days").is_some()) =>
        {
            trends_lines(&list(results), &mut line)?;
        }
        "FunnelsQuery" => {
            line(
                [
                    "breakdown_value",
                    "step",
                    "name",
                    "count",
                    "conversion_rate",
                    "average_conversion_time",
                    "median_conversion_time",
                ]
                .map(String::from)
                .to_vec(),
            )?;
            // Without a breakdown the steps are the list; with one, a list
            // of step lists.
            let groups = match list(results).first() {
                Some(Value::Array(_)) => list(results).iter().map(list).collect(),
                _ => vec![list(results)],
            };
            for steps in groups {
                let first = steps
                    .first()
                    .and_then(|s| s["count"].as_f64())
                    .unwrap_or(0.0);
                for step in &steps {
                    let count = step["count"].as_f64().unwrap_or(0.0);
                    let rate = if first > 0.0 {
                        format!("{:.2}", count / first * 100.0)
                    } else {
                        "0".into()
                    };
                    line(vec![
                        text(step.get("breakdown_value")),
                        step["order"]
                            .as_u64()
                            .map_or(String::new(), |o| (o + 1).to_string()),
                        text(
                            step.get("custom_name")
                                .filter(|v| !v.is_null())
                                .or(step.get("name")),
                        ),
                        text(step.get("count")),
                        rate,
                        text(step.get("average_conversion_time")),
                        text(step.get("median_conversion_time")),
                    ])?;
                }
            }
        }
        "RetentionQuery" => {
            let rows = list(results);
            let periods: Vec<String> = rows
                .first()
                .map(|r| {
                    list(&r["values"])
                        .iter()
                        .map(|v| text(v.get("label")))
                        .collect()
                })
                .unwrap_or_default();
            let mut header = vec!["cohort".into(), "date".into(), "breakdown_value".into()];
            header.extend(periods);
            line(header)?;
            for row in rows {
                let mut cells = vec![
                    text(row.get("label")),
                    text(row.get("date")),
                    text(row.get("breakdown_value")),
                ];
                cells.extend(list(&row["values"]).iter().map(|v| text(v.get("count"))));
                line(cells)?;
            }
        }
        "PathsQuery" => {
            line(
                ["source", "target", "value", "average_conversion_time"]
                    .map(String::from)
                    .to_vec(),
            )?;
            for edge in list(results) {
                line(vec![
                    text(edge.get("source")),
                    text(edge.get("target")),
                    text(edge.get("value")),
                    text(edge.get("average_conversion_time")),
                ])?;
            }
        }
        _ => trends_lines(&list(results), &mut line)?,
    }
    Ok(attachment("insight.csv", Body::from(out)))
}

/// Series with `days` and `data` (or one aggregated value): a line each.
fn trends_lines(
    series: &[Value],
    line: &mut impl FnMut(Vec<String>) -> ApiResult<()>,
) -> ApiResult<()> {
    let days: Vec<String> = series
        .first()
        .and_then(|s| s["days"].as_array())
        .map(|d| d.iter().map(cell).collect())
        .unwrap_or_default();
    let total = days.is_empty();
    let mut header = vec![
        "series".to_string(),
        "breakdown_value".into(),
        "compare_label".into(),
    ];
    if total {
        header.push("value".into());
    } else {
        header.extend(days);
    }
    line(header)?;
    for s in series {
        let mut cells = vec![
            s.get("label").map(cell).unwrap_or_default(),
            s.get("breakdown_value").map(cell).unwrap_or_default(),
            s.get("compare_label").map(cell).unwrap_or_default(),
        ];
        if total {
            cells.push(
                s.get("aggregated_value")
                    .or(s.get("count"))
                    .map(cell)
                    .unwrap_or_default(),
            );
        } else {
            cells.extend(s["data"].as_array().into_iter().flatten().map(cell));
        }
        line(cells)?;
    }
    Ok(())
}
