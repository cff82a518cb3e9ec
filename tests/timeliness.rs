//! Arrivals across the upgrade of an existing database
//! (docs/contract.md, "Reporting timeliness"): facts stored before
//! arrivals were kept have none, and keep none (a redelivery or a later
//! revision cannot tell when they first came); the views count them as
//! unknown, never as late or on time. How arrivals behave through crashes,
//! replays and rebuilds against the reference model: tests/resilience.rs
//! and tests/exactness.rs.

mod support;

use chrono::{DateTime, Utc};
use serde_json::json;
use support::app::App;
use support::events::*;
use support::*;

const FACT: &str =
    "INSERT INTO {schema}activity_facts (institution_id, record_id, revision, event_id,
    program_id, mission_id, facility_id, region_code, day, metric, dims, value)
  VALUES ('h1', 'a', 1, 'ea', 'p', NULL, 'f', '620921', '2024-03-05', 'surgeries', '{}', 300),
         ('h1', 'b', 1, 'eb', 'p', NULL, 'f', '620921', '2024-03-06', 'surgeries', '{}', 200)";

/// The two facts as events: `a` again (the same event), `b` revised.
fn deliveries(at: DateTime<Utc>) -> Vec<Record> {
    let event = |id: &str, record: &str, revision: i64, value: i64, day: &str| {
        let e = activity("h1", id, record, "surgeries", json!(value), day, "620921");
        let e = with(
            with(e, "revision", json!(revision)),
            "program_id",
            json!("p"),
        );
        Record {
            timestamp_ms: Some(at.timestamp_millis()),
            ..activity_record(&with(e, "facility_id", json!("f")))
        }
    };
    vec![
        event("ea", "a", 1, 3, "2024-03-05"),
        event("eb2", "b", 2, 5, "2024-03-06"),
    ]
}

type Arrivals = Vec<(String, Option<DateTime<Utc>>, Option<DateTime<Utc>>)>;
/// events, corrections, arrival_unknown, median_days, within_7_days.
type Row = (i64, i64, i64, Option<i64>, Option<f64>);

#[tokio::test(flavor = "multi_thread")]
async fn facts_stored_before_the_upgrade_keep_an_unknown_arrival_on_postgres() {
    let app = App::spawn(1).await;
    let pool = app.pool().await;
    migrator_before("postgres", "0008")
        .await
        .run(pool)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(FACT.replace("{schema}", "outreach.")))
        .execute(pool)
        .await
        .unwrap();

    let at: DateTime<Utc> = "2024-04-01T08:00:00Z".parse().unwrap();
    app.send(&deliveries(at)).await;
    app.drain().await; // migrates to the latest schema, then applies them

    let arrivals: Arrivals = sqlx::query_as(
        "SELECT record_id, first_arrived_at, revision_arrived_at FROM outreach.activity_facts
         ORDER BY record_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        arrivals,
        [("a".into(), None, None), ("b".into(), None, Some(at))],
        "a redelivery is no first arrival; a new revision's own arrival is known"
    );
    let row: Row = sqlx::query_as(
        "SELECT events, corrections, arrival_unknown, median_days, within_7_days::float8
         FROM outreach.reporting_timeliness",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(row, (2, 1, 2, None, None));
}

#[tokio::test(flavor = "multi_thread")]
async fn facts_stored_before_the_upgrade_keep_an_unknown_arrival_on_sqlite() {
    let app = App::spawn_sqlite(1).await;
    let db = &app.db;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&db.path)
        .create_if_missing(true);
    let old = sqlx::SqlitePool::connect_with(options).await.unwrap();
    migrator_before("sqlite", "0004")
        .await
        .run(&old)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(FACT.replace("{schema}", "")))
        .execute(&old)
        .await
        .unwrap();
    old.close().await;

    let at: DateTime<Utc> = "2024-04-01T08:00:00Z".parse().unwrap();
    app.send(&deliveries(at)).await;
    app.drain().await;

    let pool = app.pool().await;
    let arrivals: Arrivals = sqlx::query_as(
        "SELECT record_id, first_arrived_at, revision_arrived_at FROM activity_facts
         ORDER BY record_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        arrivals,
        [("a".into(), None, None), ("b".into(), None, Some(at))]
    );
    let row: Row = sqlx::query_as(
        "SELECT events, corrections, arrival_unknown, median_days, within_7_days
         FROM reporting_timeliness",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(row, (2, 1, 2, None, None));
}
