//! A configured topic that does not exist (here the missions topic, while
//! the activities topic is there and filled): a backfill stops within
//! seconds with one line that names it and says what to do; a follower
//! keeps waiting, says so at a bounded rate, gives the reason on `/readyz`,
//! and reads the topic once it is created.

mod support;

use std::time::{Duration, Instant};

use schemas::{Metric, Period};
use serde_json::json;
use support::app::regional;
use support::events::*;
use support::faults::{Running, get, wait_for};
use support::*;

/// A broker with the activities and dead-letter topics, not the missions
/// topic, and one activity already published.
async fn without_missions_topic() -> Broker {
    let broker = Broker::start();
    broker
        .create_topics(&[
            (schemas::ACTIVITIES_TOPIC, 2),
            (schemas::DEADLETTER_TOPIC, 1),
        ])
        .await;
    broker
        .producer()
        .send(&[activity_record(&activity(
            "h1",
            "e1",
            "r1",
            "surgeries",
            json!(3),
            "2024-01-01",
            "620921",
        ))])
        .await;
    broker
}

fn log_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{}.log", unique(name)))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_stops_within_seconds_naming_the_missing_topic() {
    let broker = without_missions_topic().await;
    let db = Db::new().await;
    let log = log_path("missing-backfill");
    let started = Instant::now();
    let mut run = Running::spawn(
        outreach_command(&broker, &db, &unique("g")),
        &["run", "--until-caught-up"],
        log.clone(),
    );
    let status = run.wait(Duration::from_secs(60));
    let took = started.elapsed();
    let text = run.log_text();
    assert_eq!(status.code(), Some(1), "{text}");
    // Database migrations, then two metadata answers 2 s apart.
    assert!(took < Duration::from_secs(20), "took {took:?}:\n{text}");
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{text}");
    let e = errors[0];
    for part in [
        "outreach.missions.v1",
        "does not exist",
        &broker.addr,
        "kafka-topics.sh",
        "--create --topic outreach.missions.v1",
        "kafka.missions_topic",
        "OUTREACH__KAFKA__MISSIONS_TOPIC",
    ] {
        assert!(e.contains(part), "{part:?} not in {e}");
    }
    assert!(!e.contains("outreach.activities.v1"), "{e}");
    // It failed; it did not say it would wait.
    assert!(!text.contains("waiting for it to be created"), "{text}");
    let _ = std::fs::remove_file(log);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_waits_for_the_missing_topic_says_why_and_reads_it_once_created() {
    let broker = without_missions_topic().await;
    let db = Db::new().await;
    let log = log_path("missing-follow");
    let mut run = Running::spawn(
        outreach_command(&broker, &db, &unique("g")),
        &["run"],
        log.clone(),
    );
    wait_for(
        Duration::from_secs(60),
        "/readyz to give the missing topic",
        || {
            get(&run.http, "/readyz").is_some_and(|(s, b)| {
                s == 503 && b.contains("missing_topics outreach.missions.v1\n")
            })
        },
    );
    // The topic that exists is read meanwhile.
    let pool = db.pool().await;
    wait_for(
        Duration::from_secs(60),
        "the activity in the tables",
        || {
            futures_block(regional(
                &pool,
                "CN",
                Period::Year,
                "2024-01-01",
                Metric::Surgeries,
            )) == "3"
        },
    );
    assert_eq!(run.metric("outreach_missing_topics"), 1.0);

    // Waiting goes on, quietly: one warning naming the topic and the
    // setting, not one per probe (every 2 s) or per poll.
    std::thread::sleep(Duration::from_secs(12));
    assert!(run.alive(), "{}", run.log_text());
    let text = run.log_text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("topic does not exist"))
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(
        warnings[0].contains("outreach.missions.v1")
            && warnings[0].contains("kafka.missions_topic"),
        "{}",
        warnings[0]
    );
    // Nor repeated by the client: the "consuming" line lists the topics,
    // the warning says the rest.
    let mentions = text
        .lines()
        .filter(|l| l.contains("outreach.missions.v1"))
        .count();
    assert_eq!(mentions, 2, "lines about the topic:\n{text}");

    // Created: ready again, and its events are read.
    broker.create_topics(&[(schemas::MISSIONS_TOPIC, 2)]).await;
    broker
        .producer()
        .send(&[mission_record(&dispatch(
            "h1",
            "m-e1",
            "m1",
            "620921",
            4,
            "2024-01-02",
            "2024-01-02T08:00:00Z",
        ))])
        .await;
    wait_for(Duration::from_secs(90), "/readyz to turn ready", || {
        get(&run.http, "/readyz")
            .is_some_and(|(s, b)| s == 200 && b.contains("missing_topics none\n"))
    });
    wait_for(Duration::from_secs(90), "the mission in the tables", || {
        futures_block(regional(
            &pool,
            "CN",
            Period::Year,
            "2024-01-01",
            Metric::MissionsDispatched,
        )) == "1"
    });
    assert!(run.log_text().contains("topic exists now"));
    assert!(run.terminate().success());
    let _ = std::fs::remove_file(log);
}

/// Runs a query from the synchronous polling closure.
fn futures_block<T, F: std::future::Future<Output = T>>(f: F) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}
