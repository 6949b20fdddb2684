//! Settings of `cairn serve`: command-line flag, else environment variable,
//! else the TOML config file, else the default.

use std::net::SocketAddr;
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
/// Open connections served at once; past it, new ones wait to be accepted.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Tokio's semaphore counts permits in fewer bits than a `usize`.
pub const MAX_CONNECTIONS: usize = 1 << 20;

#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8000]
    #[arg(long, env = "CAIRN_BIND")]
    pub bind: Option<SocketAddr>,
    /// Directory holding the database [default: ./cairn-data]
    #[arg(long, env = "CAIRN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML file with any of: bind, data_dir, group_type_limit, request_timeout, memory_limit, log,
    /// max_connections
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
    /// Log filter, e.g. `info` or `cairn=debug` [default: info]
    #[arg(long, env = "CAIRN_LOG")]
    pub log: Option<String>,
    /// Project API key (phc_…) given to the default project at first start
    #[arg(long, env = "CAIRN_PROJECT_API_KEY", hide_env_values = true)]
    pub project_api_key: Option<String>,
    /// Personal API key (phx_…) created at first start
    #[arg(long, env = "CAIRN_PERSONAL_API_KEY", hide_env_values = true)]
    pub personal_api_key: Option<String>,
    /// Connections served at once; past it, new connections wait until one
    /// closes [default: 1024]
    #[arg(long, env = "CAIRN_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    group_type_limit: Option<usize>,
    request_timeout: Option<u64>,
    memory_limit: Option<String>,
    log: Option<String>,
    max_connections: Option<usize>,
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
    pub log: String,
    pub project_api_key: Option<String>,
    pub personal_api_key: Option<String>,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Config {
    /// The store in the data directory, with the configured memory bound.
    pub fn open_store(&self) -> cairn_store::Result<cairn_store::DuckStore> {
        let store = cairn_store::DuckStore::open(&self.data_dir, self.group_type_limit)?;
        store.set_memory_limit(&self.memory_limit)?;
        Ok(store)
    }
}

impl ServeArgs {
    pub fn resolve(self) -> anyhow::Result<Config> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
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
        check_size(&memory_limit).context("memory_limit")?;
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
            log: self.log.or(file.log).unwrap_or_else(|| "info".into()),
            project_api_key: self.project_api_key,
            personal_api_key: self.personal_api_key,
            max_connections,
        })
    }
}

/// A size as DuckDB takes it: a number and a unit, e.g. `512MB`, `1.5GiB`.
fn check_size(size: &str) -> anyhow::Result<()> {
    let number_end = size
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(size.len());
    let (number, unit) = size.split_at(number_end);
    let units = ["KB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB"];
    let valid = number.parse::<f64>().is_ok_and(|n| n > 0.0)
        && units.iter().any(|u| u.eq_ignore_ascii_case(unit.trim()));
    anyhow::ensure!(valid, "expected a size such as 512MB or 4GB, got {size:?}");
    Ok(())
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
