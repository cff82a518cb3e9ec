//! `outreach rebuild` gives exactly the incrementally maintained tables:
//! after a workload of duplicates, corrections, withdrawals and missions is
//! applied batch by batch, the tables are damaged on purpose, and the
//! rebuild restores every cell; a reader holding a snapshot is not blocked.

mod support;

use std::time::Duration;

use sqlx::Connection;
use support::model;
use support::workload::generate;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_rebuild_restores_exactly_the_incrementally_maintained_tables() {
    let broker = Broker::start();
    broker.contract_topics(3).await;
    let db = Db::new().await;
    let w = generate(31, 6_000);
    broker.producer().send(&w.records).await;
    let mut s = settings(&broker, &db, &unique("g"));
    s.ingest.batch_max_messages = 400;
    drain(&s).await;
    let pool = db.pool().await;
    let incremental = model::load(&pool).await;
    assert!(incremental.cells() > 1_000, "a real workload");

    // Damage: drift in a roll-up, a lost daily cell, a stray row, a mission gone.
    for sql in [
        "UPDATE outreach.regional_metrics SET value = value + 1 WHERE region_code = 'CN' AND period_type = 'year'",
        "DELETE FROM outreach.daily_metrics WHERE ctid IN (SELECT ctid FROM outreach.daily_metrics LIMIT 5)",
        "INSERT INTO outreach.program_metrics VALUES ('ghost', 'year', '2020-01-01', 'surgeries', 7, now())",
        "DELETE FROM outreach.missions WHERE ctid IN (SELECT ctid FROM outreach.missions LIMIT 1)",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    assert_ne!(model::load(&pool).await, incremental, "the damage shows");

    // A reader in the middle of a repeatable-read snapshot.
    let mut reader = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut reader)
        .await
        .unwrap();
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM outreach.daily_metrics")
        .fetch_one(&mut reader)
        .await
        .unwrap();

    let mut rebuild = outreach_command(&broker, &db, "unused");
    rebuild.arg("rebuild");
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::task::spawn_blocking(move || rebuild.output()),
    )
    .await
    .expect("the rebuild is not blocked by a reader")
    .unwrap()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("rebuilt from "));

    // The reader still sees its snapshot, then the rebuilt tables.
    let during: i64 = sqlx::query_scalar("SELECT count(*) FROM outreach.daily_metrics")
        .fetch_one(&mut reader)
        .await
        .unwrap();
    assert_eq!(during, before, "a reader's snapshot is untouched");
    sqlx::query("COMMIT").execute(&mut reader).await.unwrap();

    let rebuilt = model::load(&pool).await;
    model::assert_same(&rebuilt, &incremental, "rebuild vs incremental");
    assert_consistent(&pool).await;
    support::workload::assert_matches(&pool, &w).await;
}
