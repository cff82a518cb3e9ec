//! End-to-end: bad input is kept whole (quarantine table and dead-letter
//! topic) with a stable reason, and never moves a total.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use schemas::{Metric, Period};
use serde_json::json;
use support::app::{App, Decimal};
use support::events::*;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_message_is_quarantined_whole_while_good_ones_around_it_count() {
    let app = App::spawn(2).await;

    let bad = support::bad::cases();
    let mut records = Vec::new();
    for (i, c) in bad.iter().enumerate() {
        let good = activity(
            "h1",
            &format!("good-{i}"),
            &format!("rec-{i}"),
            "outpatient_visits",
            json!(1),
            "2024-02-01",
            "620921",
        );
        records.push(activity_record(&good));
        let mut r = c.record.clone();
        r.key = Some(format!("bad-{i}").into_bytes());
        records.push(r);
    }
    // Refused only once the ledger is read: a completion before its mission's start.
    records.push(mission_record(&dispatch(
        "h1",
        "d1",
        "m1",
        "620921",
        2,
        "2024-03-10",
        "2024-03-10T08:00:00Z",
    )));
    let mut late = mission_record(&completion(
        "h1",
        "c1",
        "m1",
        "2024-03-01",
        "2024-03-11T08:00:00Z",
    ));
    late.key = Some(b"late-bad".to_vec());
    records.push(late.clone());
    app.send(&records).await;

    let report = app.drain().await;
    assert_eq!(report.quarantined as usize, bad.len() + 1);

    // Every good event counted, nothing from the bad ones.
    assert_eq!(
        app.regional("CN", Period::Year, "2024-01-01", Metric::OutpatientVisits)
            .await,
        Decimal(bad.len() as i64 * 100)
    );
    assert_eq!(
        app.regional("CN", Period::Year, "2024-01-01", Metric::Surgeries)
            .await,
        "0"
    );
    assert_eq!(
        app.regional("CN", Period::Year, "2024-01-01", Metric::MissionsCompleted)
            .await,
        "0"
    );
    assert_eq!(
        app.regional("CN", Period::Year, "2024-01-01", Metric::MissionsDispatched)
            .await,
        "1"
    );

    /// key, payload, error_code, error_detail, topic, partition, offset
    type Row = (Option<Vec<u8>>, Vec<u8>, String, String, String, i32, i64);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT key, payload, error_code, error_detail, topic, partition, \"offset\" FROM outreach.quarantine",
    )
    .fetch_all(app.pool().await)
    .await
    .unwrap();
    let by_key: HashMap<Vec<u8>, _> = rows
        .into_iter()
        .map(|r| (r.0.clone().unwrap(), r))
        .collect();
    for (i, c) in bad.iter().enumerate() {
        let row = by_key
            .get(format!("bad-{i}").as_bytes())
            .unwrap_or_else(|| panic!("{} not quarantined", c.name));
        assert_eq!(row.2, c.code, "{}: {}", c.name, row.3);
        assert_eq!(
            row.1,
            c.record.value.clone().unwrap_or_default(),
            "{}: payload kept byte for byte",
            c.name
        );
        assert_eq!(row.4, c.record.topic, "{}", c.name);
        assert!(!row.3.is_empty());
    }
    let row = &by_key[b"late-bad".as_slice()];
    assert_eq!(row.2, "end_before_start", "{}", row.3);
    assert_eq!(row.1, late.value.clone().unwrap());
    let status: String =
        sqlx::query_scalar("SELECT status FROM outreach.missions WHERE mission_id = 'm1'")
            .fetch_one(app.pool().await)
            .await
            .unwrap();
    assert_eq!(status, "active");

    // The dead-letter topic has each of them, original key and value, the reason in headers.
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &app.broker.addr)
        .set("group.id", unique("dlq"))
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    consumer.subscribe(&[schemas::DEADLETTER_TOPIC]).unwrap();
    let mut seen = HashMap::new();
    while seen.len() < bad.len() + 1 {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("dead letters arrive")
            .unwrap();
        let headers = m.headers().unwrap();
        let code = (0..headers.count())
            .map(|i| headers.get(i))
            .find(|h| h.key == "outreach.error_code")
            .and_then(|h| h.value)
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
            .expect("error code header");
        let omitted =
            (0..headers.count()).any(|i| headers.get(i).key == "outreach.payload_omitted");
        seen.insert(
            m.key().unwrap().to_vec(),
            (code, m.payload().unwrap_or_default().to_vec(), omitted),
        );
    }
    for (i, c) in bad.iter().enumerate() {
        let (code, payload, omitted) = &seen[format!("bad-{i}").as_bytes()];
        assert_eq!(code, c.code, "{}", c.name);
        if c.code == "too_large" {
            assert!(
                *omitted && payload.is_empty(),
                "too large for the dead-letter topic: value omitted, size in a header"
            );
        } else {
            assert_eq!(
                payload,
                &c.record.value.clone().unwrap_or_default(),
                "{}",
                c.name
            );
        }
    }
    app.assert_consistent().await;
}
