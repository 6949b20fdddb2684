use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use cairn_server::config::ServeArgs;

/// Cairn: product analytics with group analytics, speaking PostHog's protocol.
#[derive(Parser)]
#[command(name = "cairn", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: capture, persons, groups and the private API.
    Serve(ServeArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = args.resolve()?;
            tracing_subscriber::fmt()
                .with_env_filter(
                    EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info")),
                )
                .init();
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(cairn_server::serve::serve(config))
        }
    }
}
