//! What every handler shares: the storage, the ingestion pipeline, and the
//! key registries that authenticate requests without a database round trip.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use metrics_exporter_prometheus::PrometheusHandle;

use cairn_core::time::Clock;
use cairn_core::ProjectId;
use cairn_ingest::Pipeline;
use cairn_store::catalog::KeyGrant;
use cairn_store::{keys, EntityState, PersonLookup};

use crate::config::Config;
use crate::flags::FlagRegistry;
use crate::origin::AllowedHosts;
use crate::passwords::PasswordWork;
use crate::storage::Storage;
use crate::throttle::SignInThrottle;

pub struct AppState {
    pub config: Config,
    /// The catalog, the entity reader and the event store; every handler
    /// goes through them.
    pub storage: Storage,
    pub pipeline: Pipeline,
    /// Committed person and group properties, as `/flags` reads them.
    pub persons: Arc<dyn PersonLookup>,
    /// The same state, for its cache and disk figures.
    pub entities: Arc<EntityState>,
    pub metrics: PrometheusHandle,
    pub flags: FlagRegistry,
    /// "Now" for capture and `/flags`: the one the pipeline reads too.
    pub clock: Arc<dyn Clock>,
    /// Project API key (`phc_`) → project.
    project_keys: RwLock<HashMap<String, ProjectId>>,
    /// SHA-256 of a personal API key (`phx_`) → what it opens, for whom.
    personal_keys: RwLock<HashMap<String, KeyGrant>>,
    /// Argon2 work, off the async workers and a few at a time.
    pub passwords: PasswordWork,
    /// Sign-in attempts per client address.
    pub sign_in: SignInThrottle,
    /// The host names the web UI answers to.
    pub hosts: AllowedHosts,
}

impl AppState {
    pub fn new(
        config: Config,
        storage: Storage,
        entities: Arc<EntityState>,
        pipeline: Pipeline,
        metrics: PrometheusHandle,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let hosts = AllowedHosts::new(config.bind, config.public_url.clone());
        let sign_in = SignInThrottle::new(config.sign_in_limit);
        let state = Self {
            config,
            storage,
            persons: entities.clone(),
            entities,
            pipeline,
            metrics,
            flags: FlagRegistry::default(),
            clock,
            project_keys: RwLock::default(),
            personal_keys: RwLock::default(),
            passwords: PasswordWork::default(),
            sign_in,
            hosts,
        };
        state.reload_keys()?;
        Ok(state)
    }

    /// Re-reads every key from the store; called after keys change.
    pub fn reload_keys(&self) -> Result<(), cairn_store::StoreError> {
        let catalog = &self.storage.catalog;
        let project_keys = catalog
            .list_projects()?
            .into_iter()
            .map(|p| (p.api_token, p.id))
            .collect();
        let personal_keys = catalog.personal_key_grants()?.into_iter().collect();
        *self.project_keys.write().expect("key lock") = project_keys;
        *self.personal_keys.write().expect("key lock") = personal_keys;
        Ok(())
    }

    pub fn project_for_token(&self, token: &str) -> Option<ProjectId> {
        self.project_keys
            .read()
            .expect("key lock")
            .get(token)
            .copied()
    }

    pub fn project_for_personal_key(&self, secret: &str) -> Option<ProjectId> {
        self.personal_key(secret).map(|grant| grant.project)
    }

    /// What a personal key opens, and for whom it acts.
    pub fn personal_key(&self, secret: &str) -> Option<KeyGrant> {
        self.personal_keys
            .read()
            .expect("key lock")
            .get(&keys::hash_secret(secret))
            .copied()
    }
}
