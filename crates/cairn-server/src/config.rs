//! Settings of `cairn serve`: command-line flag, else environment variable,
//! else the TOML config file, else the default.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Deserialize;

pub const DEFAULT_BIND: &str = "127.0.0.1:8000";
pub const DEFAULT_DATA_DIR: &str = "./cairn-data";
/// PostHog's limit; raise it with `--group-type-limit`.
pub const DEFAULT_GROUP_TYPE_LIMIT: usize = 5;
/// The events table has one column per group type, so the limit stays modest.
pub const MAX_GROUP_TYPE_LIMIT: usize = 32;
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;
/// DuckDB's own default is 80% of RAM, which it fills with cached blocks
/// over time; a bound keeps the server's memory predictable. Queries that
/// need more spill to the data directory.
pub const DEFAULT_MEMORY_LIMIT: &str = "1GB";
pub const DEFAULT_ENTITY_CACHE_SIZE: &str = "256MiB";
/// A person mistyping a password never gets near this; a password guesser
/// (or a flood of first-account posts) does at once.
pub const DEFAULT_SIGN_IN_LIMIT: u32 = 10;
/// How long one insight query may run before it is stopped (504).
pub const DEFAULT_QUERY_TIMEOUT_SECS: u64 = 60;
/// Open connections served at once; past it, new ones wait to be accepted.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Tokio's semaphore counts permits in fewer bits than a `usize`.
pub const MAX_CONNECTIONS: usize = 1 << 20;
/// Journal on disk, while ClickHouse lags, past which capture answers 503.
pub const DEFAULT_CLICKHOUSE_BACKLOG: &str = "4GiB";
/// Events appended unsorted before the background pass sorts them: about
/// eight of DuckDB's row groups, so each event name gets row groups of its own.
pub const DEFAULT_SORT_AFTER_EVENTS: u64 = 1_000_000;

#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8000]
    #[arg(long, env = "CAIRN_BIND")]
    pub bind: Option<SocketAddr>,
    /// Directory holding the database [default: ./cairn-data]
    #[arg(long, env = "CAIRN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML file with any of: bind, data_dir, group_type_limit, request_timeout, memory_limit,
    /// entity_cache_size, log, public_url, public_metrics, sign_in_limit, query_timeout,
    /// max_connections, sort_after_events, clickhouse_url, clickhouse_user, clickhouse_password,
    /// clickhouse_database, clickhouse_cluster, clickhouse_backlog
    #[arg(long, env = "CAIRN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Group types allowed per project [default: 5, at most 32]
    #[arg(long, env = "CAIRN_GROUP_TYPE_LIMIT")]
    pub group_type_limit: Option<usize>,
    /// Seconds a client may take to send its request headers or body (a
    /// stalled client gets 408 and is disconnected), and that a connection
    /// may stay idle before it is closed [default: 30]
    #[arg(long, env = "CAIRN_REQUEST_TIMEOUT")]
    pub request_timeout: Option<u64>,
    /// Memory the database may use for caching and queries, e.g. `512MB`
    /// or `4GB` [default: 1GB]
    #[arg(long, env = "CAIRN_MEMORY_LIMIT")]
    pub memory_limit: Option<String>,
    /// Memory for persons and groups kept decoded and for the blocks of
    /// their store, shared by ingestion and `/flags`, e.g. `256MB`
    /// [default: 256MiB]
    #[arg(long, env = "CAIRN_ENTITY_CACHE_SIZE")]
    pub entity_cache_size: Option<String>,
    /// Log filter, e.g. `info` or `cairn=debug` [default: info]
    #[arg(long, env = "CAIRN_LOG")]
    pub log: Option<String>,
    /// Project API key (phc_…) given to the default project at first start
    #[arg(long, env = "CAIRN_PROJECT_API_KEY", hide_env_values = true)]
    pub project_api_key: Option<String>,
    /// Personal API key (phx_…) created at first start
    #[arg(long, env = "CAIRN_PERSONAL_API_KEY", hide_env_values = true)]
    pub personal_api_key: Option<String>,
    /// The address people open the web UI at, e.g. `https://cairn.example.com`
    /// (behind a proxy); the UI answers only to this host name, the bind
    /// address and localhost, which defeats DNS rebinding
    #[arg(long, env = "CAIRN_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Serve `/metrics` without a personal API key (for a scraper on a
    /// trusted network)
    #[arg(long, env = "CAIRN_PUBLIC_METRICS", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::SetTrue)]
    pub public_metrics: bool,
    /// Sign-in and first-account attempts allowed per client address per
    /// minute; more get 429 [default: 10]
    #[arg(long, env = "CAIRN_SIGN_IN_LIMIT")]
    pub sign_in_limit: Option<u32>,
    /// Seconds one insight query (API `query/` or the UI) may run; a longer
    /// one is stopped and answered 504 [default: 60]
    #[arg(long, env = "CAIRN_QUERY_TIMEOUT")]
    pub query_timeout: Option<u64>,
    /// Connections served at once; past it, new connections wait until one
    /// closes [default: 1024]
    #[arg(long, env = "CAIRN_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Events appended since the last sort after which the embedded store
    /// sorts them by name and time in the background, so that insights read
    /// only the events they ask for (0: never) [default: 1000000]
    #[arg(long, env = "CAIRN_SORT_AFTER_EVENTS")]
    pub sort_after_events: Option<u64>,
    /// Run insights on ClickHouse: its HTTP URL, e.g. `http://host:8123`,
    /// or on a cluster every node's, comma-separated (events go in through
    /// the first; persons and groups are copied to each) [default: none,
    /// insights run on the embedded DuckDB]
    #[arg(long, env = "CAIRN_CLICKHOUSE_URL")]
    pub clickhouse_url: Option<String>,
    /// ClickHouse user [default: default]
    #[arg(long, env = "CAIRN_CLICKHOUSE_USER")]
    pub clickhouse_user: Option<String>,
    /// ClickHouse password [default: empty]
    #[arg(long, env = "CAIRN_CLICKHOUSE_PASSWORD", hide_env_values = true)]
    pub clickhouse_password: Option<String>,
    /// ClickHouse database [default: default]
    #[arg(long, env = "CAIRN_CLICKHOUSE_DATABASE")]
    pub clickhouse_database: Option<String>,
    /// The cluster (from the servers' `remote_servers`) whose shards share
    /// the events through a `Distributed` table [default: none]
    #[arg(long, env = "CAIRN_CLICKHOUSE_CLUSTER")]
    pub clickhouse_cluster: Option<String>,
    /// Journal kept on disk while ClickHouse is down or behind, past which
    /// capture answers 503 until it catches up, e.g. `10GB` [default: 4GiB]
    #[arg(long, env = "CAIRN_CLICKHOUSE_BACKLOG")]
    pub clickhouse_backlog: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    group_type_limit: Option<usize>,
    request_timeout: Option<u64>,
    memory_limit: Option<String>,
    entity_cache_size: Option<String>,
    log: Option<String>,
    public_url: Option<String>,
    public_metrics: Option<bool>,
    sign_in_limit: Option<u32>,
    query_timeout: Option<u64>,
    max_connections: Option<usize>,
    sort_after_events: Option<u64>,
    clickhouse_url: Option<String>,
    clickhouse_user: Option<String>,
    clickhouse_password: Option<String>,
    clickhouse_database: Option<String>,
    clickhouse_cluster: Option<String>,
    clickhouse_backlog: Option<String>,
}

/// The settings in force.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub group_type_limit: usize,
    /// How long a request body may take to arrive.
    pub request_timeout: Duration,
    /// DuckDB's `memory_limit`, checked to be a size.
    pub memory_limit: String,
    /// Bytes of the entity state's caches.
    pub entity_cache_bytes: u64,
    pub log: String,
    pub project_api_key: Option<String>,
    pub personal_api_key: Option<String>,
    /// Where people open the web UI, if set: its host is the UI's name.
    pub public_url: Option<url::Url>,
    /// `/metrics` without a key.
    pub public_metrics: bool,
    /// Sign-in attempts per client address per minute.
    pub sign_in_limit: NonZeroU32,
    /// How long one insight query may run.
    pub query_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Unsorted events that start a background sort (0: never).
    pub sort_after_events: u64,
    /// Where insights run, if not on DuckDB.
    pub clickhouse: Option<ClickHouseSettings>,
}

/// ClickHouse as the insights engine.
#[derive(Debug, Clone)]
pub struct ClickHouseSettings {
    /// One server, or every node of the cluster (events go in through the first).
    pub nodes: Vec<cairn_store::clickhouse::ClickHouseConfig>,
    /// Journal bytes on disk past which capture is refused while it lags.
    pub backlog_bytes: u64,
}

impl Config {
    /// The store in the data directory, with the configured memory bound.
    pub fn open_store(&self) -> cairn_store::Result<cairn_store::DuckStore> {
        let store = cairn_store::DuckStore::open(&self.data_dir, self.group_type_limit)?;
        store.set_memory_limit(&self.memory_limit)?;
        // Last: no setting can change after it.
        store.lock_down()?;
        Ok(store)
    }
}

impl ServeArgs {
    pub fn resolve(mut self) -> anyhow::Result<Config> {
        let mut file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let clickhouse = self.clickhouse_settings(&mut file)?;
        let group_type_limit = self
            .group_type_limit
            .or(file.group_type_limit)
            .unwrap_or(DEFAULT_GROUP_TYPE_LIMIT);
        let request_timeout = self
            .request_timeout
            .or(file.request_timeout)
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT_SECS);
        if request_timeout == 0 {
            anyhow::bail!("request_timeout must be at least 1 second");
        }
        if !(1..=MAX_GROUP_TYPE_LIMIT).contains(&group_type_limit) {
            anyhow::bail!("group_type_limit must be between 1 and {MAX_GROUP_TYPE_LIMIT}, got {group_type_limit}");
        }
        let memory_limit = self
            .memory_limit
            .or(file.memory_limit)
            .unwrap_or_else(|| DEFAULT_MEMORY_LIMIT.into());
        parse_size(&memory_limit).context("memory_limit")?;
        let entity_cache_size = self
            .entity_cache_size
            .or(file.entity_cache_size)
            .unwrap_or_else(|| DEFAULT_ENTITY_CACHE_SIZE.into());
        let entity_cache_bytes = parse_size(&entity_cache_size).context("entity_cache_size")?;
        anyhow::ensure!(
            entity_cache_bytes >= MIN_ENTITY_CACHE_BYTES,
            "entity_cache_size must be at least 4MiB, got {entity_cache_size:?}"
        );
        let public_url = self
            .public_url
            .or(file.public_url)
            .map(|url| parse_public_url(&url))
            .transpose()
            .context("public_url")?;
        let sign_in_limit = self
            .sign_in_limit
            .or(file.sign_in_limit)
            .unwrap_or(DEFAULT_SIGN_IN_LIMIT);
        let sign_in_limit = NonZeroU32::new(sign_in_limit)
            .context("sign_in_limit must be at least 1 attempt per minute")?;
        let query_timeout = self
            .query_timeout
            .or(file.query_timeout)
            .unwrap_or(DEFAULT_QUERY_TIMEOUT_SECS);
        if query_timeout == 0 {
            anyhow::bail!("query_timeout must be at least 1 second");
        }
        let max_connections = self
            .max_connections
            .or(file.max_connections)
            .unwrap_or(DEFAULT_MAX_CONNECTIONS);
        if !(1..=MAX_CONNECTIONS).contains(&max_connections) {
            anyhow::bail!(
                "max_connections must be between 1 and {MAX_CONNECTIONS}, got {max_connections}"
            );
        }
        Ok(Config {
            bind: self
                .bind
                .or(file.bind)
                .unwrap_or_else(|| DEFAULT_BIND.parse().expect("valid default")),
            data_dir: self
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
            group_type_limit,
            request_timeout: Duration::from_secs(request_timeout),
            memory_limit,
            entity_cache_bytes,
            log: self.log.or(file.log).unwrap_or_else(|| "info".into()),
            project_api_key: self.project_api_key,
            personal_api_key: self.personal_api_key,
            public_url,
            public_metrics: self.public_metrics || file.public_metrics.unwrap_or(false),
            sign_in_limit,
            query_timeout: Duration::from_secs(query_timeout),
            max_connections,
            sort_after_events: self
                .sort_after_events
                .or(file.sort_after_events)
                .unwrap_or(DEFAULT_SORT_AFTER_EVENTS),
            clickhouse,
        })
    }

    /// The ClickHouse options, given a URL; none of them without one.
    fn clickhouse_settings(
        &mut self,
        file: &mut FileConfig,
    ) -> anyhow::Result<Option<ClickHouseSettings>> {
        let url = self.clickhouse_url.take().or(file.clickhouse_url.take());
        let user = self.clickhouse_user.take().or(file.clickhouse_user.take());
        let password = self
            .clickhouse_password
            .take()
            .or(file.clickhouse_password.take());
        let database = self
            .clickhouse_database
            .take()
            .or(file.clickhouse_database.take());
        let cluster = self
            .clickhouse_cluster
            .take()
            .or(file.clickhouse_cluster.take());
        let backlog = self
            .clickhouse_backlog
            .take()
            .or(file.clickhouse_backlog.take());
        let Some(url) = url else {
            anyhow::ensure!(
                user.is_none()
                    && password.is_none()
                    && database.is_none()
                    && cluster.is_none()
                    && backlog.is_none(),
                "the clickhouse_* options need clickhouse_url"
            );
            return Ok(None);
        };
        let mut nodes = Vec::new();
        for node in url.split(',').map(str::trim) {
            let parsed = url::Url::parse(node).with_context(|| {
                format!("clickhouse_url: expected http://host:8123, got {node:?}")
            })?;
            anyhow::ensure!(
                matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some(),
                "clickhouse_url: expected an http or https URL such as http://host:8123, got {node:?}"
            );
            let mut config = cairn_store::clickhouse::ClickHouseConfig::new(node);
            if let Some(user) = &user {
                config.user = user.clone();
            }
            if let Some(password) = &password {
                config.password = password.clone();
            }
            if let Some(database) = &database {
                anyhow::ensure!(
                    !database.is_empty() && database.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "clickhouse_database: expected letters, digits and underscores, got {database:?}"
                );
                config.database = database.clone();
            }
            if let Some(cluster) = &cluster {
                anyhow::ensure!(
                    !cluster.is_empty() && cluster.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)),
                    "clickhouse_cluster: expected a cluster name from remote_servers, got {cluster:?}"
                );
            }
            config.cluster = cluster.clone();
            nodes.push(config);
        }
        anyhow::ensure!(
            cluster.is_some() || nodes.len() == 1,
            "clickhouse_url: several servers need clickhouse_cluster, the cluster they form"
        );
        let backlog = backlog.unwrap_or_else(|| DEFAULT_CLICKHOUSE_BACKLOG.into());
        let backlog_bytes = parse_size(&backlog).context("clickhouse_backlog")?;
        Ok(Some(ClickHouseSettings {
            nodes,
            backlog_bytes,
        }))
    }
}

/// An http(s) URL with a host name, such as `https://cairn.example.com`.
fn parse_public_url(text: &str) -> anyhow::Result<url::Url> {
    let url = url::Url::parse(text).with_context(|| {
        format!("expected a URL such as https://cairn.example.com, got {text:?}")
    })?;
    anyhow::ensure!(
        matches!(url.scheme(), "http" | "https") && url.host_str().is_some(),
        "expected an http or https URL with a host, such as https://cairn.example.com, got {text:?}"
    );
    Ok(url)
}

/// The entity cache's least size: the store's block cache needs some room.
const MIN_ENTITY_CACHE_BYTES: u64 = 4 << 20;

/// A size as DuckDB takes it: a number and a unit, e.g. `512MB` (10^6
/// bytes a MB) or `1.5GiB` (2^30 a GiB); in bytes.
fn parse_size(size: &str) -> anyhow::Result<u64> {
    let number_end = size
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(size.len());
    let (number, unit) = size.split_at(number_end);
    let units = [
        ("KB", 1e3),
        ("MB", 1e6),
        ("GB", 1e9),
        ("TB", 1e12),
        ("KiB", 1024f64),
        ("MiB", 1024f64 * 1024.0),
        ("GiB", 1024f64 * 1024.0 * 1024.0),
        ("TiB", 1024f64 * 1024.0 * 1024.0 * 1024.0),
    ];
    let scale = units
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(unit.trim()))
        .map(|(_, scale)| *scale);
    match (number.parse::<f64>(), scale) {
        (Ok(n), Some(scale)) if n > 0.0 && n * scale < u64::MAX as f64 => Ok((n * scale) as u64),
        _ => anyhow::bail!("expected a size such as 512MB or 4GB, got {size:?}"),
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_beats_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.toml");
        std::fs::write(&path, "bind = \"127.0.0.1:9000\"\ngroup_type_limit = 8\n").unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            group_type_limit: Some(6),
            ..Default::default()
        };
        let config = args.resolve().unwrap();
        assert_eq!(config.bind.port(), 9000);
        assert_eq!(config.group_type_limit, 6);
        assert_eq!(config.data_dir, PathBuf::from(DEFAULT_DATA_DIR));

        std::fs::write(&path, "bogus = 1\n").unwrap();
        let args = ServeArgs {
            config: Some(path),
            ..Default::default()
        };
        assert!(args.resolve().is_err());
    }

    #[test]
    fn query_timeout_from_flag_or_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.toml");
        std::fs::write(&path, "query_timeout = 5\n").unwrap();
        let from_file = ServeArgs {
            config: Some(path),
            ..Default::default()
        };
        assert_eq!(
            from_file.resolve().unwrap().query_timeout,
            Duration::from_secs(5)
        );
        let default = ServeArgs::default().resolve().unwrap();
        assert_eq!(default.query_timeout, Duration::from_secs(60));
        let zero = ServeArgs {
            query_timeout: Some(0),
            ..Default::default()
        };
        assert!(format!("{:#}", zero.resolve().unwrap_err()).contains("query_timeout"));
    }

    #[test]
    fn the_served_store_reads_no_files_through_sql() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret.csv");
        std::fs::write(&secret, "password\nhunter2\n").unwrap();
        let config = ServeArgs {
            data_dir: Some(dir.path().join("data")),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        let store = config.open_store().unwrap();
        let read = format!("SELECT * FROM read_csv('{}')", secret.display());
        let error = store.conn().unwrap().execute_batch(&read).unwrap_err();
        assert!(
            error.to_string().contains("disabled by configuration"),
            "{error}"
        );
    }

    #[test]
    fn memory_limit_must_be_a_size() {
        let limit = |value: &str| {
            ServeArgs {
                memory_limit: Some(value.into()),
                ..Default::default()
            }
            .resolve()
        };
        assert_eq!(limit("512MB").unwrap().memory_limit, "512MB");
        assert!(limit("1.5 GiB").is_ok());
        for bad in ["", "512", "lots", "1GB'; DROP TABLE events; --", "0GB"] {
            let error = format!("{:#}", limit(bad).unwrap_err());
            assert!(error.contains("memory_limit"), "{bad}: {error}");
        }
    }

    #[test]
    fn entity_cache_size_is_a_size_of_at_least_4mib() {
        let cache = |value: Option<&str>| {
            ServeArgs {
                entity_cache_size: value.map(String::from),
                ..Default::default()
            }
            .resolve()
        };
        assert_eq!(cache(None).unwrap().entity_cache_bytes, 256 << 20);
        assert_eq!(
            cache(Some("1GB")).unwrap().entity_cache_bytes,
            1_000_000_000
        );
        assert_eq!(cache(Some("64MiB")).unwrap().entity_cache_bytes, 64 << 20);
        for bad in ["", "256", "1MB", "-5MB", "1e30TB"] {
            let error = format!("{:#}", cache(Some(bad)).unwrap_err());
            assert!(error.contains("entity_cache_size"), "{bad}: {error}");
        }
    }

    #[test]
    fn public_url_metrics_and_sign_in_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.toml");
        std::fs::write(
            &path,
            "public_url = \"https://cairn.example.com\"\npublic_metrics = true\nsign_in_limit = 30\n",
        )
        .unwrap();
        let config = ServeArgs {
            config: Some(path),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(
            config.public_url.unwrap().host_str(),
            Some("cairn.example.com")
        );
        assert!(config.public_metrics);
        assert_eq!(config.sign_in_limit.get(), 30);

        let defaults = ServeArgs::default().resolve().unwrap();
        assert!(defaults.public_url.is_none() && !defaults.public_metrics);
        assert_eq!(defaults.sign_in_limit.get(), DEFAULT_SIGN_IN_LIMIT);
        for bad in ["cairn.example.com", "ftp://x.io", "https://"] {
            let args = ServeArgs {
                public_url: Some(bad.into()),
                ..Default::default()
            };
            let error = format!("{:#}", args.resolve().unwrap_err());
            assert!(error.contains("public_url"), "{bad}: {error}");
        }
        let zero = ServeArgs {
            sign_in_limit: Some(0),
            ..Default::default()
        };
        assert!(zero.resolve().is_err());
    }

    #[test]
    fn max_connections_comes_from_flag_or_file_and_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.toml");
        std::fs::write(&path, "max_connections = 64\n").unwrap();
        let resolve = |max_connections, config: Option<&Path>| {
            ServeArgs {
                max_connections,
                config: config.map(Path::to_path_buf),
                ..Default::default()
            }
            .resolve()
        };
        let default = resolve(None, None).unwrap().max_connections;
        assert_eq!(default, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(resolve(None, Some(&path)).unwrap().max_connections, 64);
        assert_eq!(resolve(Some(8), Some(&path)).unwrap().max_connections, 8);
        for bad in [0, MAX_CONNECTIONS + 1] {
            let error = format!("{:#}", resolve(Some(bad), None).unwrap_err());
            assert!(error.contains("max_connections"), "{bad}: {error}");
        }
    }
}
