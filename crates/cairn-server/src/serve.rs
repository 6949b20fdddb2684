//! `cairn serve`: open the store, start the pipeline, serve HTTP until a
//! signal, then drain the pipeline.

use std::sync::Arc;

use anyhow::Context;
use axum::extract::Request;
use axum::ServiceExt;
use metrics_exporter_prometheus::PrometheusBuilder;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

use cairn_ingest::Pipeline;
use cairn_store::DuckStore;

use crate::bootstrap::{ensure_default_project, print_first_start};
use crate::config::Config;
use crate::state::AppState;

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let store = DuckStore::open(&config.data_dir, config.group_type_limit)
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    let first_start = ensure_default_project(&store, &config)?;
    let pipeline = Pipeline::start(store.writer()?, config.group_type_limit)?;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    let bound = listener.local_addr()?;
    if let Some(first) = &first_start {
        print_first_start(first, &config);
    }
    tracing::info!(address = %bound, data_dir = %config.data_dir.display(), "cairn is listening");

    let state = Arc::new(AppState::new(config, store, pipeline, metrics)?);
    let app = NormalizePathLayer::trim_trailing_slash().layer(crate::app::router(state.clone()));
    axum::serve(listener, ServiceExt::<Request>::into_make_service(app))
        .with_graceful_shutdown(shutdown_signal())
        .await?;

    tracing::info!("shutting down: finishing queued events");
    if let Ok(state) = Arc::try_unwrap(state) {
        tokio::task::spawn_blocking(move || state.pipeline.shutdown()).await?;
    }
    Ok(())
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
