//! "Group Association Patterns": an event in a multi-level organisation,
//! and a feature flag evaluated for a company.
//!
//! With `CAIRN_PERSONAL_API_KEY` set, flags are evaluated locally from
//! polled definitions; without it, by the server.
//!
//!     CAIRN_PROJECT_API_KEY=phc_… cargo run -p cairn-sdk --example group_flags

use cairn_sdk::{Capture, ClientBuilder, FlagOptions};
use serde_json::json;

fn main() -> Result<(), cairn_sdk::Error> {
    let client = ClientBuilder::from_env()?.build()?;
    if std::env::var_os("CAIRN_PERSONAL_API_KEY").is_some() {
        client.load_feature_flags()?;
    }

    // Multi-level organisation structure.
    client.capture(
        Capture::new("report_generated")
            .distinct_id("user123")
            .property("report_type", "monthly_summary")
            .group("company", "acme_corp")
            .group("division", "north_america")
            .group("team", "sales_team_west"),
    )?;

    // Feature flag evaluation with groups.
    let enabled = client.feature_enabled(
        "new_dashboard",
        "user123",
        &FlagOptions::new()
            .group("company", "acme_corp")
            .person_properties(json!({"plan": "enterprise"}))
            .group_properties("company", json!({"size": "large", "industry": "tech"})),
    )?;
    println!("new_dashboard for acme_corp: {enabled:?}");

    client.shutdown()
}
