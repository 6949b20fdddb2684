//! The [`Catalog`]: what the server administers rather than ingests —
//! projects, keys, accounts and their sessions, feature flags, saved
//! insights and the names of group types. Small, transactional, read
//! often; no read of it waits for ingestion, except where it reads what
//! ingestion writes (group types, and the person behind a distinct id).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use cairn_core::{GroupType, GroupTypeIndex, ProjectId};

use crate::Result;

/// A project: the unit of isolation. Every event, person, group and key
/// belongs to exactly one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub api_token: String,
    pub timezone: String,
    /// 0 = Sunday, 1 = Monday (PostHog's convention).
    pub week_start_day: i16,
    pub created_at: DateTime<Utc>,
}

/// What is kept of a personal key: never the secret itself (see
/// [`crate::keys`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PersonalKey {
    pub id: Uuid,
    pub project_id: ProjectId,
    pub label: String,
    /// The key with all but its first and last characters hidden.
    pub mask_value: String,
    pub created_at: DateTime<Utc>,
}

/// What a personal key opens, and for whom it acts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyGrant {
    pub project: ProjectId,
    /// The account that made the key; none for the operator's keys.
    pub owner: Option<Uuid>,
}

/// How long a sign-in lasts.
pub const SESSION_DAYS: i64 = 14;

/// A web UI account. Passwords arrive already hashed (the server hashes
/// them); session tokens are kept only as SHA-256 hashes, like personal
/// keys, so a copy of the store opens nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    /// Administrators see every project and may create projects; other
    /// accounts see the projects they are members of.
    pub is_admin: bool,
}

/// What a new account may see.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    Admin,
    /// A member of these projects only.
    Member(Vec<ProjectId>),
}

/// A feature flag's definition, with its filters as JSON (what they mean
/// is `cairn-flags`' business). Deleting a flag marks it deleted, so its
/// key can be reused and its id stays unique.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFlag {
    pub id: i64,
    pub project_id: ProjectId,
    pub key: String,
    pub name: String,
    pub filters: Value,
    pub active: bool,
    pub deleted: bool,
    pub ensure_experience_continuity: bool,
    /// Bumped by every change.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A saved insight: a name and the insight builder's parameters (its query
/// string), so a saved insight opens exactly as it was built.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedInsight {
    pub id: i64,
    pub name: String,
    pub params: String,
    pub created_at: DateTime<Utc>,
}

/// Blocking calls: run them off the async workers.
pub trait Catalog: Send + Sync {
    fn list_projects(&self) -> Result<Vec<Project>>;
    fn get_project(&self, id: ProjectId) -> Result<Option<Project>>;
    /// Creates a project; its API key is generated unless given.
    fn create_project(&self, name: &str, api_token: Option<String>) -> Result<Project>;
    /// Changes the given settings of a project and returns it.
    fn update_project(
        &self,
        id: ProjectId,
        name: Option<&str>,
        timezone: Option<&str>,
        week_start_day: Option<i16>,
    ) -> Result<Project>;

    /// Stores a personal key for `project`, acting for the account `owner`
    /// (none: the operator's); `secret` is generated unless given. Returns
    /// the key's record and its secret, which is shown only this once.
    fn create_personal_key(
        &self,
        project: ProjectId,
        label: &str,
        secret: Option<String>,
        owner: Option<Uuid>,
    ) -> Result<(PersonalKey, String)>;
    fn list_personal_keys(&self, project: ProjectId) -> Result<Vec<PersonalKey>>;
    /// Revokes a key; false when the project has no key with that id.
    fn delete_personal_key(&self, project: ProjectId, id: Uuid) -> Result<bool>;
    /// Every personal key's hash with what it grants.
    fn personal_key_grants(&self) -> Result<Vec<(String, KeyGrant)>>;

    fn count_users(&self) -> Result<usize>;
    /// Adds an account; the first account is always an administrator.
    fn create_user(&self, email: &str, password_hash: &str, access: Access) -> Result<User>;
    /// The account made on the first-start page: only while there is none.
    fn create_first_user(&self, email: &str, password_hash: &str) -> Result<Option<User>>;
    /// Makes `user` a member of `project` (again is fine).
    fn add_member(&self, project: ProjectId, user: Uuid) -> Result<()>;
    /// Whether `user` may see `project`: administrators see every project.
    fn can_see_project(&self, user: &User, project: ProjectId) -> Result<bool>;
    /// The projects `user` may see, in id order.
    fn visible_projects(&self, user: &User) -> Result<Vec<Project>>;
    fn get_user(&self, id: Uuid) -> Result<Option<User>>;
    /// The account with this email, compared without case.
    fn find_user(&self, email: &str) -> Result<Option<User>>;
    /// Starts a session for `user`; returns the token for the cookie (shown once).
    fn create_session(&self, user: Uuid) -> Result<String>;
    /// The user a live session token belongs to.
    fn session_user(&self, token: &str) -> Result<Option<User>>;
    /// Ends a session (and every expired one).
    fn delete_session(&self, token: &str) -> Result<()>;

    /// The project's flags that are not deleted, oldest first.
    fn list_flags(&self, project: ProjectId) -> Result<Vec<StoredFlag>>;
    fn get_flag(&self, project: ProjectId, id: i64) -> Result<Option<StoredFlag>>;
    /// Saves a new flag (its `id`, `version` and times are assigned).
    fn create_flag(&self, flag: StoredFlag) -> Result<StoredFlag>;
    /// Replaces a flag's definition; the version goes up by one.
    fn update_flag(&self, flag: &StoredFlag) -> Result<StoredFlag>;
    /// Experience continuity (spec/flags.md §3.8): the hash key each of
    /// `flag_keys` uses for `person`. With `anon_distinct_id`, flags without
    /// a stored key first get that one, so the variant seen before
    /// identification stays.
    fn continuity_overrides(
        &self,
        project: ProjectId,
        person: Uuid,
        anon_distinct_id: Option<&str>,
        flag_keys: &[String],
    ) -> Result<HashMap<String, String>>;

    fn save_insight(&self, project: ProjectId, name: &str, params: &str) -> Result<SavedInsight>;
    /// Newest first.
    fn list_insights(&self, project: ProjectId) -> Result<Vec<SavedInsight>>;
    fn delete_insight(&self, project: ProjectId, id: i64) -> Result<bool>;

    /// The project's group types by index. Waits for ingestion, which
    /// creates them.
    fn group_types(&self, project: ProjectId) -> Result<Vec<GroupType>>;
    /// Sets display names of a group type; `None` leaves a name as it is,
    /// `Some(None)` clears it. False when the group type does not exist.
    fn update_group_type_names(
        &self,
        project: ProjectId,
        index: GroupTypeIndex,
        name_singular: Option<Option<&str>>,
        name_plural: Option<Option<&str>>,
    ) -> Result<bool>;
}
