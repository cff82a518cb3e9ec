//! End-to-end: the contract's semantics through a real broker and Postgres.
//! Each test publishes events, drains them with the pipeline, and asserts the
//! totals analysts would read.

mod support;

use schemas::{Metric, Period};
use serde_json::json;
use support::app::{App, Decimal};
use support::events::*;

#[tokio::test(flavor = "multi_thread")]
async fn the_contract_examples_fill_every_table() {
    let app = App::spawn(2).await;
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
    app.send(&[
        mission_record(&dispatched),
        mission_record(&completed),
        activity_record(&activity),
        binary(ACTIVITIES, "yonghe-2020-dialysis-centre", &bin),
    ])
    .await;
    let report = app.drain().await;
    assert_eq!(report.quarantined, 0);

    // Xinle (130184) → Shijiazhuang (130100) → Hebei (130000) → CN.
    for region in ["130184", "130100", "130000", "CN"] {
        assert_eq!(
            app.regional(region, Period::Day, "2023-06-14", Metric::OutpatientVisits)
                .await,
            "23",
            "{region}"
        );
        assert_eq!(
            app.regional(
                region,
                Period::Day,
                "2023-06-14",
                Metric::MissionsDispatched
            )
            .await,
            "1"
        );
        assert_eq!(
            app.regional(region, Period::Day, "2023-06-14", Metric::ExpertsDispatched)
                .await,
            "7"
        );
        assert_eq!(
            app.regional(region, Period::Day, "2023-06-15", Metric::MissionsCompleted)
                .await,
            "1"
        );
        assert_eq!(
            app.regional(region, Period::Month, "2023-06-01", Metric::ExpertDays)
                .await,
            "14",
            "two days × 7"
        );
    }
    assert_eq!(
        app.regional("130000", Period::Week, "2023-06-12", Metric::ExpertDays)
            .await,
        "14"
    );
    assert_eq!(
        app.regional(
            "130000",
            Period::Quarter,
            "2023-04-01",
            Metric::OutpatientVisits
        )
        .await,
        "23"
    );
    assert_eq!(
        app.regional(
            "130000",
            Period::Year,
            "2023-01-01",
            Metric::OutpatientVisits
        )
        .await,
        "23"
    );
    assert_eq!(
        app.program(
            "healthy-china-tour-2023",
            Period::Year,
            "2023-01-01",
            Metric::ExpertDays
        )
        .await,
        "14"
    );
    assert_eq!(
        app.program(
            "pkufh-county-assistance",
            Period::Day,
            "2020-08-18",
            Metric::DepartmentsEstablished
        )
        .await,
        "1"
    );
    assert_eq!(
        app.regional(
            "141032",
            Period::Year,
            "2020-01-01",
            Metric::DepartmentsEstablished
        )
        .await,
        "1"
    );

    let m: (String, String, i32, Vec<String>, String, Option<String>) = sqlx::query_as(
        "SELECT institution_id, status, team_size, specialties, start_date::text, end_date::text FROM outreach.missions WHERE mission_id = 'sgh-hct23-xinle'",
    )
    .fetch_one(app.pool().await)
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
    .fetch_one(app.pool().await)
    .await
    .unwrap();
    assert_eq!(name.as_deref(), Some("2023 Healthy China Tour"));
    let dims: String = sqlx::query_scalar(
        "SELECT dims::text FROM outreach.daily_metrics WHERE metric = 'outpatient_visits'",
    )
    .fetch_one(app.pool().await)
    .await
    .unwrap();
    assert_eq!(
        dims,
        r#"{"setting": "free_clinic", "specialty": "cardiology"}"#
    );
    let mission_dims: Vec<String> = sqlx::query_scalar("SELECT DISTINCT dims::text FROM outreach.daily_metrics WHERE mission_id IS NOT NULL AND metric = 'expert_days'").fetch_all(app.pool().await).await.unwrap();
    assert_eq!(mission_dims, ["{}"]);
    app.assert_consistent().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicates_count_once_and_corrections_replace() {
    let app = App::spawn(3).await;
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
    app.send(&records).await;
    app.drain().await;
    for (region, period, start) in [
        ("620921", Period::Day, "2024-03-05"),
        ("620000", Period::Month, "2024-03-01"),
        ("CN", Period::Year, "2024-01-01"),
    ] {
        assert_eq!(
            app.regional(region, period, start, Metric::Surgeries).await,
            "17",
            "{region} {period:?}"
        );
    }
    assert_eq!(
        app.program(
            "healthy-china-tour-2023",
            Period::Week,
            "2024-03-04",
            Metric::Surgeries
        )
        .await,
        "17"
    );
    app.assert_consistent().await;

    // The same events again, in another order, in a later run: nothing moves.
    let mut again = records.clone();
    again.reverse();
    app.send(&again).await;
    app.drain().await;
    assert_eq!(
        app.regional("CN", Period::Year, "2024-01-01", Metric::Surgeries)
            .await,
        "17"
    );
    // A new revision still wins after all that.
    app.send(&[activity_record(&a("e7", "r2", 4, 1))]).await;
    app.drain().await;
    assert_eq!(
        app.regional("CN", Period::Year, "2024-01-01", Metric::Surgeries)
            .await,
        "11"
    );
    app.assert_consistent().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_completion_before_its_dispatch_is_applied_when_the_dispatch_arrives() {
    let app = App::spawn(1).await;
    app.send(&[mission_record(&completion(
        "h1",
        "c1",
        "m1",
        "2024-01-12",
        "2024-01-12T18:00:00Z",
    ))])
    .await;
    app.drain().await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outreach.missions")
        .fetch_one(app.pool().await)
        .await
        .unwrap();
    assert_eq!(n, 0, "no mission before its dispatch");
    assert_eq!(
        app.regional("CN", Period::Year, "2024-01-01", Metric::MissionsCompleted)
            .await,
        "0"
    );

    app.send(&[mission_record(&dispatch(
        "h1",
        "d1",
        "m1",
        "620921",
        3,
        "2024-01-10",
        "2024-01-10T08:00:00Z",
    ))])
    .await;
    app.drain().await;
    assert_eq!(
        app.regional(
            "620921",
            Period::Day,
            "2024-01-12",
            Metric::MissionsCompleted
        )
        .await,
        "1"
    );
    assert_eq!(
        app.regional("CN", Period::Year, "2024-01-01", Metric::ExpertDays)
            .await,
        "9",
        "3 experts × 3 days"
    );
    assert_eq!(
        app.regional("620900", Period::Day, "2024-01-11", Metric::ExpertDays)
            .await,
        "3"
    );
    assert_eq!(
        app.regional("CN", Period::Year, "2024-01-01", Metric::ExpertsDispatched)
            .await,
        "3"
    );
    let status: String =
        sqlx::query_scalar("SELECT status FROM outreach.missions WHERE mission_id = 'm1'")
            .fetch_one(app.pool().await)
            .await
            .unwrap();
    assert_eq!(status, "completed");
    app.assert_consistent().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_forty_years_late_lands_in_its_own_periods() {
    let app = App::spawn(1).await;
    app.send(&[
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
    app.drain().await;
    assert_eq!(
        app.regional("CN", Period::Year, "1985-01-01", Metric::Lectures)
            .await,
        "3"
    );
    assert_eq!(
        app.regional("620000", Period::Quarter, "1985-01-01", Metric::Lectures)
            .await,
        "3"
    );
    assert_eq!(
        app.regional("620000", Period::Month, "1985-02-01", Metric::Lectures)
            .await,
        "3"
    );
    assert_eq!(
        app.regional("620000", Period::Week, "1985-02-25", Metric::Lectures)
            .await,
        "3",
        "ISO week starts Monday 25 Feb 1985"
    );
    assert_eq!(
        app.regional("CN", Period::Year, "2025-01-01", Metric::Lectures)
            .await,
        "2"
    );
    app.assert_consistent().await;
}

#[test]
fn decimals_read_as_the_analysts_figures() {
    assert_eq!(Decimal::parse("23.00"), "23");
    assert_eq!(Decimal(1250), "12.5");
    assert_eq!(Decimal(-5), "-0.05");
    assert_eq!(format!("{:?}", Decimal(1250)), "12.5");
    assert_ne!(Decimal(1250), "12.05");
    assert!(std::panic::catch_unwind(|| Decimal::parse("23.004")).is_err());
}
