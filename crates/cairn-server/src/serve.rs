//! `cairn serve`: open the store, start the pipeline, serve HTTP until a
//! signal, then drain the pipeline.

use std::sync::Arc;

use anyhow::Context;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use metrics_exporter_prometheus::PrometheusBuilder;
use tower::Layer;
use tower::ServiceExt;
use tower_http::normalize_path::NormalizePathLayer;

use cairn_ingest::Pipeline;

use crate::bootstrap::{ensure_default_project, print_first_start};
use crate::config::Config;
use crate::state::AppState;

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let store = config
        .open_store()
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    let first_start = ensure_default_project(&store, &config)?;
    let pipeline = Pipeline::start(store.journaled_writer()?, config.group_type_limit)?;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    let bound = listener.local_addr()?;
    if let Some(first) = &first_start {
        print_first_start(first, &config);
    }
    tracing::info!(address = %bound, data_dir = %config.data_dir.display(), "cairn is listening");

    let header_timeout = config.request_timeout;
    let state = Arc::new(AppState::new(config, store, pipeline, metrics)?);
    let app = NormalizePathLayer::trim_trailing_slash().layer(crate::app::router(state.clone()));
    serve_http(listener, app, header_timeout, shutdown_signal()).await;

    tracing::info!("shutting down: finishing queued events");
    if let Ok(state) = Arc::try_unwrap(state) {
        tokio::task::spawn_blocking(move || state.pipeline.shutdown()).await?;
    }
    Ok(())
}

/// Serves HTTP/1 and HTTP/2 until `shutdown`, then lets open requests
/// finish. Unlike `axum::serve`, a connection whose request headers do not
/// arrive within `header_timeout` is closed, so clients that stall cannot
/// pile up connections.
async fn serve_http<S>(
    listener: tokio::net::TcpListener,
    app: S,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) where
    S: tower::Service<Request, Response = axum::response::Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let graceful = GracefulShutdown::new();
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
        let _ = stream.set_nodelay(true);
        // The peer's address rides along for per-address limits (sign-in).
        let service = TowerToHyperService::new(app.clone().map_request(
            move |request: hyper::Request<Incoming>| {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        ));
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout);
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
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
