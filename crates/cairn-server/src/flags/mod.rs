//! Feature flags at the edge: each project's definitions are held in memory
//! (reloaded after every change), so evaluating `/flags` reads no database;
//! person and group properties come through the state's `PersonLookup`.

pub mod definitions;
pub mod evaluate;
pub mod remote_config;
mod request;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use chrono_tz::Tz;

use cairn_core::ProjectId;
use cairn_flags::{FeatureFlag, FlagSet};
use cairn_store::catalog::StoredFlag;

use crate::error::ApiResult;
use crate::state::AppState;
use crate::storage::with_storage;

/// One project's flags, ready to evaluate.
#[derive(Debug)]
pub struct ProjectFlags {
    pub set: FlagSet,
    pub timezone: Tz,
    /// Each flag's fixed JSON in a detailed answer, by flag id.
    pub heads: HashMap<i64, evaluate::FlagHead>,
}

impl ProjectFlags {
    pub fn new(set: FlagSet, timezone: Tz) -> Self {
        let heads = set
            .flags()
            .iter()
            .map(|f| (f.id, evaluate::FlagHead::of(f)))
            .collect();
        Self {
            set,
            timezone,
            heads,
        }
    }
}

#[derive(Debug, Default)]
pub struct FlagRegistry {
    projects: RwLock<HashMap<ProjectId, Arc<ProjectFlags>>>,
    /// Bumped by every invalidation, so a load that raced one is not cached.
    generation: AtomicU64,
    /// Serialises flag changes, so key checks and id assignment don't race.
    pub writes: tokio::sync::Mutex<()>,
}

impl FlagRegistry {
    /// Drops the cached flags of `project`; the next use reloads them.
    pub fn invalidate(&self, project: ProjectId) {
        let mut projects = self.projects.write().expect("flag lock");
        self.generation.fetch_add(1, Ordering::SeqCst);
        projects.remove(&project);
    }
}

/// A stored flag as the evaluator sees it. Filters were validated when
/// saved; a definition that no longer parses is logged and left out.
pub fn to_feature_flag(stored: &StoredFlag) -> Option<FeatureFlag> {
    match serde_json::from_value(stored.filters.clone()) {
        Ok(filters) => Some(FeatureFlag {
            id: stored.id,
            key: stored.key.clone(),
            name: stored.name.clone(),
            active: stored.active,
            deleted: stored.deleted,
            filters,
            ensure_experience_continuity: stored.ensure_experience_continuity,
            version: stored.version,
        }),
        Err(error) => {
            tracing::error!(flag = stored.id, %error, "stored flag filters do not parse; flag skipped");
            None
        }
    }
}

/// The project's flags, from memory or loaded from the store.
pub async fn project_flags(state: &AppState, project: ProjectId) -> ApiResult<Arc<ProjectFlags>> {
    if let Some(cached) = state
        .flags
        .projects
        .read()
        .expect("flag lock")
        .get(&project)
    {
        return Ok(cached.clone());
    }
    let generation = state.flags.generation.load(Ordering::SeqCst);
    let (stored, timezone) = with_storage(&state.storage, move |store| {
        let timezone = store.catalog.get_project(project)?.map(|p| p.timezone);
        Ok((store.catalog.list_flags(project)?, timezone))
    })
    .await?;
    let loaded = Arc::new(ProjectFlags::new(
        FlagSet::new(stored.iter().filter_map(to_feature_flag)),
        timezone.and_then(|tz| tz.parse().ok()).unwrap_or(Tz::UTC),
    ));
    let mut projects = state.flags.projects.write().expect("flag lock");
    if state.flags.generation.load(Ordering::SeqCst) == generation {
        projects.insert(project, loaded.clone());
    }
    Ok(loaded)
}
