//! `cairn migrate-store`: copies what a data directory holds (events,
//! persons, groups, person overrides) into ClickHouse, so that `cairn serve
//! --clickhouse-url …` answers insights over all of it from its first start.
//! The server must be stopped: it holds the database. What the journal
//! holds is loaded into DuckDB first, and ClickHouse records the copy as
//! loaded through the same journal record, so the server's ClickHouse
//! loader goes on from there.

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use cairn_store::clickhouse::{copy_from, ClickHouse};

use crate::config::ServeArgs;
use crate::storage::Storage;

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The data directory, the ClickHouse server or cluster, and any other
    /// option of `cairn serve`
    #[command(flatten)]
    serve: ServeArgs,
}

pub fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let config = args.serve.resolve()?;
    let clickhouse = config
        .clickhouse
        .clone()
        .context("migrate-store copies into ClickHouse: give --clickhouse-url")?;
    // Opening the writer loads what the journal holds into DuckDB; closing
    // it waits for that.
    let embedded = crate::config::Config {
        clickhouse: None,
        ..config.clone()
    };
    drop(Storage::open_ingesting(&embedded).context("opening the data directory")?);
    let duck = config.open_store()?;
    let nodes = clickhouse
        .nodes
        .iter()
        .map(|node| {
            ClickHouse::open(node.clone()).with_context(|| format!("ClickHouse at {}", node.url))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // A copy cut short records no load but leaves events: either refuses.
    let held = nodes[0]
        .execute("SELECT (SELECT count() FROM cairn_loads) + (SELECT count() FROM events)")?;
    anyhow::ensure!(
        held.trim() == "0",
        "ClickHouse at {} already holds events or data loaded by Cairn; migrate into an empty database (drop the tables of a copy cut short first)",
        clickhouse.nodes[0].url
    );
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:17} {bar:40} {human_pos}/{human_len} rows  {per_sec}  eta {eta}",
        )
        .expect("valid template"),
    );
    let mut table = String::new();
    let copied = copy_from(
        &duck,
        &nodes.iter().collect::<Vec<_>>(),
        &mut |name, rows, total| {
            if name != table {
                table = name.to_string();
                bar.reset();
                bar.set_message(table.clone());
                bar.set_length(total);
            }
            bar.set_position(rows);
        },
    )?;
    bar.finish_and_clear();
    println!(
        "copied into ClickHouse: {} events, {} persons, {} groups, {} person overrides",
        copied.events, copied.persons, copied.groups, copied.person_overrides
    );
    Ok(())
}
