//! Compaction changes where the roll-ups' totals are kept, never what
//! analysts read: the views over stored cells and pending deltas give the
//! same rows whether a total sits in a cell, in several deltas, or in both,
//! and folding them changes nothing either.

mod support;

use support::app::App;
use support::model;
use support::workload::generate;
use support::*;

/// (cells, deltas, the deltas' columns in table order). The regional and
/// program deltas hold days: the views and the fold spread them to periods.
const STORAGE: [(&str, &str, &[&str]); 3] = [
    (
        "daily_cells",
        "daily_deltas",
        &[
            "day",
            "institution_id",
            "program_id",
            "mission_id",
            "facility_id",
            "region_code",
            "metric",
            "dims",
            "value",
        ],
    ),
    (
        "regional_cells",
        "regional_deltas",
        &[
            "region_code",
            "region_level",
            "day",
            "metric",
            "value",
            "updated_at",
        ],
    ),
    (
        "program_cells",
        "program_deltas",
        &["program_id", "day", "metric", "value", "updated_at"],
    ),
];

/// SQL that moves half the cells of `cells` back to `deltas`, each split as
/// (v + 7, -7). A day-grain table moves day cells and takes their values
/// out of the week, month, quarter and year cells too, as the fold will
/// add them back there.
fn unfold_half(cells: &str, deltas: &str, columns: &[&str]) -> String {
    let all = columns.join(", ");
    let plus = with_value(columns, "value + 7");
    let minus = with_value(columns, "-7");
    if cells == "daily_cells" {
        return format!(
            "WITH m AS (DELETE FROM outreach.{cells} WHERE ctid IN
               (SELECT ctid FROM outreach.{cells} ORDER BY ctid
                LIMIT (SELECT count(*) / 2 FROM outreach.{cells}))
               RETURNING {all})
             INSERT INTO outreach.{deltas} ({all})
             SELECT {plus} FROM m UNION ALL SELECT {minus} FROM m"
        );
    }
    let owner = columns[0];
    let returning = with(columns, &[("day", "period_start AS day")]);
    format!(
        "WITH m AS (DELETE FROM outreach.{cells} WHERE ctid IN
           (SELECT ctid FROM outreach.{cells} WHERE period_type = 'day' ORDER BY ctid
            LIMIT (SELECT count(*) / 2 FROM outreach.{cells} WHERE period_type = 'day'))
           RETURNING {returning}),
              d AS (INSERT INTO outreach.{deltas} ({all})
           SELECT {plus} FROM m UNION ALL SELECT {minus} FROM m)
         UPDATE outreach.{cells} c SET value = c.value - s.value
         FROM (SELECT m.{owner}, p.period_type, p.period_start, m.metric, sum(m.value) AS value
               FROM m CROSS JOIN LATERAL outreach.period_starts(m.day) p
               WHERE p.period_type <> 'day' GROUP BY 1, 2, 3, 4) s
         WHERE (c.{owner}, c.period_type, c.period_start, c.metric)
             = (s.{owner}, s.period_type, s.period_start, s.metric)"
    )
}

/// SQL selecting the deltas' columns of a tenth of the cells (day cells
/// only, for a day-grain table), values replaced by `value`.
fn some_cells_as_deltas(cells: &str, columns: &[&str], value: &str) -> String {
    let (select, filter) = if cells == "daily_cells" {
        (with_value(columns, value), "")
    } else {
        (
            with(columns, &[("day", "period_start"), ("value", value)]),
            "WHERE period_type = 'day'",
        )
    };
    format!(
        "SELECT {select} FROM outreach.{cells} {filter} ORDER BY ctid
         LIMIT (SELECT count(*) / 10 FROM outreach.{cells} {filter})"
    )
}

async fn count(pool: &sqlx::PgPool, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM outreach.{table}"
    )))
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn exec(pool: &sqlx::PgPool, sql: String) {
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(pool)
        .await
        .unwrap();
}

/// The column list with `value` replaced by `expr`.
fn with_value(columns: &[&str], expr: &str) -> String {
    with(columns, &[("value", expr)])
}

/// The column list with some columns replaced by expressions.
fn with(columns: &[&str], replaced: &[(&str, &str)]) -> String {
    columns
        .iter()
        .map(|c| {
            replaced
                .iter()
                .find(|(name, _)| name == c)
                .map_or(*c, |(_, expr)| *expr)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test(flavor = "multi_thread")]
async fn totals_read_the_same_folded_unfolded_and_folded_again() {
    let app = App::spawn(2).await;
    let (broker, db) = (&app.broker, &app.db);
    let w = generate(5, 3_000);
    broker.producer().send(&w.records).await;
    let mut s = settings(broker, db, &unique("g"));
    s.ingest.batch_max_messages = 300;
    // No periodic fold: only the one that ends a drain.
    s.database.compact_interval_ms = 3_600_000;
    let report = drain(&s).await;
    assert!(report.compaction.deltas > 0, "the drain ended with a fold");
    let pool = db.pool().await;
    for (cells, deltas, _) in STORAGE {
        assert!(count(&pool, cells).await > 0, "{cells} holds the totals");
        assert_eq!(count(&pool, deltas).await, 0, "{deltas} is folded");
        // Vacuumed after that fold: readers scan no page of dead deltas.
        let bytes: i64 = sqlx::query_scalar("SELECT pg_relation_size($1::regclass)")
            .bind(format!("outreach.{deltas}"))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(bytes, 0, "{deltas} vacuumed after the drain's fold");
    }
    let folded = model::load(&pool).await;
    assert!(folded.cells() > 1_000, "a real workload");
    support::workload::assert_matches(&pool, &w).await;

    unfold(&pool).await;
    model::assert_same(&model::load(&pool).await, &folded, "unfolded");
    assert_consistent(&pool).await;

    // A pool of four: two lanes. Meanwhile a reader reads every view's
    // totals, one statement each, and must find them the same throughout.
    let totals = view_totals(&pool).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = tokio::spawn({
        let (pool, stop, totals) = (pool.clone(), stop.clone(), totals.clone());
        async move {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                assert_eq!(view_totals(&pool).await, totals, "read during a fold");
                reads += 1;
            }
            reads
        }
    });
    fold_after_a_drain(&db.url, 4, &pool).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.await.unwrap() > 0, "the reader read during the fold");
    assert_eq!(view_totals(&pool).await, totals, "after the fold");
    model::assert_same(&model::load(&pool).await, &folded, "folded again");
    assert_consistent(&pool).await;
    support::workload::assert_matches(&pool, &w).await;

    // One connection in the pool: no second lane, the first folds it all.
    unfold(&pool).await;
    fold_after_a_drain(&db.url, 1, &pool).await;
    model::assert_same(&model::load(&pool).await, &folded, "folded in one lane");
}

/// Each view's row count and sum, each in one statement (one snapshot).
async fn view_totals(pool: &sqlx::PgPool) -> Vec<(i64, String)> {
    let mut totals = Vec::new();
    for view in ["daily_metrics", "regional_metrics", "program_metrics"] {
        totals.push(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT count(*), sum(value)::text FROM outreach.{view}"
            )))
            .fetch_one(pool)
            .await
            .unwrap(),
        );
    }
    totals
}

/// The fold after a drain, through a pool of `connections`: every delta
/// folded.
async fn fold_after_a_drain(url: &str, connections: u32, pool: &sqlx::PgPool) {
    let mut settings = sink::Settings::new(url);
    settings.max_connections = connections;
    let sink = sink::Sink::connect(&settings).await.unwrap();
    let before = sink.pending().await.unwrap();
    let counted = [
        count(pool, "daily_deltas").await,
        count(pool, "regional_deltas").await,
        count(pool, "program_deltas").await,
    ];
    assert_eq!(
        [before.daily, before.regional, before.program].map(|n| n as i64),
        counted,
        "pending counts every delta"
    );
    assert!(before.oldest.is_some(), "{before:?}");
    let done = sink
        .compact(sink::Share::Alone)
        .await
        .unwrap()
        .expect("no other compaction");
    assert!(done.deltas > 0 && done.cells > 0, "{done:?}");
    let lanes = if connections > 1 { 2 } else { 1 };
    assert_eq!(done.lanes, lanes, "{connections} connections");
    for (_, deltas, _) in STORAGE {
        assert_eq!(
            count(pool, deltas).await,
            0,
            "{deltas} folded ({connections} connections)"
        );
    }
    assert_eq!(sink.pending().await.unwrap(), sink::Pending::default());
    sink.close().await;
}

/// Moves half of each table's cells back to deltas, and adds deltas that
/// cancel out (on cells that stay, and on a key with no cell).
async fn unfold(pool: &sqlx::PgPool) {
    for (cells, deltas, columns) in STORAGE {
        let all = columns.join(", ");
        exec(pool, unfold_half(cells, deltas, columns)).await;
        // A tenth of the cells that stay get a pair of deltas that cancel.
        exec(
            pool,
            format!(
                "INSERT INTO outreach.{deltas} ({all})
                 ({plus}) UNION ALL ({minus})",
                plus = some_cells_as_deltas(cells, columns, "5"),
                minus = some_cells_as_deltas(cells, columns, "-5"),
            ),
        )
        .await;
        // A key with no cell whose deltas sum to zero: it must not appear.
        exec(
            pool,
            format!(
                "INSERT INTO outreach.{deltas} ({all})
                 SELECT {ghost} FROM outreach.{deltas} LIMIT 1",
                ghost = with(columns, &[("metric", "'ghost_metric'")]),
            ),
        )
        .await;
        exec(
            pool,
            format!(
                "INSERT INTO outreach.{deltas} ({all})
                 SELECT {neg} FROM outreach.{deltas} WHERE metric = 'ghost_metric'",
                neg = with_value(columns, "-value"),
            ),
        )
        .await;
        assert!(count(pool, deltas).await > 0, "{deltas} now pending");
    }
}

/// The fold's lock (sink/src/postgres/fold/mod.rs, `COMPACTION`): held by
/// the test, as another worker's long fold would hold it.
const FOLD_LOCK: i64 = 7_261_002_116;

/// Past `database.max_pending_deltas`, a live pipeline's batches wait for
/// the fold: while no fold can run, the pending deltas stop growing and the
/// pipeline stops short of the end; once the fold runs again, it catches up
/// with exact totals and reports the wait.
#[tokio::test(flavor = "multi_thread")]
async fn batches_wait_for_the_fold_past_the_pending_budget() {
    let app = App::spawn(2).await;
    let (broker, db) = (&app.broker, &app.db);
    let w = generate(5, 3_000);
    broker.producer().send(&w.records).await;
    let pool = db.pool().await;
    let mut holder = pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(FOLD_LOCK)
        .execute(&mut *holder)
        .await
        .unwrap();

    let mut s = settings(broker, db, &unique("g"));
    s.ingest.batch_max_messages = 200;
    s.database.compact_interval_ms = 100;
    s.database.max_pending_deltas = 300;
    // Following the topics, as a live pipeline does (a backfill does not
    // wait for the fold).
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(async move {
        init_logs();
        outreach::pipeline::run(&s, ingest::Mode::Follow, async {
            let _ = stopped.await;
        })
        .await
        .expect("the pipeline runs")
    });

    // The pending deltas go over the budget, then stand still.
    let sink = sink::Sink::connect(&sink::Settings::new(&db.url))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let (mut last, mut still_since) = (sink::Pending::default(), std::time::Instant::now());
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "pending never stood still: {last:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        // (Until the pipeline has migrated the schema, there is nothing
        // to count.)
        let Ok(now) = sink.pending().await else {
            continue;
        };
        // (The oldest delta's age grows while the rows stand still.)
        if now.rows() != last.rows() || now.rows() <= 300 {
            (last, still_since) = (now, std::time::Instant::now());
        } else if still_since.elapsed() > std::time::Duration::from_secs(3) {
            break;
        }
    }
    assert!(!run.is_finished(), "the run waits for the fold");
    let accepted: i64 = sqlx::query_scalar("SELECT count(*) FROM outreach.activity_facts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        accepted < 2_000,
        "batches stopped early ({accepted} events in, {last:?} pending)"
    );
    assert!(last.oldest.is_some(), "{last:?}");

    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(FOLD_LOCK)
        .execute(&mut *holder)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while sink.applied_messages().await.unwrap() < w.records.len() as u64 {
        assert!(std::time::Instant::now() < deadline, "the run catches up");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    stop.send(()).unwrap();
    let report = run.await.unwrap();
    let f = report.figures();
    assert!(f.backpressure_ms >= 3_000, "the wait is reported: {f:?}");
    assert!(f.compactions > 1, "folds let the batches go on: {f:?}");
    support::workload::assert_matches(&pool, &w).await;
    assert_consistent(&pool).await;
    sink.close().await;
}

/// A scratch database with every migration applied, and a connection to
/// it with `setting` (a `SET` statement) in force for its session.
async fn migrated_session(
    setting: &'static str,
) -> (Db, sqlx::pool::PoolConnection<sqlx::Postgres>) {
    let db = Db::new().await;
    let sink = sink::Sink::connect(&sink::Settings::new(&db.url))
        .await
        .unwrap();
    sink.migrate().await.unwrap();
    sink.close().await;
    let mut c = db.pool().await.acquire().await.unwrap();
    sqlx::query(setting).execute(&mut *c).await.unwrap();
    (db, c)
}

/// The SQL that spreads day deltas to periods agrees with the reference
/// `Period::start` on every day of three decades (leap years, ISO weeks
/// across new year, quarters), whatever the session's time zone.
#[tokio::test(flavor = "multi_thread")]
async fn period_starts_in_sql_match_the_reference() {
    let (_db, mut c) = migrated_session("SET TIME ZONE 'Pacific/Kiritimati'").await;
    let rows: Vec<(chrono::NaiveDate, String, chrono::NaiveDate)> = sqlx::query_as(
        "SELECT d::date, p.period_type, p.period_start
         FROM generate_series('1999-12-01'::date, '2031-01-31'::date, interval '1 day') d
         CROSS JOIN LATERAL outreach.period_starts(d::date) p",
    )
    .fetch_all(&mut *c)
    .await
    .unwrap();
    assert_period_starts(rows, 11_385);
}

/// The dashboards' filters (a level, a period type, a range of periods; a
/// period type of every program) reach the indexes of migration 0009
/// through the views' GROUP BY, as index conditions on the stored cells.
/// Sequential scans are switched off so that the plan shows whether an
/// index is reachable at all, whatever the tables hold.
#[tokio::test(flavor = "multi_thread")]
async fn the_dashboards_filters_reach_the_level_and_period_indexes() {
    let (_db, mut c) = migrated_session("SET enable_seqscan = off").await;
    for (query, index, condition) in [
        (
            "SELECT region_code, metric, sum(value) FROM outreach.regional_metrics
             WHERE region_level = 'province' AND period_type = 'day'
               AND period_start BETWEEN '2026-11-01' AND '2026-11-30' GROUP BY 1, 2",
            "regional_cells_level",
            "region_level = 'province'",
        ),
        (
            "SELECT program_id, period_start, metric, sum(value) FROM outreach.program_metrics
             WHERE period_type = 'month' GROUP BY 1, 2, 3",
            "program_cells_period",
            "period_type = 'month'",
        ),
    ] {
        let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {query}")))
            .fetch_all(&mut *c)
            .await
            .unwrap();
        let plan = plan.join("\n");
        let node = plan
            .split("->")
            // "Index Scan using <index> on <table>" or "Bitmap Index Scan on <index>".
            .find(|node| {
                node.contains(&format!("using {index} on"))
                    || node.contains(&format!("Index Scan on {index}"))
            })
            .unwrap_or_else(|| panic!("{index} not used:\n{plan}"));
        assert!(
            node.contains("Index Cond") && node.contains(condition),
            "{index} without the filter as its condition:\n{plan}"
        );
    }
}

/// A sum that no longer fits a cell fails that cell only. The country's
/// yearly total of its largest metric is set to `i64::MAX` hundredths (a
/// stand-in for the ~92 million maximal events of a producer stuck in a
/// loop: no test can publish them), then more events arrive. Their fold
/// really overflows in Postgres (`bigint out of range`): the cell is held
/// with its deltas pending, everything else folds, the view of the held
/// cell stays exact; once the cell fits again (here the stand-in taken
/// back out) the next fold releases it and every total is the model's.
#[tokio::test(flavor = "multi_thread")]
async fn a_sum_beyond_bigint_holds_its_cell_and_the_rest_folds() {
    let app = App::spawn(2).await;
    let (broker, db) = (&app.broker, &app.db);
    let w = generate(11, 3_000);
    let (first, rest) = w.records.split_at(w.records.len() / 2);
    let mut s = settings(broker, db, &unique("g"));
    s.database.compact_interval_ms = 3_600_000;
    broker.producer().send(first).await;
    drain(&s).await;
    let pool = db.pool().await;
    let (country, metric, year, stored): (String, String, chrono::NaiveDate, i64) = sqlx::query_as(
        "SELECT region_code, metric, period_start, value FROM outreach.regional_cells
             WHERE region_level = 'country' AND period_type = 'year'
             ORDER BY value DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let raised = i64::MAX - stored;
    let cell = "region_code = $1 AND metric = $2 AND period_type = 'year' AND period_start = $3";
    let shift = |sign: &str| {
        format!("UPDATE outreach.regional_cells SET value = value {sign} $4 WHERE {cell}")
    };
    sqlx::query(sqlx::AssertSqlSafe(shift("+")))
        .bind(&country)
        .bind(&metric)
        .bind(year)
        .bind(raised)
        .execute(&pool)
        .await
        .unwrap();

    broker.producer().send(rest).await;
    let report = drain(&s).await;
    assert!(
        report.compaction.deltas > 0,
        "the drain's fold folded the rest"
    );
    let held: Vec<(String, String, String, chrono::NaiveDate)> =
        sqlx::query_as("SELECT deltas, owner, metric, year FROM outreach.held_cells")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        held,
        [(
            "regional_deltas".to_owned(),
            country.clone(),
            metric.clone(),
            year
        )],
        "the overflowing cell, and it alone, is held"
    );
    for deltas in ["daily_deltas", "program_deltas"] {
        assert_eq!(count(&pool, deltas).await, 0, "{deltas} folded");
    }
    let (held_deltas, others): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE region_code = $1 AND metric = $2
                                 AND date_trunc('year', day::timestamp)::date = $3),
                count(*) FILTER (WHERE NOT (region_code = $1 AND metric = $2
                                 AND date_trunc('year', day::timestamp)::date = $3))
         FROM outreach.regional_deltas",
    )
    .bind(&country)
    .bind(&metric)
    .bind(year)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(held_deltas > 0, "the held cell's deltas stay pending");
    assert_eq!(others, 0, "every other regional cell folded");
    let sink = sink::Sink::connect(&sink::Settings::new(&db.url))
        .await
        .unwrap();
    let pending = sink.pending().await.unwrap();
    assert_eq!((pending.held, pending.held_rows), (1, held_deltas as u64));
    assert_eq!(
        pending.rows(),
        0,
        "held deltas are not held against the budget"
    );
    let view = |year_cell: &'static str| {
        sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!(
            "SELECT (value * 100)::text FROM outreach.regional_metrics WHERE {year_cell}"
        )))
    };
    let while_held: String = view(cell)
        .bind(&country)
        .bind(&metric)
        .bind(year)
        .fetch_one(&pool)
        .await
        .unwrap();

    // The operator's way back: the runaway total withdrawn (here, the
    // stand-in taken out). The next fold releases the cell.
    sqlx::query(sqlx::AssertSqlSafe(shift("-")))
        .bind(&country)
        .bind(&metric)
        .bind(year)
        .bind(raised)
        .execute(&pool)
        .await
        .unwrap();
    let done = sink.compact(sink::Share::Beside).await.unwrap().unwrap();
    assert_eq!(done.deltas as i64, held_deltas, "the held deltas folded");
    assert_eq!(sink.pending().await.unwrap(), sink::Pending::default());
    let exact: String = view(cell)
        .bind(&country)
        .bind(&metric)
        .bind(year)
        .fetch_one(&pool)
        .await
        .unwrap();
    // numeric text, e.g. "123400" or "123400.00": compared as integers.
    let int = |t: &str| t.split('.').next().unwrap().parse::<i128>().unwrap();
    assert_eq!(
        int(&while_held) - int(&exact),
        raised as i128,
        "while held, the view summed the cell and every pending delta exactly"
    );
    support::workload::assert_matches(&pool, &w).await;
    sink.close().await;
}
