//! The embedded backend (`database.url = sqlite://…`) end to end: the demo
//! with no services at all, the real binary against tansu with restarts,
//! a new consumer group and redelivered events, and a rebuild. The model
//! property over random histories runs on SQLite in `tests/exactness.rs`,
//! the fence in `tests/fencing.rs`.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::app::App;
use support::model;
use support::workload::generate;
use support::*;

/// The bundled sample as the pipeline's validator sees it, folded by the model.
fn sample_model() -> (model::Tables, usize) {
    let text = std::fs::read_to_string("examples/sample-events.jsonl").unwrap();
    let records: Vec<Record> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Record {
            headers: vec![(
                "content-type".into(),
                Some(b"application/cloudevents+json".to_vec()),
            )],
            value: Some(l.as_bytes().to_vec()),
            ..Record::default()
        })
        .collect();
    let decoded = support::history::decode(&records);
    let bad = decoded.iter().filter(|d| d.is_err()).count();
    let good: Vec<schemas::Event> = decoded.into_iter().filter_map(Result::ok).collect();
    (model::fold(&good, &schemas::Regions::shipped()), bad)
}

/// Runs `cmd` to completion within `limit`; returns (success, stdout, stderr).
fn run_to_end(mut cmd: Command, limit: Duration) -> (bool, String, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_needs_no_services_and_its_tables_equal_the_model() {
    let dir = SqliteDb::new();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_outreach"));
    // Nothing from the environment may point it at a real service.
    for (k, _) in std::env::vars() {
        if k.starts_with("OUTREACH") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.args(["demo", "--database"]).arg(&dir.path);
    // Millisecond timestamps: the window is widened to whole milliseconds.
    let started = chrono::Utc::now() - chrono::TimeDelta::milliseconds(1);
    let (ok, stdout, stderr) = run_to_end(cmd, Duration::from_secs(180));
    let ended = chrono::Utc::now();
    assert!(ok, "demo failed:\n{stdout}\n{stderr}");

    let (mut want, bad) = sample_model();
    let pool = dir.pool().await;
    let got = model::load_sqlite(&pool).await;
    // The demo publishes the sample as it runs: each fact arrives then
    // (docs/contract.md, "Reporting timeliness"), so the model takes the
    // arrivals read back once each is seen to lie in the run.
    for (key, (first, revision)) in &got.arrivals {
        for at in [first, revision] {
            assert!(
                at.is_some_and(|t| started <= t && t <= ended),
                "{key:?} arrived at {at:?}, not during the demo ({started} to {ended})"
            );
        }
    }
    want.restamp(&got.arrivals);
    model::assert_same(&got, &want, "demo");
    assert_consistent_sqlite(&pool).await;
    assert_eq!(bad, 3, "the sample has three bad lines");
    // The model compares program ids; the names come from the dispatches.
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM programs WHERE name IS NOT NULL ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(names.len(), 7, "{names:?}");
    assert!(
        names.contains(&"Telemedicine network".to_owned()),
        "{names:?}"
    );

    // What it prints: every program of the sample by name, the country's
    // row, the quarantine with its three lines, and where the file is.
    for program in [
        "Healthy China Tour",
        "Partner assistance to Yonghe County",
        "National regional medical centre, Gansu",
        "Chinese medical team in Morocco",
    ] {
        assert!(
            stdout.to_lowercase().contains(&program.to_lowercase()),
            "{program} missing from:\n{stdout}"
        );
    }
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("China") && l.contains("country")),
        "the country's row:\n{stdout}"
    );
    let quarantined: i64 = sqlx::query_scalar("SELECT count(*) FROM quarantine")
        .fetch_one(&dir.pool().await)
        .await
        .unwrap();
    assert_eq!(quarantined, 3);
    assert!(stdout.contains("Quarantined"), "{stdout}");
    assert!(
        stdout.contains(&dir.path.display().to_string()),
        "names the database file:\n{stdout}"
    );
    assert!(
        stdout.contains("sqlite3 "),
        "says how to query it:\n{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn restarts_new_groups_and_redelivery_change_nothing_on_sqlite() {
    let app = App::spawn_sqlite(3).await;
    let (broker, db) = (&app.broker, &app.db);
    let w = generate(7, 3_000);
    let (first, rest) = w.records.split_at(1_200);

    // The real binary, in two runs with a different consumer group each: the
    // second group has no Kafka offsets, so only the database says where
    // each partition resumes.
    broker.producer().send(first).await;
    let mut run = outreach_command_to(broker, &db.url, &unique("a"));
    run.args(["run", "--until-caught-up"]);
    let (ok, _, stderr) = run_to_end(run, Duration::from_secs(120));
    assert!(ok, "first run: {stderr}");

    // The rest, plus every record of the first part sent again.
    broker.producer().send(rest).await;
    broker.producer().send(first).await;
    let mut run = outreach_command_to(broker, &db.url, &unique("b"));
    run.args(["run", "--until-caught-up"]);
    let (ok, _, stderr) = run_to_end(run, Duration::from_secs(120));
    assert!(ok, "second run: {stderr}");

    let pool = db.pool().await;
    support::workload::assert_matches_sqlite(&pool, &w).await;
    let decoded = support::history::decode(&w.records);
    let bad = decoded.iter().filter(|d| d.is_err()).count() as i64;
    let quarantined: i64 = sqlx::query_scalar("SELECT count(*) FROM quarantine")
        .fetch_one(&pool)
        .await
        .unwrap();
    // Bad records of the first part were sent twice, at two offsets.
    let bad_first = support::history::decode(first)
        .iter()
        .filter(|d| d.is_err())
        .count() as i64;
    assert_eq!(
        quarantined,
        bad + bad_first,
        "each bad message once per offset"
    );
    // Kept whole: the bytes as they were sent.
    let payloads: std::collections::HashSet<Vec<u8>> =
        sqlx::query_scalar("SELECT payload FROM quarantine")
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let mut checked = 0;
    for (r, d) in w.records.iter().zip(&decoded) {
        if let (Err(_), Some(v)) = (d, &r.value) {
            assert!(payloads.contains(v), "payload kept byte for byte");
            checked += 1;
        }
    }
    assert!(checked > 0, "the workload has bad messages with payloads");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rebuild_on_sqlite_restores_the_incremental_tables() {
    let app = App::spawn_sqlite(2).await;
    let (broker, db) = (&app.broker, &app.db);
    let w = generate(11, 3_000);
    broker.producer().send(&w.records).await;
    let mut s = settings_to(broker, &db.url, &unique("g"));
    s.ingest.batch_max_messages = 300;
    drain(&s).await;
    let incremental = model::load_sqlite(&db.pool().await).await;
    assert!(incremental.cells() > 500, "a real workload");

    let writer = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    for sql in [
        "UPDATE regional_cells SET value = value + 100 WHERE region_code = 'CN' AND period_type = 'year'",
        "DELETE FROM daily_cells WHERE day = (SELECT min(day) FROM daily_cells)",
        "INSERT INTO program_cells VALUES ('ghost', 'year', '2020-01-01', 'surgeries', 700, '2020-01-01T00:00:00Z')",
        "DELETE FROM missions WHERE rowid IN (SELECT rowid FROM missions LIMIT 1)",
    ] {
        sqlx::query(sql).execute(&writer).await.unwrap();
    }
    writer.close().await;
    assert_ne!(
        model::load_sqlite(&db.pool().await).await,
        incremental,
        "the damage shows"
    );
    outreach::rebuild::rebuild(&s).await.unwrap();
    assert_eq!(model::load_sqlite(&db.pool().await).await, incremental);
}

#[test]
fn an_in_memory_sqlite_url_is_refused_with_the_key() {
    let out = Command::new(env!("CARGO_BIN_EXE_outreach"))
        .arg("check-config")
        .env("OUTREACH__DATABASE__URL", "sqlite::memory:")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("database.url") && stderr.contains("sqlite://outreach.db"),
        "{stderr}"
    );
}

/// SQL that moves half of the stored totals back to pending deltas, each
/// split as (v + 7, -7): half the `daily_metrics` cells, and every cell of
/// half the regions and half the programs, whose day cells become day
/// deltas (their other periods' cells are the sums of those days, which
/// the views and the fold spread back).
const UNFOLD_HALF: [&str; 9] = [
    "CREATE TEMP TABLE half AS SELECT * FROM daily_cells
     WHERE day <= (SELECT day FROM daily_cells ORDER BY day
                   LIMIT 1 OFFSET (SELECT count(*) / 2 FROM daily_cells))",
    "INSERT INTO daily_deltas (day, institution_id, program_id, mission_id, facility_id,
       region_code, metric, dims, value)
     SELECT day, institution_id, program_id, mission_id, facility_id,
       region_code, metric, dims, value + 7 FROM half
     UNION ALL SELECT day, institution_id, program_id, mission_id, facility_id,
       region_code, metric, dims, -7 FROM half",
    "DELETE FROM daily_cells WHERE (day, institution_id, program_id, mission_id, facility_id,
       region_code, metric, dims) IN (SELECT day, institution_id, program_id, mission_id,
       facility_id, region_code, metric, dims FROM half)",
    "CREATE TEMP TABLE regions_moved AS SELECT DISTINCT region_code FROM regional_cells
     ORDER BY region_code LIMIT (SELECT count(DISTINCT region_code) / 2 FROM regional_cells)",
    "INSERT INTO regional_deltas (region_code, region_level, day, metric, value, updated_at)
     SELECT region_code, region_level, period_start, metric, value + 7, updated_at
     FROM regional_cells WHERE period_type = 'day' AND region_code IN regions_moved
     UNION ALL SELECT region_code, region_level, period_start, metric, -7, updated_at
     FROM regional_cells WHERE period_type = 'day' AND region_code IN regions_moved",
    "DELETE FROM regional_cells WHERE region_code IN regions_moved",
    "CREATE TEMP TABLE programs_moved AS SELECT DISTINCT program_id FROM program_cells
     ORDER BY program_id LIMIT (SELECT count(DISTINCT program_id) / 2 FROM program_cells)",
    "INSERT INTO program_deltas (program_id, day, metric, value, updated_at)
     SELECT program_id, period_start, metric, value + 7, updated_at
     FROM program_cells WHERE period_type = 'day' AND program_id IN programs_moved
     UNION ALL SELECT program_id, period_start, metric, -7, updated_at
     FROM program_cells WHERE period_type = 'day' AND program_id IN programs_moved",
    "DELETE FROM program_cells WHERE program_id IN programs_moved",
];

async fn pending(pool: &sqlx::SqlitePool) -> i64 {
    sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM daily_deltas) + (SELECT count(*) FROM regional_deltas)
              + (SELECT count(*) FROM program_deltas)",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Compaction on SQLite moves totals between cells and deltas, never
/// changes what analysts read: the views give the same rows with half the
/// totals pending (the periods spread in SQL), and after the fold (the
/// periods spread in Rust).
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_totals_read_the_same_folded_unfolded_and_folded_again() {
    let app = App::spawn_sqlite(2).await;
    let (broker, db) = (&app.broker, &app.db);
    let w = generate(5, 3_000);
    broker.producer().send(&w.records).await;
    let mut s = settings_to(broker, &db.url, &unique("g"));
    s.ingest.batch_max_messages = 300;
    // No periodic fold: only the one that ends a drain.
    s.database.compact_interval_ms = 3_600_000;
    let report = drain(&s).await;
    assert!(report.compaction.deltas > 0, "the drain ended with a fold");
    let reader = db.pool().await;
    assert_eq!(pending(&reader).await, 0, "the drain folded every delta");
    let folded = model::load_sqlite(&reader).await;
    assert!(folded.cells() > 1_000, "a real workload");

    let writer = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    let mut c = writer.acquire().await.unwrap();
    for sql in UNFOLD_HALF {
        sqlx::query(sql).execute(&mut *c).await.unwrap();
    }
    drop(c);
    writer.close().await;
    assert!(pending(&reader).await > 1_000, "half the totals pending");
    model::assert_same(&model::load_sqlite(&reader).await, &folded, "unfolded");

    let sink = sink::Sink::connect(&sink::Settings::new(&db.url))
        .await
        .unwrap();
    let before = sink.pending().await.unwrap();
    assert_eq!(before.rows() as i64, pending(&reader).await, "{before:?}");
    assert!(before.oldest.is_some(), "{before:?}");
    let done = sink
        .compact(sink::Share::Alone)
        .await
        .unwrap()
        .expect("SQLite always folds");
    assert!(done.deltas > 0 && done.cells > 0, "{done:?}");
    assert_eq!(done.lanes, 2, "a pool of four folds in two lanes");
    assert_eq!(sink.pending().await.unwrap(), sink::Pending::default());
    sink.close().await;
    assert_eq!(pending(&reader).await, 0, "folded again");
    model::assert_same(&model::load_sqlite(&reader).await, &folded, "folded again");
    support::workload::assert_matches_sqlite(&reader, &w).await;
}

/// The SQL that spreads day deltas to periods in the views agrees with the
/// reference `Period::start` on every day of three decades (leap years,
/// ISO weeks across new year, quarters).
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_period_starts_match_the_reference() {
    let db = SqliteDb::new();
    let sink = sink::Sink::connect(&sink::Settings::new(&db.url))
        .await
        .unwrap();
    sink.migrate().await.unwrap();
    sink.close().await;
    let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    // One delta per day, its day as its metric.
    sqlx::query(
        "WITH RECURSIVE d(day) AS (SELECT '1999-12-01' UNION ALL
           SELECT date(day, '+1 day') FROM d WHERE day < '2031-01-31')
         INSERT INTO regional_deltas (region_code, region_level, day, metric, value, updated_at)
         SELECT 'CN', 'country', day, day, 1, '' FROM d",
    )
    .execute(&pool)
    .await
    .unwrap();
    let rows: Vec<(chrono::NaiveDate, String, chrono::NaiveDate)> =
        sqlx::query_as("SELECT metric, period_type, period_start FROM regional_pending")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_period_starts(rows, 11_385);
    pool.close().await;
}

/// A file written by a build before the deltas (migration 0001 only) keeps
/// every total through the upgrade: the roll-ups' rows move into the cells
/// (REAL values to integer hundredths, no mission to ''), and the views
/// read them back as they were; deltas then fold onto them.
#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_from_the_first_sqlite_schema_keeps_every_total() {
    let db = SqliteDb::new();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&db.path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    migrator_before("sqlite", "0002")
        .await
        .run(&pool)
        .await
        .unwrap();
    for sql in [
        "INSERT INTO daily_metrics VALUES
           ('2024-03-05', 'h1', 'p', NULL, 'f1', '620921', 'surgeries', '{}', 3.0),
           ('2024-03-05', 'h1', 'p', 'm1', 'f1', '620921', 'expert_days', '{}', 12.5)",
        "INSERT INTO regional_metrics VALUES
           ('620921', 'county', 'day', '2024-03-05', 'expert_days', 12.5, '2024-03-05T10:00:00Z'),
           ('620921', 'county', 'year', '2024-01-01', 'expert_days', 0.07, '2024-03-05T10:00:00Z')",
        "INSERT INTO program_metrics VALUES
           ('p', 'month', '2024-03-01', 'surgeries', 3.0, '2024-03-05T10:00:00Z')",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;

    let sink = sink::Sink::connect(&sink::Settings::new(&db.url))
        .await
        .unwrap();
    sink.migrate().await.unwrap();
    let reader = db.pool().await;
    let daily: Vec<(Option<String>, String, f64)> =
        sqlx::query_as("SELECT mission_id, metric, value FROM daily_metrics ORDER BY metric")
            .fetch_all(&reader)
            .await
            .unwrap();
    assert_eq!(
        daily,
        [
            (Some("m1".to_owned()), "expert_days".to_owned(), 12.5),
            (None, "surgeries".to_owned(), 3.0)
        ]
    );
    let regional: Vec<(String, String, f64, String)> = sqlx::query_as(
        "SELECT period_type, period_start, value, updated_at FROM regional_metrics
         ORDER BY period_type",
    )
    .fetch_all(&reader)
    .await
    .unwrap();
    assert_eq!(
        regional,
        [
            (
                "day".into(),
                "2024-03-05".into(),
                12.5,
                "2024-03-05T10:00:00Z".into()
            ),
            (
                "year".into(),
                "2024-01-01".into(),
                0.07,
                "2024-03-05T10:00:00Z".into()
            ),
        ]
    );
    let program: f64 = sqlx::query_scalar("SELECT value FROM program_metrics")
        .fetch_one(&reader)
        .await
        .unwrap();
    assert_eq!(program, 3.0);

    // A later day-grain delta of the same county and metric: pending, then
    // folded, it adds to the day's cell and to the year's.
    let writer = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    sqlx::query(
        "INSERT INTO regional_deltas (region_code, region_level, day, metric, value, updated_at)
         VALUES ('620921', 'county', '2024-03-05', 'expert_days', 150, '2024-03-06T00:00:00Z')",
    )
    .execute(&writer)
    .await
    .unwrap();
    writer.close().await;
    let year = "SELECT value FROM regional_metrics WHERE period_type = 'year'";
    let pending: f64 = sqlx::query_scalar(year).fetch_one(&reader).await.unwrap();
    sink.compact(sink::Share::Beside).await.unwrap();
    let folded: f64 = sqlx::query_scalar(year).fetch_one(&reader).await.unwrap();
    assert_eq!((pending, folded), (1.57, 1.57));
    let day: f64 =
        sqlx::query_scalar("SELECT value FROM regional_metrics WHERE period_type = 'day'")
            .fetch_one(&reader)
            .await
            .unwrap();
    assert_eq!(day, 14.0);
    sink.close().await;
}

/// SQLite would turn a cell's sum past 2^63 - 1 hundredths into an inexact
/// REAL without a word; migration 0003 refuses it instead. With the
/// country's yearly total of its largest metric at `i64::MAX` (a stand-in
/// for ~92 million maximal events), more events make that fold fail, with
/// the error, while the other tables fold; the cell keeps its exact integer
/// and its deltas stay pending. Once it fits again, the next fold is exact.
#[tokio::test(flavor = "multi_thread")]
async fn a_sum_beyond_63_bits_is_refused_on_sqlite_never_stored_inexact() {
    let app = App::spawn_sqlite(2).await;
    let (broker, db) = (&app.broker, &app.db);
    let w = generate(11, 3_000);
    let (first, rest) = w.records.split_at(w.records.len() / 2);
    let mut s = settings_to(broker, &db.url, &unique("g"));
    s.database.compact_interval_ms = 3_600_000;
    broker.producer().send(first).await;
    drain(&s).await;
    let writer = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    let (country, metric, year, stored): (String, String, String, i64) = sqlx::query_as(
        "SELECT region_code, metric, period_start, value FROM regional_cells
         WHERE region_level = 'country' AND period_type = 'year'
         ORDER BY value DESC LIMIT 1",
    )
    .fetch_one(&writer)
    .await
    .unwrap();
    let raised = i64::MAX - stored;
    let cell = "region_code = ?1 AND metric = ?2 AND period_type = 'year' AND period_start = ?3";
    let shift =
        |sign: &str| format!("UPDATE regional_cells SET value = value {sign} ?4 WHERE {cell}");
    sqlx::query(sqlx::AssertSqlSafe(shift("+")))
        .bind(&country)
        .bind(&metric)
        .bind(&year)
        .bind(raised)
        .execute(&writer)
        .await
        .unwrap();

    broker.producer().send(rest).await;
    let run = tokio::time::timeout(
        Duration::from_secs(120),
        outreach::pipeline::run(&s, ingest::Mode::UntilCaughtUp, std::future::pending()),
    )
    .await
    .expect("the run ends");
    let Err(failed) = run else {
        panic!("the drain's fold took the overflow without an error");
    };
    assert!(
        format!("{failed:#}").contains("integer overflow"),
        "{failed:#}"
    );
    let (value, kind): (i64, String) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT value, typeof(value) FROM regional_cells WHERE {cell}"
    )))
    .bind(&country)
    .bind(&metric)
    .bind(&year)
    .fetch_one(&writer)
    .await
    .unwrap();
    assert_eq!(
        (value, kind.as_str()),
        (i64::MAX, "integer"),
        "never stored inexact"
    );
    let left: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM daily_deltas), (SELECT count(*) FROM regional_deltas),
                (SELECT count(*) FROM program_deltas)",
    )
    .fetch_one(&writer)
    .await
    .unwrap();
    assert_eq!(left.0, 0, "daily deltas folded");
    assert_eq!(left.2, 0, "program deltas folded");
    assert!(
        left.1 > 0,
        "regional deltas of the failing range stay pending"
    );
    // One lane (daily, regional, program in turn): the program table,
    // after the failing regional one, still folds.
    sqlx::query(
        // A pair that cancels: the totals stay the model's.
        "INSERT INTO program_deltas (program_id, day, metric, value, updated_at)
         SELECT program_id, period_start, metric, v, updated_at
         FROM (SELECT * FROM program_cells WHERE period_type = 'day' LIMIT 1),
              (SELECT 100 AS v UNION ALL SELECT -100)",
    )
    .execute(&writer)
    .await
    .unwrap();
    let sink = sink::Sink::connect(&sink::Settings::new(&db.url))
        .await
        .unwrap();
    let failed = sink.compact(sink::Share::Beside).await;
    assert!(
        failed
            .as_ref()
            .is_err_and(|e| e.to_string().contains("integer overflow")),
        "{failed:?}"
    );
    let program: i64 = sqlx::query_scalar("SELECT count(*) FROM program_deltas")
        .fetch_one(&writer)
        .await
        .unwrap();
    assert_eq!(
        program, 0,
        "the program table folded despite the regional failure"
    );

    // Once the cell fits again (the stand-in taken back out), a fold is
    // exact.
    sqlx::query(sqlx::AssertSqlSafe(shift("-")))
        .bind(&country)
        .bind(&metric)
        .bind(&year)
        .bind(raised)
        .execute(&writer)
        .await
        .unwrap();
    writer.close().await;
    sink.compact(sink::Share::Alone).await.unwrap();
    assert_eq!(sink.pending().await.unwrap(), sink::Pending::default());
    sink.close().await;
    support::workload::assert_matches_sqlite(&db.pool().await, &w).await;
}
