//! "Combined User and Group Tracking": a user, their company and team, and
//! an event counted for all three.
//!
//!     CAIRN_PROJECT_API_KEY=phc_… cargo run -p cairn-sdk --example combined_tracking

use cairn_sdk::{Capture, ClientBuilder, GroupIdentify, Set};
use serde_json::json;

fn main() -> Result<(), cairn_sdk::Error> {
    let client = ClientBuilder::from_env()?.build()?;
    let user_id = "user_789";
    let company_id = "company_xyz";
    let team_id = "team_frontend";

    // Identify user properties.
    client.set(
        Set::new(json!({
            "name": "Alice Smith",
            "role": "Senior Developer",
            "department": "Engineering",
            "hire_date": "2023-06-01"
        }))
        .distinct_id(user_id),
    )?;

    // Identify the company.
    client.group_identify(GroupIdentify::new("company", company_id).properties(json!({
        "name": "XYZ Startup",
        "industry": "SaaS",
        "size": "Series A",
        "location": "San Francisco"
    })))?;

    // Identify the team.
    client.group_identify(GroupIdentify::new("team", team_id).properties(json!({
        "name": "Frontend Team",
        "tech_stack": "React",
        "team_lead": "bob.johnson@xyz.com"
    })))?;

    // Track an event with group context.
    client.capture(
        Capture::new("feature_used")
            .distinct_id(user_id)
            .property("feature", "advanced_dashboard")
            .group("company", company_id)
            .group("team", team_id),
    )?;

    client.shutdown()
}
