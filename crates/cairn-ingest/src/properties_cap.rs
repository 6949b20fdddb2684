//! The one cap on the properties a person or a group holds: an update that
//! would make them larger is refused (with an ingestion warning) and the
//! entity keeps what it had. Every `/flags` request and every commit copies
//! these properties, so one entity must not grow without bound.

use std::io;

use cairn_core::Properties;

/// PostHog refuses a person update that makes properties larger than this
/// (Postgres' `pg_column_size` check on the persons table); Cairn holds
/// groups to the same.
pub const MAX_PROPERTIES_BYTES: usize = 655_360;

/// The size of `properties` as JSON when it is over the cap.
pub fn oversize(properties: &Properties) -> Option<usize> {
    let size = json_size(properties);
    (size > MAX_PROPERTIES_BYTES).then_some(size)
}

/// Bytes of `properties` serialised as JSON, counted without building the text.
fn json_size(properties: &Properties) -> usize {
    struct Counter(usize);
    impl io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, properties) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn size_is_the_json_length() {
        let properties = json!({"a": "é", "b": [1, null]});
        let properties = properties.as_object().unwrap();
        assert_eq!(
            json_size(properties),
            serde_json::to_vec(properties).unwrap().len()
        );
        assert_eq!(oversize(properties), None);
        let big = json!({"blob": "x".repeat(MAX_PROPERTIES_BYTES)});
        assert_eq!(
            oversize(big.as_object().unwrap()),
            Some(MAX_PROPERTIES_BYTES + 11)
        );
    }
}
