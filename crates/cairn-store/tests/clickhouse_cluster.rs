//! The ClickHouse harness's own test: two real servers form the cluster
//! `cairn`, and a Distributed table spreads rows over both.

mod support;

use std::path::Path;

use support::clickhouse::{ClickHouse, CLUSTER};

#[test]
fn two_shards_form_a_cluster() {
    let ch = ClickHouse::start(2);
    assert_eq!(ch.query(0, "SELECT version()"), "26.9.2.1\n");
    for shard in 0..2 {
        ch.query(
            shard,
            "CREATE TABLE t (k UInt64, v String) ENGINE = MergeTree ORDER BY k",
        );
    }
    ch.query(
        0,
        &format!(
            "CREATE TABLE d AS t ENGINE = Distributed('{CLUSTER}', currentDatabase(), 't', k)"
        ),
    );
    ch.query(
        0,
        "INSERT INTO d SETTINGS distributed_foreground_insert = 1 \
         SELECT number, toString(number) FROM numbers(1000)",
    );

    // Sharded by k over two shards of weight 1: even keys on shard 0.
    let held: Vec<String> = (0..2)
        .map(|shard| ch.query(shard, "SELECT count(), sum(k % 2) FROM t"))
        .collect();
    assert_eq!(held, ["500\t0\n", "500\t500\n"]);
    assert_eq!(ch.query(0, "SELECT count() FROM d"), "1000\n");
    // The cluster is the configured one, over the shards' native ports.
    assert_eq!(
        ch.query(
            0,
            &format!("SELECT groupArray(port) FROM system.clusters WHERE cluster = '{CLUSTER}'")
        ),
        format!("[{},{}]\n", ch.tcp_port(0), ch.tcp_port(1))
    );

    let pids = ch.pids();
    drop(ch);
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "ClickHouse process {pid} outlived the harness"
        );
    }
}

#[test]
#[should_panic(expected = "UNKNOWN_TABLE")]
fn a_failing_query_panics_with_clickhouse_s_message() {
    ClickHouse::start(1).query(0, "SELECT * FROM no_such_table");
}
