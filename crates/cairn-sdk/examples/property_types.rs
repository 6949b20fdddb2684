//! "Property Types and Best Practices": strings, numbers, booleans, dates
//! as ISO strings, arrays, and consistent names.
//!
//!     CAIRN_PROJECT_API_KEY=phc_… cargo run -p cairn-sdk --example property_types

use cairn_sdk::{ClientBuilder, Set};
use serde::Serialize;
use serde_json::json;

/// Properties may also be any type that serialises to a JSON object.
#[derive(Serialize)]
struct Profile<'a> {
    email: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    signup_date: &'a str,
    subscription_tier: &'a str,
    feature_flags_enabled: Vec<&'a str>,
}

fn main() -> Result<(), cairn_sdk::Error> {
    let client = ClientBuilder::from_env()?.build()?;
    let set =
        |properties: serde_json::Value| client.set(Set::new(properties).distinct_id("user123"));

    set(json!({"name": "John Doe", "plan": "premium"}))?; // strings
    set(json!({"age": 28, "score": 95.5}))?; // numbers
    set(json!({"verified": true, "trial_expired": false}))?; // booleans
    set(json!({"signup_date": "2024-01-15T10:30:00Z", "last_active": "2024-09-07"}))?; // dates
    set(json!({
        "interests": ["technology", "sports", "music"],
        "visited_pages": ["/home", "/about", "/contact"]
    }))?; // arrays

    // Clear, consistent naming.
    client.set(
        Set::new(Profile {
            email: "user@example.com",
            first_name: "John",
            last_name: "Doe",
            signup_date: "2024-01-15",
            subscription_tier: "premium",
            feature_flags_enabled: vec!["new_ui", "beta_features"],
        })
        .distinct_id("user123"),
    )?;

    client.shutdown()
}
