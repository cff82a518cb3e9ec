//! A small run of `outreach bench`: correctness only (the benchmark verifies
//! the tables against its own fold of what it generated); no timing asserted.

mod support;

use std::process::Command;

use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_small_benchmark_run_verifies_its_tables() {
    let broker = Broker::start();
    let db = Db::new().await; // only its server is used: bench makes a database of its own
    let o = Command::new(env!("CARGO_BIN_EXE_outreach"))
        .args([
            "bench",
            "--events",
            "3000",
            "--counties",
            "50",
            "--bad",
            "1",
            "--json",
        ])
        .env("OUTREACH__KAFKA__BROKERS", &broker.addr)
        .env("OUTREACH__KAFKA__SESSION_TIMEOUT_MS", "6000")
        .env("OUTREACH__DATABASE__URL", &db.url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON report");
    assert_eq!(report["verified"], true);
    assert_eq!(report["mode"], "throughput");
    let g = &report["generated"];
    assert!(
        g["duplicates"].as_u64().unwrap() > 0
            && g["corrections"].as_u64().unwrap() > 0
            && g["bad"].as_u64().unwrap() > 0
    );
    let p = &report["processes"][0];
    assert_eq!(
        p["messages"], g["messages"],
        "every generated message went through the pipeline"
    );
    assert!(p["peak_rss_mib"].as_f64().unwrap() > 0.0);
    assert!(report["raw_read_per_second"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn a_small_stage_benchmark_verifies_its_tables_and_splits_the_time() {
    let db = Db::new().await; // only its server is used
    let o = Command::new(env!("CARGO_BIN_EXE_outreach"))
        .args([
            "bench",
            "--stages",
            "--events",
            "3000",
            "--counties",
            "50",
            "--bad",
            "1",
            "--json",
        ])
        .env("OUTREACH__DATABASE__URL", &db.url)
        .env("OUTREACH__INGEST__BATCH_MAX_MESSAGES", "700")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON report");
    assert_eq!(
        report["verified"], true,
        "tables equal the generator's fold"
    );
    assert_eq!(report["mode"], "stages");
    for stage in ["decode", "transform", "database"] {
        assert!(
            report[stage]["messages_per_second"].as_f64().unwrap() > 0.0,
            "{stage}"
        );
    }
    assert!(report["database"]["aggregate_rows"].as_u64().unwrap() > 3000);
}
