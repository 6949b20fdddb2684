use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use cairn_server::config::ServeArgs;
use cairn_server::demo::DemoArgs;
use cairn_server::migrate::MigrateArgs;
use cairn_server::users::UsersArgs;

/// glibc's malloc serialises the runtime's worker threads on its arena locks
/// when one thread frees what another allocated (a request's buffers move
/// between them); mimalloc's per-thread heaps do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Fill a project with a realistic B2B data set (companies, users, a
    /// sign-up funnel, daily usage with churn), through real ingestion.
    Demo(DemoArgs),
    /// Manage web UI accounts.
    Users(UsersArgs),
    /// Copy the data directory's events, persons and groups into ClickHouse
    /// (given by --clickhouse-url), before serving with it.
    MigrateStore(MigrateArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => {
            let config = args.resolve()?;
            init_logs(&config.log);
            runtime.block_on(cairn_server::serve::serve(config))
        }
        Command::Demo(args) => {
            init_logs("warn");
            runtime.block_on(cairn_server::demo::demo(args))
        }
        Command::Users(args) => cairn_server::users::run(args),
        Command::MigrateStore(args) => {
            init_logs("warn");
            cairn_server::migrate::run(args)
        }
    }
}

fn init_logs(filter: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
}
