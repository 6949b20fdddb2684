//! `cairn serve`: open the store, start the pipeline, serve HTTP until a
//! signal, then drain the pipeline.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::Request;
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::sync::{watch, Semaphore};
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

use cairn_core::time::{Clock, SystemClock};

use crate::bootstrap::{ensure_default_project, print_first_start};
use crate::config::Config;
use crate::connections;
use crate::state::AppState;
use crate::storage::Storage;

/// How often, at most, the log says that every connection is in use.
const FULL_WARNING_EVERY: Duration = Duration::from_secs(60);

/// File descriptors kept for the store, the journal and the rest, besides
/// one per connection.
const FILES_BESIDES_CONNECTIONS: u64 = 256;

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let store = Storage::open_ingesting(&config)
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    let first_start = ensure_default_project(&*store.storage.catalog, &config)?;
    // The one choice of clock: ingestion and every handler read it.
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // Stops (after the pipeline) when `serve` returns.
    let _clustering = store.start_clustering(config.sort_after_events)?;
    let (storage, entities, pipeline) = store.start_pipeline(clock.clone())?;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    let bound = listener.local_addr()?;
    if let Some(first) = &first_start {
        print_first_start(first, &config);
    }
    tracing::info!(address = %bound, data_dir = %config.data_dir.display(), "cairn is listening");

    let limits = ConnectionLimits {
        max_connections: config.max_connections,
        timeout: config.request_timeout,
    };
    raise_open_file_limit(limits.max_connections);
    let state = Arc::new(AppState::new(
        config, storage, entities, pipeline, metrics, clock,
    )?);
    let app = NormalizePathLayer::trim_trailing_slash().layer(crate::app::router(state.clone()));
    serve_http(listener, app, limits, shutdown_signal()).await;

    tracing::info!("shutting down: finishing queued events");
    if let Ok(state) = Arc::try_unwrap(state) {
        tokio::task::spawn_blocking(move || state.pipeline.shutdown()).await?;
    }
    Ok(())
}

/// How many connections are served at once, and how long one may stall.
struct ConnectionLimits {
    max_connections: usize,
    /// For request headers and bodies, and for an idle connection.
    timeout: Duration,
}

/// Serves HTTP/1 and HTTP/2 until `shutdown`, then lets open requests
/// finish. Unlike `axum::serve`, a connection is closed when it stalls or
/// idles for `limits.timeout` (see `connections`), and at most
/// `limits.max_connections` are open at once: past that, new connections
/// wait (in the listen backlog) until one closes, and idle ones are closed
/// sooner to make room, so a flood of connections can neither run the
/// process out of file descriptors or memory nor keep clients out for long.
async fn serve_http<S>(
    listener: tokio::net::TcpListener,
    app: S,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) where
    S: tower::Service<Request, Response = axum::response::Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let protocol = Arc::new(connections::protocol(limits.timeout));
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let (closing, closing_watch) = watch::channel(false);
    let (full, full_watch) = watch::channel(false);
    let signals = connections::Signals {
        closing: closing_watch,
        full: full_watch,
    };
    let mut last_full_warning: Option<Instant> = None;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: wait instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let permit = match open.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // This one waits (and the listen backlog behind it) while
                // idle connections make room.
                full.send_replace(true);
                if last_full_warning.is_none_or(|at| at.elapsed() > FULL_WARNING_EVERY) {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "every connection is in use: new ones wait until one closes (raise --max-connections if these are real clients)"
                    );
                    last_full_warning = Some(Instant::now());
                }
                let permit = tokio::select! {
                    permit = open.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                    () = &mut shutdown => break,
                };
                full.send_replace(false);
                permit
            }
        };
        let _ = stream.set_nodelay(true);
        let in_use = limits.max_connections - open.available_permits();
        metrics::gauge!("cairn_http_connections").set(in_use as f64);
        let connection = connections::serve(
            protocol.clone(),
            stream,
            peer,
            app.clone(),
            limits.timeout,
            signals.clone(),
        );
        let (open, max) = (open.clone(), limits.max_connections);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(permit);
            metrics::gauge!("cairn_http_connections").set((max - open.available_permits()) as f64);
        });
    }
    // Every open connection finishes its requests and closes; then each
    // has given its permit back.
    closing.send_replace(true);
    let all = u32::try_from(limits.max_connections).expect("max_connections is bounded");
    let _ = open.acquire_many(all).await;
    drop(full);
}

/// The soft limit on open files is often 1024, less than the connections
/// allowed: raise it toward the hard limit (as Go and nginx do), and say so
/// when even that leaves too little room.
fn raise_open_file_limit(max_connections: usize) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let needed = max_connections as u64 + FILES_BESIDES_CONNECTIONS;
    let limit = getrlimit(Resource::Nofile);
    let (Some(current), hard) = (limit.current, limit.maximum) else {
        return; // unlimited
    };
    if current >= needed {
        return;
    }
    let raised = hard.map_or(needed, |hard| needed.min(hard));
    let wanted = Rlimit {
        current: Some(raised),
        maximum: hard,
    };
    let now = match setrlimit(Resource::Nofile, wanted) {
        Ok(()) => raised,
        Err(_) => current,
    };
    if now < needed {
        tracing::warn!(
            open_file_limit = now,
            max_connections,
            "the open-file limit leaves room for fewer connections than --max-connections: raise `ulimit -n` or lower --max-connections"
        );
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
}
