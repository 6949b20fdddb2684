//! [`DuckStore`] behind the storage traits: each call takes a pooled
//! connection and runs the module's SQL. Reads of what ingestion writes go
//! through [`DuckStore::reader`] (they wait at the read barrier); the
//! catalog's own tables through [`DuckStore::conn`].

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use uuid::Uuid;

use cairn_core::{Group, GroupType, GroupTypeIndex, IngestionWarning, Person, ProjectId};

use super::{entities, flags, insights, keys, projects, users, DuckStore};
use crate::catalog::{Access, KeyGrant, PersonalKey, Project, SavedInsight, StoredFlag, User};
use crate::entities::{EventFilter, GroupFilter, PersonFilter, StoredEvent};
use crate::{Catalog, EntityReader, Result};

impl Catalog for DuckStore {
    fn list_projects(&self) -> Result<Vec<Project>> {
        projects::list_projects(&*self.conn()?)
    }

    fn get_project(&self, id: ProjectId) -> Result<Option<Project>> {
        projects::get_project(&*self.conn()?, id)
    }

    fn create_project(&self, name: &str, api_token: Option<String>) -> Result<Project> {
        projects::create_project(&*self.conn()?, name, api_token)
    }

    fn update_project(
        &self,
        id: ProjectId,
        name: Option<&str>,
        timezone: Option<&str>,
        week_start_day: Option<i16>,
    ) -> Result<Project> {
        projects::update_project(&*self.conn()?, id, name, timezone, week_start_day)
    }

    fn create_personal_key(
        &self,
        project: ProjectId,
        label: &str,
        secret: Option<String>,
        owner: Option<Uuid>,
    ) -> Result<(PersonalKey, String)> {
        keys::create_personal_key(&*self.conn()?, project, label, secret, owner)
    }

    fn list_personal_keys(&self, project: ProjectId) -> Result<Vec<PersonalKey>> {
        keys::list_personal_keys(&*self.conn()?, project)
    }

    fn delete_personal_key(&self, project: ProjectId, id: Uuid) -> Result<bool> {
        keys::delete_personal_key(&*self.conn()?, project, id)
    }

    fn personal_key_grants(&self) -> Result<Vec<(String, KeyGrant)>> {
        keys::personal_key_grants(&*self.conn()?)
    }

    fn count_users(&self) -> Result<usize> {
        users::count_users(&*self.conn()?)
    }

    fn create_user(&self, email: &str, password_hash: &str, access: Access) -> Result<User> {
        users::create_user(&*self.conn()?, email, password_hash, access)
    }

    fn create_first_user(&self, email: &str, password_hash: &str) -> Result<Option<User>> {
        users::create_first_user(&*self.conn()?, email, password_hash)
    }

    fn add_member(&self, project: ProjectId, user: Uuid) -> Result<()> {
        users::add_member(&*self.conn()?, project, user)
    }

    fn can_see_project(&self, user: &User, project: ProjectId) -> Result<bool> {
        users::can_see_project(&*self.conn()?, user, project)
    }

    fn visible_projects(&self, user: &User) -> Result<Vec<Project>> {
        users::visible_projects(&*self.conn()?, user)
    }

    fn get_user(&self, id: Uuid) -> Result<Option<User>> {
        users::get_user(&*self.conn()?, id)
    }

    fn find_user(&self, email: &str) -> Result<Option<User>> {
        users::find_user(&*self.conn()?, email)
    }

    fn create_session(&self, user: Uuid) -> Result<String> {
        users::create_session(&*self.conn()?, user)
    }

    fn session_user(&self, token: &str) -> Result<Option<User>> {
        users::session_user(&*self.conn()?, token)
    }

    fn delete_session(&self, token: &str) -> Result<()> {
        users::delete_session(&*self.conn()?, token)
    }

    fn list_flags(&self, project: ProjectId) -> Result<Vec<StoredFlag>> {
        flags::list_flags(&*self.conn()?, project)
    }

    fn get_flag(&self, project: ProjectId, id: i64) -> Result<Option<StoredFlag>> {
        flags::get_flag(&*self.conn()?, project, id)
    }

    fn create_flag(&self, flag: StoredFlag) -> Result<StoredFlag> {
        flags::create_flag(&*self.conn()?, flag)
    }

    fn update_flag(&self, flag: &StoredFlag) -> Result<StoredFlag> {
        flags::update_flag(&*self.conn()?, flag)
    }

    fn continuity_overrides(
        &self,
        project: ProjectId,
        person: Uuid,
        anon_distinct_id: Option<&str>,
        flag_keys: &[String],
    ) -> Result<HashMap<String, String>> {
        let conn = self.conn()?;
        flags::continuity_overrides(&conn, project, person, anon_distinct_id, flag_keys)
    }

    fn save_insight(&self, project: ProjectId, name: &str, params: &str) -> Result<SavedInsight> {
        insights::save_insight(&*self.conn()?, project, name, params)
    }

    fn list_insights(&self, project: ProjectId) -> Result<Vec<SavedInsight>> {
        insights::list_insights(&*self.conn()?, project)
    }

    fn delete_insight(&self, project: ProjectId, id: i64) -> Result<bool> {
        insights::delete_insight(&*self.conn()?, project, id)
    }

    fn group_types(&self, project: ProjectId) -> Result<Vec<GroupType>> {
        let types = entities::group_types(&*self.reader()?, Some(project))?;
        Ok(types.into_iter().map(|(_, t)| t).collect())
    }

    fn update_group_type_names(
        &self,
        project: ProjectId,
        index: GroupTypeIndex,
        name_singular: Option<Option<&str>>,
        name_plural: Option<Option<&str>>,
    ) -> Result<bool> {
        let conn = self.reader()?;
        entities::update_group_type_names(&conn, project, index, name_singular, name_plural)
    }
}

impl EntityReader for DuckStore {
    fn list_persons(&self, project: ProjectId, filter: &PersonFilter<'_>) -> Result<Vec<Person>> {
        entities::list_persons(&*self.reader()?, project, filter)
    }

    fn list_groups(&self, project: ProjectId, filter: &GroupFilter<'_>) -> Result<Vec<Group>> {
        entities::list_groups(&*self.reader()?, project, filter)
    }

    fn find_group(
        &self,
        project: ProjectId,
        index: GroupTypeIndex,
        key: &str,
    ) -> Result<Option<Group>> {
        entities::find_group(&*self.reader()?, project, index, key)
    }

    fn group_property_definitions(
        &self,
        project: ProjectId,
    ) -> Result<BTreeMap<GroupTypeIndex, Vec<(String, i64)>>> {
        entities::group_property_definitions(&*self.reader()?, project)
    }

    fn group_property_values(
        &self,
        project: ProjectId,
        index: GroupTypeIndex,
        key: &str,
        value_contains: Option<&str>,
    ) -> Result<Vec<(Value, i64)>> {
        entities::group_property_values(&*self.reader()?, project, index, key, value_contains)
    }

    fn list_events(
        &self,
        project: ProjectId,
        filter: &EventFilter<'_>,
    ) -> Result<Vec<StoredEvent>> {
        entities::list_events(&*self.reader()?, project, self.group_columns(), filter)
    }

    fn list_warnings(&self, project: ProjectId, limit: usize) -> Result<Vec<IngestionWarning>> {
        entities::list_warnings(&*self.reader()?, project, limit)
    }

    fn event_names(&self, project: ProjectId, limit: usize) -> Result<Vec<String>> {
        insights::event_names(&*self.reader()?, project, limit)
    }
}
