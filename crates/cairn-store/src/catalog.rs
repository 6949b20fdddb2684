//! The [`Catalog`]: what the server administers rather than ingests —
//! projects, keys, accounts and their sessions, feature flags, saved
//! insights and the names of group types. Small, transactional, read
//! often; no read of it waits for ingestion, except where it reads what
//! ingestion writes (group types, and the person behind a distinct id).

use std::collections::HashMap;

use cairn_core::{GroupType, GroupTypeIndex, ProjectId};
use uuid::Uuid;

use crate::flags::StoredFlag;
use crate::insights::SavedInsight;
use crate::keys::{KeyGrant, PersonalKey};
use crate::projects::Project;
use crate::users::{Access, User};
use crate::Result;

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
    /// Experience continuity: the hash key each of `flag_keys` uses for the
    /// person of `distinct_id` (see [`crate::flags::continuity_overrides`]).
    /// Waits for ingestion: it reads the distinct id's person.
    fn continuity_overrides(
        &self,
        project: ProjectId,
        distinct_id: &str,
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
