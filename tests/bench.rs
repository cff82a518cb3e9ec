//! Small runs of `outreach bench` on each backend: correctness only (the
//! benchmark verifies the tables against its own fold of what it
//! generated); no timing asserted.

mod support;

use std::process::Command;

use serde_json::Value;
use support::*;

/// Runs `outreach bench ARGS --json` against this database (only its server
/// or directory is used: bench makes a database of its own), returns the report.
fn bench(database_url: &str, broker: Option<&Broker>, args: &[&str]) -> Value {
    let mut c = Command::new(env!("CARGO_BIN_EXE_outreach"));
    c.arg("bench")
        .args(args)
        .args([
            "--events",
            "3000",
            "--counties",
            "50",
            "--bad",
            "1",
            "--json",
        ])
        .env("OUTREACH__DATABASE__URL", database_url)
        .env("OUTREACH__INGEST__BATCH_MAX_MESSAGES", "700")
        .env_remove("RUST_LOG");
    if let Some(b) = broker {
        c.env("OUTREACH__KAFKA__BROKERS", &b.addr)
            .env("OUTREACH__KAFKA__SESSION_TIMEOUT_MS", "6000");
    }
    let o = c.output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON report");
    assert_eq!(
        report["verified"], true,
        "tables equal the generator's fold"
    );
    report
}

fn check_throughput(report: &Value) {
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
    assert!(report["database_bytes"].as_i64().unwrap() > 0);
}

fn check_stages(report: &Value) {
    assert_eq!(report["mode"], "stages");
    for stage in ["decode", "transform", "database"] {
        assert!(
            report[stage]["messages_per_second"].as_f64().unwrap() > 0.0,
            "{stage}"
        );
    }
    assert!(report["database"]["aggregate_rows"].as_u64().unwrap() > 3000);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_small_benchmark_run_verifies_its_tables() {
    let broker = Broker::start();
    let db = Db::new().await;
    let report = bench(&db.url, Some(&broker), &[]);
    check_throughput(&report);
    // Postgres: the floor of copying the run's rows, and the settings.
    let floor = &report["copy_floor"];
    assert!(floor["seconds"].as_f64().unwrap() > 0.0);
    let rows: u64 = floor["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["rows"].as_u64().unwrap())
        .sum();
    assert!(rows > 3_000, "the floor copies every row the run left");
    assert!(report["postgres_settings"]["shared_buffers"].is_string());
    let p = &report["processes"][0];
    assert!(
        p["compactions"].as_u64().unwrap() >= 1,
        "the drain ends with a fold"
    );
    assert!(p["settled_ms"].as_u64().unwrap() >= p["busy_ms"].as_u64().unwrap());
}

/// Uniform dates, and the batch SQL alternative beside the pipeline: it
/// fails unless its tables equal the pipeline's cell for cell.
#[tokio::test(flavor = "multi_thread")]
async fn the_batch_sql_alternative_gives_the_pipelines_tables() {
    let broker = Broker::start();
    let db = Db::new().await;
    let report = bench(
        &db.url,
        Some(&broker),
        &["--dates", "uniform", "--sql-alternative"],
    );
    check_throughput(&report);
    assert_eq!(report["generated"]["late_percent"], 100.0);
    let alt = &report["sql_alternative"];
    assert_eq!(alt["same_tables_as_pipeline"], true);
    assert!(alt["events_per_second"].as_f64().unwrap() > 0.0);
    assert!(alt["rebuild_seconds"].as_f64().unwrap() > 0.0);
    // The readers' queries on both schemas, the same rows from each.
    let readers = report["readers_idle"].as_array().unwrap();
    assert_eq!(readers.len(), 6, "{readers:?}");
    for q in readers {
        assert_eq!(q["views"]["rows"], q["plain"]["rows"], "{q}");
        assert!(q["views"]["p50_ms"].as_f64().unwrap() > 0.0, "{q}");
        assert!(q["p50_ratio"].as_f64().unwrap() > 0.0, "{q}");
    }
    let find = |name: &str| {
        readers
            .iter()
            .find(|q| q["query"].as_str().unwrap().contains(name))
            .unwrap_or_else(|| panic!("{name} in {readers:?}"))
    };
    assert_eq!(
        find("daily_metrics")["views"]["rows"],
        1,
        "one row of totals"
    );
    assert!(find("one county")["views"]["rows"].as_u64().unwrap() > 0);
    assert!(find("by province")["views"]["rows"].as_u64().unwrap() > 0);
}

/// Freshness over a history: the history is applied and folded by a drain
/// first, then a following `run` gets only the offered load; the tables
/// are verified over both.
#[tokio::test(flavor = "multi_thread")]
async fn freshness_is_measured_over_a_history() {
    let broker = Broker::start();
    let db = Db::new().await;
    let report = bench(
        &db.url,
        Some(&broker),
        &[
            "--rate",
            "300",
            "--seconds",
            "3",
            "--history",
            "2000",
            "--readers",
        ],
    );
    assert_eq!(report["mode"], "freshness");
    let history = report["history"]["messages"].as_u64().unwrap();
    assert!(history > 2000, "2,000 activity events and their missions");
    let total = report["generated"]["messages"].as_u64().unwrap();
    assert_eq!(
        report["history"]["process"]["messages"].as_u64().unwrap(),
        history,
        "the drain read the history"
    );
    assert!(total > history, "load was offered after the history");
    let p = &report["processes"][0];
    assert!(p["messages"].as_u64().unwrap() >= total - history);
    assert!(p["freshness_max_ms"].as_u64().unwrap() > 0);
    // The analysts' queries ran during the load, and idle after a fold.
    let during = report["readers_during"].as_array().unwrap();
    assert_eq!(during.len(), 6);
    assert!(
        during.iter().all(|q| q["samples"].as_u64().unwrap() > 0),
        "{during:?}"
    );
    let idle = report["readers_idle"].as_array().unwrap();
    assert!(
        idle.iter()
            .all(|q| q["views"]["p50_ms"].as_f64().unwrap() > 0.0),
        "{idle:?}"
    );
    assert!(
        idle.iter().all(|q| q.get("plain").is_none()),
        "no plain tables here"
    );
    assert!(
        report["pending_max_rows"].as_u64().unwrap() > 0,
        "deltas were pending"
    );
    assert_eq!(
        report["lag_at_stop"], 0,
        "a light load leaves nothing behind"
    );
}

/// Sustained mode: stepped loads, each reported, until one falls behind
/// (or `--steps`); the tables verify after the last step.
#[tokio::test(flavor = "multi_thread")]
async fn sustained_mode_steps_the_load_up() {
    let broker = Broker::start();
    let db = Db::new().await;
    let report = bench(
        &db.url,
        Some(&broker),
        &[
            "--rate",
            "200",
            "--seconds",
            "3",
            "--history",
            "1000",
            "--sustained",
            "--steps",
            "2",
        ],
    );
    assert_eq!(report["mode"], "sustained");
    let steps = report["steps"].as_array().unwrap();
    // A step that fell behind (a loaded test machine) ends the search.
    assert!((1..=2).contains(&steps.len()), "{steps:?}");
    for s in steps {
        assert!(s["offered_per_second"].as_f64().unwrap() > 0.0, "{s}");
        assert!(s["freshness_p99_ms"].as_u64().unwrap() > 0, "{s}");
        assert!(s["pending_max_rows"].as_u64().is_some(), "{s}");
    }
    let kept: Vec<&Value> = steps.iter().take_while(|s| s["kept_up"] == true).collect();
    assert_eq!(
        kept.len() + usize::from(kept.len() < steps.len()),
        steps.len()
    );
    match kept.last() {
        Some(s) => assert_eq!(
            report["highest_sustained_per_second"],
            s["offered_per_second"]
        ),
        None => assert!(report["highest_sustained_per_second"].is_null()),
    }
    if steps.len() == 2 {
        assert!(steps[1]["offered_per_second"].as_f64() > steps[0]["offered_per_second"].as_f64());
    }
}

#[tokio::test]
async fn a_small_stage_benchmark_verifies_its_tables_and_splits_the_time() {
    let db = Db::new().await;
    check_stages(&bench(&db.url, None, &["--stages"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_benchmark_runs_on_sqlite_too() {
    let broker = Broker::start();
    let db = SqliteDb::new(); // bench writes bench*.db beside it, and removes it
    check_throughput(&bench(&db.url, Some(&broker), &[]));
    check_stages(&bench(&db.url, None, &["--stages"]));
    let left: Vec<_> = std::fs::read_dir(db.path.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("bench"))
        .collect();
    assert!(left.is_empty(), "scratch databases removed: {left:?}");
}
