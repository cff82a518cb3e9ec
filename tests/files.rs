//! `outreach validate` and `outreach publish` on the bundled sample: bad
//! lines are reported with their numbers and never sent; good ones arrive.

mod support;

use std::process::Command;

use schemas::{Metric, Period};
use support::app::{App, regional};
use support::*;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample-events.jsonl");

#[test]
fn validate_reports_each_bad_line_with_its_number_and_reason() {
    let o = Command::new(env!("CARGO_BIN_EXE_outreach"))
        .args(["validate", SAMPLE])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "a file with bad lines fails");
    let err = String::from_utf8_lossy(&o.stderr);
    let bad: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("sample-events.jsonl:"))
        .collect();
    assert_eq!(bad.len(), 3, "{err}");
    assert!(
        bad[0].contains(":21: unknown_field: data.facilty_id"),
        "{}",
        bad[0]
    );
    assert!(bad[1].contains(":41: unknown_region"), "{}", bad[1]);
    assert!(bad[2].contains(":61: malformed_json"), "{}", bad[2]);
    assert!(err.contains("232 valid, 3 invalid"), "{err}");

    let good = std::env::temp_dir().join(unique("good.jsonl"));
    std::fs::write(
        &good,
        std::fs::read_to_string(SAMPLE)
            .unwrap()
            .lines()
            .take(10)
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_outreach"))
        .arg("validate")
        .arg(&good)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_sends_the_good_lines_and_the_pipeline_counts_them() {
    let app = App::spawn(3).await;
    let (broker, db) = (&app.broker, &app.db);
    let o = outreach_command(broker, db, "unused")
        .args(["publish", SAMPLE])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "bad lines make publish exit 1: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("232 events published"));

    let report = drain(&settings(broker, db, &unique("g"))).await;
    assert_eq!(report.ingest.messages, 232, "bad lines were not sent");
    assert_eq!(report.quarantined, 0);
    let pool = db.pool().await;
    let missions: i64 = sqlx::query_scalar("SELECT count(*) FROM outreach.missions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(missions, 21, "seven programs, three missions each");
    let programs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outreach.programs WHERE name IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(programs, 7);
    assert_eq!(
        regional(
            &pool,
            "CN",
            Period::Year,
            "2023-01-01",
            Metric::MissionsDispatched
        )
        .await,
        "18",
        "three of the 21 are in Morocco"
    );
    assert_eq!(
        regional(
            &pool,
            "MA",
            Period::Year,
            "2023-01-01",
            Metric::MissionsDispatched
        )
        .await,
        "3"
    );
    assert_consistent(&pool).await;
}

const TALLIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tallies.csv");

#[test]
fn validate_checks_a_csv_of_activity_tallies_row_by_row() {
    let o = Command::new(env!("CARGO_BIN_EXE_outreach"))
        .args(["validate", TALLIES])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    for expected in [
        "tallies.csv:5: unknown_region",
        "tallies.csv:6: invalid_dim_value: data.dims.role",
        "tallies.csv:7: csv: 8 fields where the header has 10",
        "3 valid, 3 invalid",
    ] {
        assert!(err.contains(expected), "{expected} in\n{err}");
    }
    let bad_header = std::env::temp_dir().join(format!("{}.csv", unique("bad-header")));
    std::fs::write(&bad_header, "institution_id,record_id,valeu\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_outreach"))
        .arg("validate")
        .arg(&bad_header)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unknown column \"valeu\""),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_sends_the_good_tallies_as_events_and_a_correction_replaces() {
    let app = App::spawn(2).await;
    let (broker, db) = (&app.broker, &app.db);
    for _ in 0..2 {
        // Twice: the same rows make the same event ids, so nothing doubles.
        let o = outreach_command(broker, db, "unused")
            .args(["publish", TALLIES])
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(String::from_utf8_lossy(&o.stderr).contains("3 events published"));
    }
    let report = drain(&settings(broker, db, &unique("g"))).await;
    assert_eq!(report.ingest.messages, 6, "only good rows were sent");
    let pool = db.pool().await;
    assert_eq!(
        regional(
            &pool,
            "141032",
            Period::Day,
            "2024-05-06",
            Metric::Surgeries
        )
        .await,
        "5",
        "revision 2 replaced revision 1"
    );
    assert_eq!(
        regional(
            &pool,
            "CN",
            Period::Year,
            "2024-01-01",
            Metric::MedicinesDonatedValue
        )
        .await,
        "1234.56"
    );
    assert_consistent(&pool).await;
}
