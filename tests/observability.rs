//! The operator's endpoint on a running `outreach run`: `/healthz`,
//! `/readyz` once partitions are assigned, `/metrics` counting what the
//! tables got; and SIGTERM ends the process cleanly.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use schemas::{Metric, Period};
use serde_json::json;
use support::app::{App, regional};
use support::events::*;
use support::faults::{get, wait_for};
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn metrics_health_and_readiness_are_served_and_sigterm_exits_cleanly() {
    let app = App::spawn(2).await;
    let (broker, db) = (&app.broker, &app.db);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = outreach_command(broker, db, &unique("g"))
        .arg("run")
        .env("OUTREACH__HTTP__ADDRESS", &addr)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    wait_for(Duration::from_secs(60), "/healthz", || {
        get(&addr, "/healthz").is_some_and(|(s, b)| s == 200 && b == "ok\n")
    });
    wait_for(Duration::from_secs(60), "/readyz to turn ready", || {
        get(&addr, "/readyz").is_some_and(|(s, _)| s == 200)
    });

    let mut bad = activity_record(&activity(
        "h1",
        "e2",
        "r2",
        "surgeries",
        json!(2.5),
        "2024-01-01",
        "620921",
    ));
    bad.key = Some(b"bad".to_vec());
    broker
        .producer()
        .send(&[
            activity_record(&activity(
                "h1",
                "e1",
                "r1",
                "surgeries",
                json!(3),
                "2024-01-01",
                "620921",
            )),
            bad,
        ])
        .await;
    wait_for(Duration::from_secs(60), "the batch in /metrics", || {
        get(&addr, "/metrics").is_some_and(|(_, m)| m.contains("outreach_events_accepted_total 1"))
    });
    wait_for(
        Duration::from_secs(60),
        "per-partition lag in /metrics",
        || {
            get(&addr, "/metrics").is_some_and(|(_, m)| {
                m.contains("outreach_consumer_lag{") && m.contains("outreach_broker_reachable 1")
            })
        },
    );
    wait_for(
        Duration::from_secs(60),
        "the deltas left to fold in /metrics",
        || {
            get(&addr, "/metrics").is_some_and(|(_, m)| {
                m.contains("outreach_pending_deltas{table=\"regional_deltas\"}")
                    && m.contains("outreach_oldest_pending_delta_seconds")
                    && m.contains("outreach_compactions_total")
            })
        },
    );
    let (_, m) = get(&addr, "/metrics").unwrap();
    for line in [
        "outreach_quarantined_total{error_code=\"value_not_integer\"} 1",
        "outreach_batches_total 1",
        "outreach_assigned_partitions 4",
    ] {
        assert!(m.contains(line), "{line} in\n{m}");
    }
    for family in [
        "outreach_freshness_seconds_bucket",
        "outreach_transaction_seconds_count",
        "outreach_messages_total{topic=",
        // Buckets that hold a backfill's freshness, and batch sizes in
        // messages rather than seconds.
        "outreach_freshness_seconds_bucket{le=\"3600\"}",
        "outreach_batch_messages_bucket{le=\"20000\"}",
    ] {
        assert!(m.contains(family), "{family} in\n{m}");
    }
    // Every family the pipeline exports says what it is.
    let families: std::collections::BTreeSet<&str> = m
        .lines()
        .filter(|l| l.starts_with("outreach_"))
        .map(|l| l.split(['{', ' ']).next().unwrap())
        .map(|n| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s))
                .unwrap_or(n)
        })
        .collect();
    assert!(families.len() > 15, "{families:?}");
    for f in families {
        assert!(m.contains(&format!("# HELP {f} ")), "HELP for {f} in\n{m}");
    }

    // SIGTERM: finish, commit, exit 0.
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "outreach did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    let pool = db.pool().await;
    assert_eq!(
        regional(&pool, "CN", Period::Year, "2024-01-01", Metric::Surgeries).await,
        "3"
    );
}
