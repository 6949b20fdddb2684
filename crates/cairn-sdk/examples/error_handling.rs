//! "Error Handling": what cannot be sent is reported, not silently
//! dropped, and a call with no distinct id anywhere does nothing.
//!
//!     CAIRN_PROJECT_API_KEY=phc_… cargo run -p cairn-sdk --example error_handling

use std::collections::HashMap;

use cairn_sdk::{identify_context, with_context, ClientBuilder, Set};
use serde_json::json;

fn main() -> Result<(), cairn_sdk::Error> {
    let client = ClientBuilder::from_env()?.build()?;

    // Valid values, including nested objects (kept as JSON) and a
    // non-finite float (JSON has no NaN: it is sent as null).
    client.set(
        Set::new(json!({
            "valid_string": "hello",
            "valid_number": 42,
            "nested_object": {"key": "value"},
            "not_a_number": f64::NAN
        }))
        .distinct_id("user123"),
    )?;

    // A value JSON cannot represent is an error naming it.
    let mut unserialisable = HashMap::new();
    unserialisable.insert((1, 2), "a map with tuple keys");
    let refused = client
        .set(Set::new(json!({"ok": 1})).distinct_id("user123"))
        .and_then(|_| {
            client
                .set(Set::new(HashMap::from([("invalid", unserialisable)])).distinct_id("user123"))
        });
    println!("refused: {}", refused.unwrap_err());

    // No distinct id anywhere: a no-op.
    with_context(|| {
        let nothing = client.set(Set::new(json!({"property": "value"})))?;
        assert!(nothing.is_none());
        identify_context("user123");
        let sent = client.set(Set::new(json!({"property": "value"})))?;
        assert!(sent.is_some());
        Ok::<_, cairn_sdk::Error>(())
    })?;

    client.shutdown()
}
