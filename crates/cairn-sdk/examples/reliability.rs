//! "Retry and Reliability": failures the worker meets go to `on_error`;
//! events wait in a bounded queue while the server is unreachable; flush
//! and shutdown drain it.
//!
//!     CAIRN_PROJECT_API_KEY=phc_… cargo run -p cairn-sdk --example reliability

use std::time::Duration;

use cairn_sdk::{Capture, ClientBuilder};

fn main() -> Result<(), cairn_sdk::Error> {
    let client = ClientBuilder::from_env()?
        .flush_at(50)
        .flush_interval(Duration::from_millis(200))
        .max_queue_size(5_000)
        .max_retries(8)
        .backoff(Duration::from_millis(250), Duration::from_secs(10))
        .shutdown_timeout(Duration::from_secs(5))
        .on_error(|error| eprintln!("analytics: {error}"))
        .build()?;

    for n in 0..120 {
        client.capture(
            Capture::new("job_processed")
                .distinct_id("worker-7")
                .property("n", n),
        )?;
    }
    // Wait until everything queued so far is delivered (or reported).
    client.flush()?;
    println!("{:?}", client.stats());

    client.shutdown()
}
