//! Where requests to the web UI may come from. Its session cookie opens
//! every project, so:
//! - the `Host` it is reached under must be one of this server's names. A
//!   web page whose domain name an attacker re-points at 127.0.0.1 (DNS
//!   rebinding) reaches the server as the attacker's host name, and is refused;
//! - a form post must come from the UI's own pages: its `Origin` (or, from
//!   browsers that send none, its `Referer`) must be this server. `Origin:
//!   null` (a sandboxed frame, a file) is refused.
//!
//! Capture, `/flags` and the private API authenticate with keys and answer
//! any host and origin, as PostHog's do.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{HOST, ORIGIN, REFERER};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use url::Url;

use crate::state::AppState;

/// The host names (and ports) the web UI answers to.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    public_url: Option<Url>,
    bind: SocketAddr,
}

impl AllowedHosts {
    pub fn new(bind: SocketAddr, public_url: Option<Url>) -> Self {
        Self { public_url, bind }
    }

    /// The public URL's host, the bound address, and localhost / 127.0.0.1
    /// / [::1] on the bound port. Bound to every interface (0.0.0.0), any
    /// IP address too: an IP-literal host cannot be rebound, only a domain
    /// name can.
    pub fn allows(&self, host: &str) -> bool {
        let Ok(authority) = host.parse::<Authority>() else {
            return false;
        };
        let name = authority.host().trim_end_matches('.').to_ascii_lowercase();
        if self
            .public_url
            .as_ref()
            .and_then(Url::host_str)
            .is_some_and(|public| public.eq_ignore_ascii_case(&name))
        {
            return true;
        }
        let bound_port = self.bind.port();
        let on_bound_port = authority
            .port_u16()
            .is_none_or(|port| bound_port == 0 || port == bound_port);
        let ip = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok()
            .map(|ip| ip.to_canonical());
        match ip {
            Some(ip) if ip == self.bind.ip() => true,
            Some(_) if self.bind.ip().is_unspecified() => true,
            Some(ip) => ip.is_loopback() && on_bound_port,
            None => name == "localhost" && on_bound_port,
        }
    }

    /// Whether an `Origin` (or `Referer`) URL is this server as the request
    /// names it (`host`), or its public URL.
    fn same_origin(&self, origin: &str, host: &str) -> bool {
        let Ok(url) = Url::parse(origin) else {
            return false;
        };
        if !matches!(url.scheme(), "http" | "https") {
            return false;
        }
        if self
            .public_url
            .as_ref()
            .is_some_and(|public| public.origin() == url.origin())
        {
            return true;
        }
        let Some(name) = url.host_str() else {
            return false;
        };
        let authority = match url.port() {
            Some(port) => format!("{name}:{port}"),
            None => name.to_string(),
        };
        authority.eq_ignore_ascii_case(host)
    }
}

/// The host a request names: `Host`, or the authority of an HTTP/2 request.
fn request_host(request: &Request) -> Option<String> {
    request
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()))
}

/// Middleware for the UI's routes: an unknown `Host` gets 421.
pub async fn known_host(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request_host(&request).unwrap_or_default();
    if !state.hosts.allows(&host) {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "This Cairn server does not answer its web UI as {host:?}. If that is the \
                 address people open it at, start it with --public-url (CAIRN_PUBLIC_URL), \
                 e.g. --public-url https://{host}"
            ),
        )
            .into_response();
    }
    next.run(request).await
}

/// Why a form post is refused, if it is.
fn foreign_post(hosts: &AllowedHosts, headers: &HeaderMap, host: &str) -> Option<&'static str> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    match (header(ORIGIN), header(REFERER)) {
        (Some("null"), _) => Some(
            "Cairn refuses form posts from an opaque origin (Origin: null), such as a \
             sandboxed frame or a local file: post from Cairn's own pages",
        ),
        (Some(origin), _) if !hosts.same_origin(origin, host) => {
            Some("a form from another site cannot post to Cairn")
        }
        (Some(_), _) => None,
        (None, Some(referer)) if hosts.same_origin(referer, host) => None,
        (None, _) => Some(
            "a form post to Cairn must come from its own pages: the browser sent neither an \
             Origin nor a Referer of this server",
        ),
    }
}

/// Middleware for the UI's routes: posts only from the UI's own pages.
pub async fn same_origin_posts(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() == Method::POST {
        let host = request_host(&request).unwrap_or_default();
        if let Some(problem) = foreign_post(&state.hosts, request.headers(), &host) {
            return (StatusCode::FORBIDDEN, problem).into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(bind: &str, public: Option<&str>) -> AllowedHosts {
        AllowedHosts::new(bind.parse().unwrap(), public.map(|u| u.parse().unwrap()))
    }

    #[test]
    fn the_ui_answers_only_to_its_own_names() {
        let local = hosts("127.0.0.1:8000", None);
        for host in [
            "127.0.0.1:8000",
            "localhost:8000",
            "LOCALHOST:8000",
            "[::1]:8000",
        ] {
            assert!(local.allows(host), "{host}");
        }
        for host in [
            "evil.example:8000",
            "localhost:9000",
            "10.0.0.5:8000",
            "",
            "a b",
        ] {
            assert!(!local.allows(host), "{host}");
        }

        let public = hosts("127.0.0.1:8000", Some("https://cairn.example.com"));
        assert!(public.allows("cairn.example.com"));
        assert!(public.allows("Cairn.Example.com."));
        assert!(!public.allows("cairn.example.com.evil.io"));

        let everywhere = hosts("0.0.0.0:8000", None);
        assert!(everywhere.allows("192.168.1.20:8000"));
        assert!(everywhere.allows("[fe80::1]:8000"));
        assert!(!everywhere.allows("rebound.evil.io:8000"));
    }

    #[test]
    fn posts_need_an_origin_or_referer_of_this_server() {
        let hosts = hosts("127.0.0.1:8000", Some("https://cairn.example.com"));
        let post = |pairs: &[(&'static str, &str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(*name, value.parse().unwrap());
            }
            foreign_post(&hosts, &headers, "127.0.0.1:8000")
        };
        assert!(post(&[("origin", "http://127.0.0.1:8000")]).is_none());
        assert!(post(&[("origin", "https://cairn.example.com")]).is_none());
        assert!(post(&[("origin", "null")]).is_some());
        assert!(post(&[("origin", "http://evil.io")]).is_some());
        assert!(post(&[("origin", "http://127.0.0.1:9000")]).is_some());
        assert!(post(&[]).is_some());
        assert!(post(&[("referer", "http://127.0.0.1:8000/setup")]).is_none());
        assert!(post(&[("referer", "http://evil.io/127.0.0.1:8000")]).is_some());
        assert!(post(&[("origin", "null"), ("referer", "http://127.0.0.1:8000/")]).is_some());
    }
}
