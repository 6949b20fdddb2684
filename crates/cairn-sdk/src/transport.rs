//! HTTP with `ureq`: blocking and runtime-free, so the same client works
//! from plain threads and from inside any async runtime's threads.

use std::io::Write;
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::Compression;
use ureq::http::header::{CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, RETRY_AFTER};

use crate::error::Error;

/// A server's answer, whatever its status.
pub(crate) struct Reply {
    pub status: u16,
    pub body: String,
    pub etag: Option<String>,
    /// `Retry-After`, as seconds or an HTTP date.
    pub retry_after: Option<Duration>,
}

impl Reply {
    /// The start of the body, for error messages.
    pub fn excerpt(&self) -> String {
        self.body.chars().take(300).collect()
    }
}

#[derive(Clone)]
pub(crate) struct Transport {
    agent: ureq::Agent,
    host: String,
}

impl Transport {
    pub fn new(host: &str, timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(format!("{}/{}", crate::LIB_NAME, crate::LIB_VERSION))
            .build()
            .new_agent();
        Self {
            agent,
            host: host.trim_end_matches('/').to_string(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.host)
    }

    /// POSTs a JSON body, gzip-compressed when `gzip`.
    pub fn post_json(&self, path: &str, body: &[u8], gzip: bool) -> Result<Reply, Error> {
        let url = self.url(path);
        let request = self
            .agent
            .post(&url)
            .header(CONTENT_TYPE, "application/json");
        let result = if gzip {
            let mut encoder =
                GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
            encoder
                .write_all(body)
                .and_then(|()| encoder.finish())
                .map_err(|e| Error::Transport {
                    url: url.clone(),
                    cause: format!("gzip: {e}"),
                })
                .and_then(|compressed| {
                    request
                        .header(CONTENT_ENCODING, "gzip")
                        .send(&compressed[..])
                        .map_err(|e| transport_error(&url, e))
                })?
        } else {
            request.send(body).map_err(|e| transport_error(&url, e))?
        };
        read(&url, result)
    }

    /// GETs `path` with a bearer token, revalidating `etag`.
    pub fn get(&self, path: &str, bearer: &str, etag: Option<&str>) -> Result<Reply, Error> {
        let url = self.url(path);
        let mut request = self
            .agent
            .get(&url)
            .header("Authorization", format!("Bearer {bearer}"));
        if let Some(etag) = etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let response = request.call().map_err(|e| transport_error(&url, e))?;
        read(&url, response)
    }
}

fn transport_error(url: &str, error: ureq::Error) -> Error {
    Error::Transport {
        url: url.to_string(),
        cause: error.to_string(),
    }
}

fn read(url: &str, mut response: ureq::http::Response<ureq::Body>) -> Result<Reply, Error> {
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &ureq::http::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let etag = header(ETAG);
    let retry_after = header(RETRY_AFTER).and_then(|v| retry_after(&v));
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| Error::Response {
            url: url.to_string(),
            cause: e.to_string(),
        })?;
    Ok(Reply {
        status,
        body,
        etag,
        retry_after,
    })
}

/// `Retry-After: 120` or `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`.
fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = (chrono::Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        let wait = retry_after(&later).unwrap();
        assert!(wait > Duration::from_secs(80) && wait <= Duration::from_secs(90));
        assert_eq!(retry_after("soon"), None);
    }
}
