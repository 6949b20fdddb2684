//! First start: a default project and its keys, printed once.

use cairn_store::Catalog;

use crate::config::Config;

/// The keys made at first start, to show the user.
pub struct FirstStart {
    pub project_api_key: String,
    pub personal_api_key: String,
}

/// Creates the default project when the store has none.
pub fn ensure_default_project(
    catalog: &dyn Catalog,
    config: &Config,
) -> anyhow::Result<Option<FirstStart>> {
    if !catalog.list_projects()?.is_empty() {
        return Ok(None);
    }
    let project = catalog.create_project("Default project", config.project_api_key.clone())?;
    let (_, personal_api_key) = catalog.create_personal_key(
        project.id,
        "created at first start",
        config.personal_api_key.clone(),
        None,
    )?;
    Ok(Some(FirstStart {
        project_api_key: project.api_token,
        personal_api_key,
    }))
}

pub fn print_first_start(first: &FirstStart, config: &Config) {
    println!(
        "\nCairn created its default project (id 1). Keep these keys: the personal key is shown only now.\n\
         \n  Project API key  (for SDKs, public):       {}\
         \n  Personal API key (private API, secret):    {}\n\
         \n  Send an event:  curl -X POST http://{}/batch/ -H 'Content-Type: application/json' \\\
         \n                    -d '{{\"api_key\": \"{}\", \"batch\": [{{\"event\": \"hello\", \"distinct_id\": \"me\"}}]}}'\n",
        first.project_api_key, first.personal_api_key, config.bind, first.project_api_key
    );
}
