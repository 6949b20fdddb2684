//! "User Identity Linking": an anonymous visitor signs up and is aliased.
//!
//!     CAIRN_PROJECT_API_KEY=phc_… cargo run -p cairn-sdk --example identity_linking

use cairn_sdk::{Alias, Capture, ClientBuilder, Set};
use serde_json::json;

fn main() -> Result<(), cairn_sdk::Error> {
    let client = ClientBuilder::from_env()?.build()?;

    // The user starts as an anonymous visitor.
    let anonymous_id = "anonymous_user_abc123";
    client.capture(
        Capture::new("page_viewed")
            .distinct_id(anonymous_id)
            .property("page", "landing"),
    )?;
    client.capture(Capture::new("signup_started").distinct_id(anonymous_id))?;

    // The user completes registration.
    let identified_id = "user_456";
    client.capture(
        Capture::new("signup_completed")
            .distinct_id(identified_id)
            .property("email", "user@example.com"),
    )?;

    // Link the anonymous behaviour to the identified user.
    client.alias(Alias::new(anonymous_id).distinct_id(identified_id))?;

    // Set user properties after identification.
    client.set(
        Set::new(json!({"email": "user@example.com", "plan": "free", "verified": true}))
            .distinct_id(identified_id),
    )?;

    client.shutdown()
}
