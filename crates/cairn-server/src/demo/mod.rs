//! `cairn demo`: fills a project with the [`dataset`] through the real
//! ingestion path (the capture normaliser, then the pipeline's durable
//! commits), with a progress bar.

pub mod dataset;

use std::time::Instant;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinSet;

use cairn_core::time::{Clock, SystemClock};
use cairn_core::ProjectId;
use cairn_ingest::{normalize_batch, CaptureQuery, DecodedPayload};

use crate::bootstrap::{ensure_default_project, print_first_start};
use crate::config::ServeArgs;
use crate::storage::Storage;
use dataset::Dataset;

/// Events per submitted batch, and batches in flight (group commit joins them).
const BATCH: usize = 1_000;
const IN_FLIGHT: usize = 4;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many events to generate
    #[arg(long, default_value_t = 200_000)]
    pub events: u64,
    /// Days of history, ending now
    #[arg(long, default_value_t = 90)]
    pub days: i64,
    /// Seed of the generator (the same seed gives the same companies)
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Project to fill [default: 1, the default project]
    #[arg(long)]
    pub project: Option<i64>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

pub async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let config = args.serve.clone().resolve()?;
    let store = Storage::open_ingesting(&config).with_context(|| {
        format!(
            "cannot open the store in {} (is `cairn serve` running on it? stop it first)",
            config.data_dir.display()
        )
    })?;
    let catalog = &*store.storage.catalog;
    if let Some(first) = ensure_default_project(catalog, &config)? {
        print_first_start(&first, &config);
    }
    let project = ProjectId(args.project.unwrap_or(1));
    if catalog.get_project(project)?.is_none() {
        anyhow::bail!("project {project} does not exist");
    }
    let clock = std::sync::Arc::new(SystemClock);
    let (_, _, pipeline) = store.start_pipeline(clock.clone())?;
    let pipeline = std::sync::Arc::new(pipeline);

    let bar = ProgressBar::new(args.events);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {human_pos}/{human_len} events  {per_sec}  eta {eta}",
        )
        .expect("valid template"),
    );
    let started = Instant::now();
    let mut dataset = Dataset::new(args.seed, clock.now(), args.days);
    let mut remaining = args.events;
    let mut in_flight = JoinSet::new();
    while remaining > 0 {
        let take = remaining.min(BATCH as u64);
        remaining -= take;
        let payload = DecodedPayload {
            events: dataset.by_ref().take(take as usize).collect(),
            ..Default::default()
        };
        let events = normalize_batch(payload, &CaptureQuery::default(), clock.now())?;
        let pipeline = pipeline.clone();
        in_flight.spawn(async move { pipeline.submit(project, events).await.map(|_| take) });
        if in_flight.len() >= IN_FLIGHT {
            if let Some(done) = in_flight.join_next().await {
                bar.inc(done??);
            }
        }
    }
    while let Some(done) = in_flight.join_next().await {
        bar.inc(done??);
    }
    bar.finish();
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "Stored {} events for project {project} in {elapsed:.1} s ({:.0} events/s). Start the server with `cairn serve --data-dir {}`.",
        args.events,
        args.events as f64 / elapsed,
        config.data_dir.display()
    );
    if let Ok(pipeline) = std::sync::Arc::try_unwrap(pipeline) {
        tokio::task::spawn_blocking(move || pipeline.shutdown()).await?;
    }
    Ok(())
}
