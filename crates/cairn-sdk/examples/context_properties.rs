//! "Context-Based Property Management": a context's distinct id and tags
//! apply to every call inside it, in a thread and in an async task.
//!
//!     CAIRN_PROJECT_API_KEY=phc_… cargo run -p cairn-sdk --example context_properties

use cairn_sdk::{identify_context, in_context, tag, with_context, Capture, ClientBuilder, Set};
use serde_json::json;

fn main() -> Result<(), cairn_sdk::Error> {
    let client = ClientBuilder::from_env()?.build()?;

    with_context(|| {
        identify_context("user_456");
        tag("session_type", "premium");
        tag("ab_test_group", "variant_b");

        // Tags are included in the user properties.
        client.set(Set::new(json!({
            "last_login": "2024-09-07T10:30:00Z",
            "subscription_status": "active"
        })))?;

        // And in the event's properties.
        client.capture(Capture::new("dashboard_viewed"))?;
        Ok::<_, cairn_sdk::Error>(())
    })?;

    // The same in async code: the scope follows the task across `.await`s.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(in_context(async {
        identify_context("user_456");
        tag("request_id", "req-42");
        tokio::task::yield_now().await;
        client.capture(Capture::new("report_exported"))
    }))?;

    client.shutdown()
}
