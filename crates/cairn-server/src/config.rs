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

#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8000]
    #[arg(long, env = "CAIRN_BIND")]
    pub bind: Option<SocketAddr>,
    /// Directory holding the database [default: ./cairn-data]
    #[arg(long, env = "CAIRN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML file with any of: bind, data_dir, group_type_limit, request_timeout, log
    #[arg(long, env = "CAIRN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Group types allowed per project [default: 5, at most 32]
    #[arg(long, env = "CAIRN_GROUP_TYPE_LIMIT")]
    pub group_type_limit: Option<usize>,
    /// Seconds a client may take to send its request headers, and a capture
    /// or flags body; a stalled client gets 408 and is disconnected [default: 30]
    #[arg(long, env = "CAIRN_REQUEST_TIMEOUT")]
    pub request_timeout: Option<u64>,
    /// Log filter, e.g. `info` or `cairn=debug` [default: info]
    #[arg(long, env = "CAIRN_LOG")]
    pub log: Option<String>,
    /// Project API key (phc_…) given to the default project at first start
    #[arg(long, env = "CAIRN_PROJECT_API_KEY", hide_env_values = true)]
    pub project_api_key: Option<String>,
    /// Personal API key (phx_…) created at first start
    #[arg(long, env = "CAIRN_PERSONAL_API_KEY", hide_env_values = true)]
    pub personal_api_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    group_type_limit: Option<usize>,
    request_timeout: Option<u64>,
    log: Option<String>,
}

/// The settings in force.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub group_type_limit: usize,
    /// How long a request body may take to arrive.
    pub request_timeout: Duration,
    pub log: String,
    pub project_api_key: Option<String>,
    pub personal_api_key: Option<String>,
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
            log: self.log.or(file.log).unwrap_or_else(|| "info".into()),
            project_api_key: self.project_api_key,
            personal_api_key: self.personal_api_key,
        })
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
}
