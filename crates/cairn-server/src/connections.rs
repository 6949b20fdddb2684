//! One HTTP connection, from accept to close. HTTP/1 and HTTP/2 (h2c) are
//! both served; either is closed once it has been idle for the idle timeout:
//! no request of it being handled, and no byte of a response asked for.
//! hyper alone closes neither an idle HTTP/2 connection nor one that never
//! sends a byte, nor one whose client stops reading its response. With the
//! cap on open connections (in `serve`), a flood of idle connections cannot
//! hold file descriptors or memory for long.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt;

/// Requests one HTTP/2 connection may have open at once (the RFC asks for
/// at least 100; hyper's default is 200).
const MAX_STREAMS_PER_CONNECTION: u32 = 100;

/// The protocol settings of every connection. `timeout` bounds how long a
/// client may take to send request headers (HTTP/1), and how long an HTTP/2
/// client may leave a keep-alive ping unanswered before it is taken for gone
/// (pings go out after `timeout` without a frame from it), so a long request
/// whose client vanished is dropped.
pub fn protocol(timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(timeout)
        .keep_alive_timeout(timeout)
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION);
    builder
}

/// How long a connection may idle while the server is at its connection
/// cap and others wait: long enough for a client that has just connected to
/// send its request.
const IDLE_WHEN_FULL: Duration = Duration::from_secs(1);

/// What the accept loop tells every connection.
#[derive(Clone)]
pub struct Signals {
    /// Turns true when the server shuts down.
    pub closing: watch::Receiver<bool>,
    /// True while every connection slot is taken and new connections wait:
    /// idle connections then make room after [`IDLE_WHEN_FULL`].
    pub full: watch::Receiver<bool>,
}

/// Serves `stream` until the client closes it, it is idle too long (`idle`,
/// or [`IDLE_WHEN_FULL`] while the server is full), or the server shuts
/// down. The last two ask the connection to close gracefully (HTTP/1 after
/// the response under way, HTTP/2 with a GOAWAY); one still idle as long
/// again is dropped.
pub async fn serve<S>(
    protocol: Arc<auto::Builder<TokioExecutor>>,
    stream: TcpStream,
    peer: SocketAddr,
    app: S,
    idle: Duration,
    mut signals: Signals,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let service = Tracked {
        app,
        peer,
        activity: activity.clone(),
    };
    let mut connection = pin!(protocol.serve_connection(TokioIo::new(stream), service));
    let mut asked_to_close = false;
    let mut full_open = true;
    loop {
        let full = *signals.full.borrow();
        let allowed = if full { idle.min(IDLE_WHEN_FULL) } else { idle };
        // While a request is being handled, its own limits apply; look again later.
        let wake = activity
            .idle_until(allowed)
            .unwrap_or_else(|| Instant::now() + allowed);
        tokio::select! {
            ended = connection.as_mut() => return ended,
            changed = signals.full.changed(), if full_open => full_open = changed.is_ok(),
            _ = signals.closing.changed(), if !asked_to_close => {
                connection.as_mut().graceful_shutdown();
                asked_to_close = true;
            }
            () = tokio::time::sleep_until(wake) => {
                if activity.idle_until(allowed).is_none_or(|until| until > Instant::now()) {
                    continue;
                }
                if asked_to_close {
                    tracing::debug!("dropping a connection that stayed idle after it was asked to close");
                    return Ok(());
                }
                connection.as_mut().graceful_shutdown();
                asked_to_close = true;
                activity.touch();
            }
        }
    }
}

/// What one connection is doing: how many of its requests the server is
/// working on, and when it last made progress.
struct Activity {
    opened: Instant,
    /// Milliseconds after `opened`.
    last_progress: AtomicU64,
    working: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            last_progress: AtomicU64::new(0),
            working: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let now = self.opened.elapsed().as_millis() as u64;
        self.last_progress.fetch_max(now, Ordering::Relaxed);
    }

    /// Held while the server works on a request: idle time does not count.
    fn working(self: &Arc<Self>) -> Working {
        self.working.fetch_add(1, Ordering::SeqCst);
        self.touch();
        Working(self.clone())
    }

    /// When the connection will have been idle for `idle`; `None` while the
    /// server is working on one of its requests.
    fn idle_until(&self, idle: Duration) -> Option<Instant> {
        if self.working.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_progress.load(Ordering::Relaxed));
        Some(self.opened + last + idle)
    }
}

struct Working(Arc<Activity>);

impl Drop for Working {
    fn drop(&mut self) {
        // Progress first, so the watchdog never sees an idle connection
        // with a stale time.
        self.0.touch();
        self.0.working.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The app, counting the work it does on one connection.
#[derive(Clone)]
struct Tracked<S> {
    app: S,
    /// Given to handlers as `ConnectInfo`, for per-address limits.
    peer: SocketAddr,
    activity: Arc<Activity>,
}

impl<S> hyper::service::Service<hyper::Request<Incoming>> for Tracked<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = hyper::Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let working = self.activity.working();
        let app = self.app.clone();
        let (activity, peer) = (self.activity.clone(), self.peer);
        Box::pin(async move {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            let response = app.oneshot(request).await?;
            drop(working);
            Ok(response.map(|body| TrackedBody {
                body,
                activity,
                waiting_on_app: None,
            }))
        })
    }
}

/// A response body that counts as progress each time the client's side
/// takes a frame, and as work while the app is still producing one.
struct TrackedBody {
    body: Body,
    activity: Arc<Activity>,
    waiting_on_app: Option<Working>,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if polled.is_pending() {
            if this.waiting_on_app.is_none() {
                this.waiting_on_app = Some(this.activity.working());
            }
        } else {
            this.waiting_on_app = None;
            this.activity.touch();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        self.activity.touch();
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Handlers see the client's address; an idle connection is closed.
    #[tokio::test]
    async fn handlers_get_the_peer_address_and_idle_connections_close() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/",
            axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                peer.to_string()
            }),
        );
        let (_closing, closing) = watch::channel(false);
        let (_full, full) = watch::channel(false);
        let server = tokio::spawn(async move {
            let (stream, peer) = listener.accept().await.unwrap();
            let signals = Signals { closing, full };
            // Long enough that a loaded machine still parses the request
            // before the connection counts as idle.
            let idle = Duration::from_millis(1500);
            serve(Arc::new(protocol(idle)), stream, peer, app, idle, signals).await
        });
        let mut client = TcpStream::connect(address).await.unwrap();
        let request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        client.write_all(request.as_bytes()).await.unwrap();
        let started = Instant::now();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        let closed_after = started.elapsed();
        let me = client.local_addr().unwrap().to_string();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with(&me), "{answer} (client {me})");
        assert!(closed_after < Duration::from_secs(5), "{closed_after:?}");
        // The idle watchdog and hyper's header timeout race to close an idle
        // keep-alive connection; either is a clean end.
        if let Err(error) = server.await.unwrap() {
            assert!(error.to_string().contains("timeout"), "{error}");
        }
    }

    #[tokio::test]
    async fn idle_time_counts_only_while_no_request_is_being_worked_on() {
        let idle = Duration::from_secs(10);
        let activity = Arc::new(Activity::new());
        let opened = activity.opened;
        assert_eq!(activity.idle_until(idle), Some(opened + idle));

        let working = activity.working();
        let body_waiting = activity.working();
        assert_eq!(activity.idle_until(idle), None);
        drop(working);
        assert_eq!(activity.idle_until(idle), None);
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(body_waiting);
        let until = activity.idle_until(idle).unwrap();
        assert!(until >= opened + Duration::from_millis(20) + idle);
    }
}
