//! `outreach rebuild` gives exactly the incrementally maintained tables:
//! after a workload of duplicates, corrections, withdrawals and missions is
//! applied batch by batch, the tables are damaged on purpose, and the
//! rebuild restores every cell; a reader holding a snapshot is not blocked.

mod support;

use std::time::Duration;

use sqlx::Connection;
use support::app::App;
use support::model;
use support::workload::generate;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_rebuild_restores_exactly_the_incrementally_maintained_tables() {
    let app = App::spawn(3).await;
    let (broker, db) = (&app.broker, &app.db);
    let w = generate(31, 6_000);
    broker.producer().send(&w.records).await;
    let mut s = settings(broker, db, &unique("g"));
    s.ingest.batch_max_messages = 400;
    drain(&s).await;
    let pool = db.pool().await;
    let incremental = model::load(&pool).await;
    assert!(incremental.cells() > 1_000, "a real workload");

    // Damage, to the stored cells and as pending deltas: drift in a
    // roll-up, lost daily cells, a stray row, a mission gone.
    for sql in [
        "UPDATE outreach.regional_cells SET value = value + 100 WHERE region_code = 'CN' AND period_type = 'year'",
        "INSERT INTO outreach.regional_deltas (region_code, region_level, day, metric, value)
         VALUES ('CN', 'country', '2020-01-01', 'surgeries', 100)",
        "DELETE FROM outreach.daily_cells WHERE ctid IN (SELECT ctid FROM outreach.daily_cells LIMIT 5)",
        "INSERT INTO outreach.program_deltas (program_id, day, metric, value)
         VALUES ('ghost', '2020-01-01', 'surgeries', 700)",
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

    let mut rebuild = outreach_command(broker, db, "unused");
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

#[tokio::test(flavor = "multi_thread")]
async fn rebuilds_while_a_pipeline_writes_leave_the_totals_exact() {
    let app = App::spawn(3).await;
    let (broker, db) = (&app.broker, &app.db);
    let w = generate(32, 12_000);
    let (first, second) = w.records.split_at(w.records.len() / 2);
    let producer = broker.producer();
    producer.send(first).await;
    let dir = std::env::temp_dir().join(unique("outreach-rebuild"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut run = outreach_command(broker, db, &unique("g"));
    run.env("OUTREACH__INGEST__BATCH_MAX_MESSAGES", "300");
    let p = support::faults::Running::spawn(run, &["run"], dir.join("run.log"));
    support::faults::wait_for(Duration::from_secs(60), "a committed batch", || {
        p.committed_batches() > 0
    });

    // Rebuilds interleaved with the pipeline's batches, more events arriving.
    for round in 0..3 {
        if round == 1 {
            producer.send(second).await;
        }
        let mut rebuild = outreach_command(broker, db, "unused");
        rebuild.arg("rebuild");
        let out = tokio::task::spawn_blocking(move || rebuild.output())
            .await
            .unwrap()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let pool = db.pool().await;
    support::workload::wait_until_matches(&pool, &w, Duration::from_secs(240)).await;
    let batches = p.committed_batches();
    assert!(p.terminate().success());
    assert!(
        batches > 3,
        "the pipeline kept committing ({batches} batches)"
    );

    // And the tables it left equal a rebuild of them.
    let incremental = model::load(&pool).await;
    let mut rebuild = outreach_command(broker, db, "unused");
    rebuild.arg("rebuild");
    let out = rebuild.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    model::assert_same(
        &model::load(&pool).await,
        &incremental,
        "after concurrent rebuilds",
    );
}

/// The progress lines of a long run, from JSON logs: (done, total) of
/// `task`.
fn progress(stderr: &[u8], task: &str) -> Vec<(u64, u64)> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["task"] == task)
        .map(|v| {
            let (done, total, left) = (&v["done"], &v["total"], &v["left"]);
            let (done, total) = (done.as_u64().unwrap(), total.as_u64().unwrap());
            assert_eq!(left.as_u64(), Some(total - done), "{v}");
            (done, total)
        })
        .collect()
}

/// `run --until-caught-up` and `rebuild` say how far along they are: the
/// messages left to the end offsets, the chunks done of the ledger's.
/// (Without a terminal, one log line every few seconds, the first at once.)
#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_and_a_rebuild_show_their_progress() {
    let app = App::spawn(2).await;
    let (broker, db) = (&app.broker, &app.db);
    let w = generate(7, 3_000);
    broker.producer().send(&w.records).await;

    let out = outreach_command(broker, db, &unique("g"))
        .args(["run", "--until-caught-up"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let caught_up = progress(&out.stderr, "catching up");
    // One member: the total grows to every message of both topics as its
    // partitions are assigned (maybe in steps), and the last line, said at
    // the end, has read them all.
    assert!(!caught_up.is_empty(), "a progress line");
    let all = w.records.len() as u64;
    assert_eq!(caught_up.last(), Some(&(all, all)), "{caught_up:?}");
    assert!(
        caught_up.windows(2).all(|w| w[0].0 <= w[1].0) && caught_up.iter().all(|p| p.1 <= all),
        "{caught_up:?}"
    );

    let out = outreach_command(broker, db, "unused")
        .arg("rebuild")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let chunks: u64 = stdout
        .split(" read in ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("chunks in {stdout:?}"));
    let rebuilt = progress(&out.stderr, "rebuild");
    assert_eq!(
        rebuilt.first(),
        Some(&(0, chunks)),
        "none done yet, of the total counted before the first read"
    );
    assert!(
        rebuilt
            .iter()
            .all(|&(done, total)| done <= total && total == chunks)
    );
}
