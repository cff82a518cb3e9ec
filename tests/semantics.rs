//! End-to-end: the contract's semantics through a real broker and Postgres.
//! Each test publishes events, drains them with the pipeline, and asserts the
//! totals analysts would read.

mod support;

use serde_json::json;
use support::events::*;
use support::*;

async fn setup(partitions: i32) -> (Broker, Db) {
    let broker = Broker::start();
    broker.contract_topics(partitions).await;
    (broker, Db::new().await)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_contract_examples_fill_every_table() {
    let (broker, db) = setup(2).await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/contract/examples");
    let ex = |f: &str| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(format!("{dir}/{f}")).unwrap_or_else(|_| panic!("{f}")),
        )
        .unwrap()
    };
    let dispatched = ex("mission-dispatched.json");
    let completed = ex("mission-completed.json");
    let activity = ex("activity-recorded.json");
    // The binary-mode example, as documented in activity-recorded.binary-mode.txt.
    let binary_data = json!({"record_id":"yonghe-2020-dialysis-centre","program_id":"pkufh-county-assistance","facility_id":"yonghe-peoples-hospital","region_code":"141032","occurred_on":"2020-08-18","metric":"departments_established","value":1,"dims":{"specialty":"nephrology"}});
    let bin = envelope(
        "pku-first",
        "pku-2020-08-18-0003",
        "org.outreach.activity.recorded.v1",
        "2020-08-18T16:00:00+08:00",
        binary_data,
    );
    broker
        .producer()
        .send(&[
            mission_record(&dispatched),
            mission_record(&completed),
            activity_record(&activity),
            binary(ACTIVITIES, "yonghe-2020-dialysis-centre", &bin),
        ])
        .await;
    let report = drain(&settings(&broker, &db, &unique("g"))).await;
    assert_eq!(report.quarantined, 0);
    let pool = db.pool().await;

    // Xinle (130184) → Shijiazhuang (130100) → Hebei (130000) → CN.
    for region in ["130184", "130100", "130000", "CN"] {
        assert_eq!(
            regional(&pool, region, "day", "2023-06-14", "outpatient_visits").await,
            "23",
            "{region}"
        );
        assert_eq!(
            regional(&pool, region, "day", "2023-06-14", "missions_dispatched").await,
            "1"
        );
        assert_eq!(
            regional(&pool, region, "day", "2023-06-14", "experts_dispatched").await,
            "7"
        );
        assert_eq!(
            regional(&pool, region, "day", "2023-06-15", "missions_completed").await,
            "1"
        );
        assert_eq!(
            regional(&pool, region, "month", "2023-06-01", "expert_days").await,
            "14",
            "two days × 7"
        );
    }
    assert_eq!(
        regional(&pool, "130000", "week", "2023-06-12", "expert_days").await,
        "14"
    );
    assert_eq!(
        regional(
            &pool,
            "130000",
            "quarter",
            "2023-04-01",
            "outpatient_visits"
        )
        .await,
        "23"
    );
    assert_eq!(
        regional(&pool, "130000", "year", "2023-01-01", "outpatient_visits").await,
        "23"
    );
    assert_eq!(
        program(
            &pool,
            "healthy-china-tour-2023",
            "year",
            "2023-01-01",
            "expert_days"
        )
        .await,
        "14"
    );
    assert_eq!(
        program(
            &pool,
            "pkufh-county-assistance",
            "day",
            "2020-08-18",
            "departments_established"
        )
        .await,
        "1"
    );
    assert_eq!(
        regional(
            &pool,
            "141032",
            "year",
            "2020-01-01",
            "departments_established"
        )
        .await,
        "1"
    );

    let m: (String, String, i32, Vec<String>, String, Option<String>) = sqlx::query_as(
        "SELECT institution_id, status, team_size, specialties, start_date::text, end_date::text FROM outreach.missions WHERE mission_id = 'sgh-hct23-xinle'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        m,
        (
            "shanghai-general".into(),
            "completed".into(),
            7,
            vec![
                "respiratory".into(),
                "cardiology".into(),
                "endocrinology".into()
            ],
            "2023-06-14".into(),
            Some("2023-06-15".into())
        )
    );
    let name: Option<String> = sqlx::query_scalar(
        "SELECT name FROM outreach.programs WHERE program_id = 'healthy-china-tour-2023'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(name.as_deref(), Some("2023 Healthy China Tour"));
    let dims: String = sqlx::query_scalar(
        "SELECT dims::text FROM outreach.daily_metrics WHERE metric = 'outpatient_visits'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        dims,
        r#"{"setting": "free_clinic", "specialty": "cardiology"}"#
    );
    let mission_dims: Vec<String> = sqlx::query_scalar("SELECT DISTINCT dims::text FROM outreach.daily_metrics WHERE mission_id IS NOT NULL AND metric = 'expert_days'").fetch_all(&pool).await.unwrap();
    assert_eq!(mission_dims, ["{}"]);
    assert_consistent(&pool).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicates_count_once_and_corrections_replace() {
    let (broker, db) = setup(3).await;
    let a = |id: &str, rec: &str, rev: i64, v: i64| {
        with(
            activity("h1", id, rec, "surgeries", json!(v), "2024-03-05", "620921"),
            "revision",
            json!(rev),
        )
    };
    let first = a("e1", "r1", 1, 10);
    let records = vec![
        activity_record(&first),
        activity_record(&first), // redelivered
        activity_record(&first),
        activity_record(&a("e2", "r2", 1, 5)),
        activity_record(&a("e3", "r2", 3, 7)), // correction: r2 becomes 7
        activity_record(&a("e4", "r2", 2, 100)), // older revision arriving later: nothing
        activity_record(&a("e5", "r3", 1, 4)),
        activity_record(&a("e6", "r3", 2, 0)), // withdrawal
    ];
    broker.producer().send(&records).await;
    drain(&settings(&broker, &db, &unique("g"))).await;
    let pool = db.pool().await;
    for (region, period, start) in [
        ("620921", "day", "2024-03-05"),
        ("620000", "month", "2024-03-01"),
        ("CN", "year", "2024-01-01"),
    ] {
        assert_eq!(
            regional(&pool, region, period, start, "surgeries").await,
            "17",
            "{region} {period}"
        );
    }
    assert_eq!(
        program(
            &pool,
            "healthy-china-tour-2023",
            "week",
            "2024-03-04",
            "surgeries"
        )
        .await,
        "17"
    );
    assert_consistent(&pool).await;

    // The same events again, in another order, in a later run: nothing moves.
    let mut again = records.clone();
    again.reverse();
    broker.producer().send(&again).await;
    drain(&settings(&broker, &db, &unique("g"))).await;
    assert_eq!(
        regional(&pool, "CN", "year", "2024-01-01", "surgeries").await,
        "17"
    );
    // A new revision still wins after all that.
    broker
        .producer()
        .send(&[activity_record(&a("e7", "r2", 4, 1))])
        .await;
    drain(&settings(&broker, &db, &unique("g"))).await;
    assert_eq!(
        regional(&pool, "CN", "year", "2024-01-01", "surgeries").await,
        "11"
    );
    assert_consistent(&pool).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_completion_before_its_dispatch_is_applied_when_the_dispatch_arrives() {
    let (broker, db) = setup(1).await;
    let s = settings(&broker, &db, &unique("g"));
    broker
        .producer()
        .send(&[mission_record(&completion(
            "h1",
            "c1",
            "m1",
            "2024-01-12",
            "2024-01-12T18:00:00Z",
        ))])
        .await;
    drain(&s).await;
    let pool = db.pool().await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outreach.missions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0, "no mission before its dispatch");
    assert_eq!(
        regional(&pool, "CN", "year", "2024-01-01", "missions_completed").await,
        "0"
    );

    broker
        .producer()
        .send(&[mission_record(&dispatch(
            "h1",
            "d1",
            "m1",
            "620921",
            3,
            "2024-01-10",
            "2024-01-10T08:00:00Z",
        ))])
        .await;
    drain(&s).await;
    assert_eq!(
        regional(&pool, "620921", "day", "2024-01-12", "missions_completed").await,
        "1"
    );
    assert_eq!(
        regional(&pool, "CN", "year", "2024-01-01", "expert_days").await,
        "9",
        "3 experts × 3 days"
    );
    assert_eq!(
        regional(&pool, "620900", "day", "2024-01-11", "expert_days").await,
        "3"
    );
    assert_eq!(
        regional(&pool, "CN", "year", "2024-01-01", "experts_dispatched").await,
        "3"
    );
    let status: String =
        sqlx::query_scalar("SELECT status FROM outreach.missions WHERE mission_id = 'm1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "completed");
    assert_consistent(&pool).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_forty_years_late_lands_in_its_own_periods() {
    let (broker, db) = setup(1).await;
    broker
        .producer()
        .send(&[
            activity_record(&activity(
                "h1",
                "new",
                "r-new",
                "lectures",
                json!(2),
                "2025-05-05",
                "620921",
            )),
            activity_record(&activity(
                "h1",
                "old",
                "r-old",
                "lectures",
                json!(3),
                "1985-02-28",
                "620921",
            )),
        ])
        .await;
    drain(&settings(&broker, &db, &unique("g"))).await;
    let pool = db.pool().await;
    assert_eq!(
        regional(&pool, "CN", "year", "1985-01-01", "lectures").await,
        "3"
    );
    assert_eq!(
        regional(&pool, "620000", "quarter", "1985-01-01", "lectures").await,
        "3"
    );
    assert_eq!(
        regional(&pool, "620000", "month", "1985-02-01", "lectures").await,
        "3"
    );
    assert_eq!(
        regional(&pool, "620000", "week", "1985-02-25", "lectures").await,
        "3",
        "ISO week starts Monday 25 Feb 1985"
    );
    assert_eq!(
        regional(&pool, "CN", "year", "2025-01-01", "lectures").await,
        "2"
    );
    assert_consistent(&pool).await;
}
