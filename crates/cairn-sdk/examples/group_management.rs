//! "Group Management": identify a company and a team, then update the company.
//!
//!     CAIRN_PROJECT_API_KEY=phc_… cargo run -p cairn-sdk --example group_management

use cairn_sdk::{ClientBuilder, GroupIdentify};
use serde_json::json;

fn main() -> Result<(), cairn_sdk::Error> {
    let client = ClientBuilder::from_env()?.build()?;

    // Identify a company/organization.
    client.group_identify(
        GroupIdentify::new("company", "acme_corp").properties(json!({
            "name": "Acme Corporation",
            "industry": "Technology",
            "size": "Enterprise",
            "plan": "Business",
            "mrr": 5000,
            "employees": 250
        })),
    )?;

    // Identify a team within the organization.
    client.group_identify(GroupIdentify::new("team", "engineering").properties(json!({
        "name": "Engineering Team",
        "department": "Product",
        "lead": "jane.doe@acme.com",
        "members_count": 12
    })))?;

    // Update group properties.
    client.group_identify(
        GroupIdentify::new("company", "acme_corp").properties(json!({
            "mrr": 5500,
            "employees": 275
        })),
    )?;

    client.shutdown()
}
