//! "User Property Management": set, set_once, and set inside a context.
//!
//!     CAIRN_PROJECT_API_KEY=phc_… cargo run -p cairn-sdk --example user_properties

use cairn_sdk::{identify_context, with_context, ClientBuilder, Set};
use serde_json::json;

fn main() -> Result<(), cairn_sdk::Error> {
    let client = ClientBuilder::from_env()?.build()?;

    // Set user properties (overwrites existing).
    client.set(
        Set::new(json!({
            "email": "user@example.com",
            "name": "John Doe",
            "plan": "premium",
            "signup_date": "2024-01-15",
            "trial_end": "2024-02-15"
        }))
        .distinct_id("user123"),
    )?;

    // Set properties only if they don't exist.
    client.set_once(
        Set::new(json!({
            "first_visit": "2024-01-10",
            "initial_referrer": "google.com",
            "signup_source": "landing_page"
        }))
        .distinct_id("user123"),
    )?;

    // The context supplies the distinct id.
    with_context(|| {
        identify_context("user123");
        client.set(Set::new(json!({
            "last_active": "2024-09-07",
            "feature_usage_count": 42
        })))
    })?;

    client.shutdown()
}
