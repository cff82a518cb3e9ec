//! The whole pipeline against the reference model: random histories go
//! through the real broker (tansu) and a real database, Postgres or SQLite,
//! spread over random partitions and cut into random batch sizes; every
//! analyst table must then equal the model's, cell for cell, and every bad
//! message must sit in quarantine. Fewer cases than `tests/model.rs`: each
//! one starts a broker, a database and a consumer group.

mod support;

use proptest::prelude::*;
use support::app::App;
use support::history::{decode, render, steps};
use support::model;
use support::*;

#[derive(Debug, Clone, Copy)]
enum Backend {
    Postgres,
    Sqlite,
}

fn check(records: Vec<Record>, partitions: i32, batch: usize, backend: Backend) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let decoded = decode(&records);
        let bad = decoded.iter().filter(|d| d.is_err()).count();
        let accepted: Vec<schemas::Event> = decoded.into_iter().filter_map(Result::ok).collect();
        let want = model::fold(&accepted, &schemas::Regions::shipped());

        let context = format!(
            "{backend:?}: {} records, {partitions} partitions, batches of {batch}",
            records.len()
        );
        // Messages of a few hundred bytes: some batches are cut by size
        // before they reach the count.
        let batched = |s: &outreach::settings::Settings| {
            let mut s = s.clone();
            s.ingest.batch_max_messages = batch;
            s.ingest.batch_max_bytes = batch * 400;
            s
        };
        let quarantined: i64 = match backend {
            Backend::Postgres => {
                let app = App::spawn(partitions).await;
                app.send(&records).await;
                drain(&batched(&app.settings)).await;
                let pool = app.pool().await;
                model::assert_same(&model::load(pool).await, &want, &context);
                app.assert_consistent().await;
                sqlx::query_scalar("SELECT count(*) FROM outreach.quarantine")
                    .fetch_one(pool)
                    .await
                    .unwrap()
            }
            Backend::Sqlite => {
                let app = App::spawn_sqlite(partitions).await;
                app.send(&records).await;
                drain(&batched(&app.settings)).await;
                let pool = app.pool().await;
                model::assert_same(&model::load_sqlite(pool).await, &want, &context);
                app.assert_consistent().await;
                sqlx::query_scalar("SELECT count(*) FROM quarantine")
                    .fetch_one(pool)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(
            quarantined as usize, bad,
            "{context}: every bad message quarantined once"
        );
        eprintln!(
            "{context}: {} cells equal the model, {bad} quarantined",
            want.cells()
        );
    });
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: support::cases(5),
        max_shrink_iters: 16,
        ..ProptestConfig::default()
    })]

    #[test]
    fn tables_equal_the_reference_model_through_broker_and_postgres(
        history in steps(400),
        partitions in 1..=4i32,
        batch in prop_oneof![1..8usize, 8..400usize],
        spread in prop::collection::vec(0..4i32, 400),
    ) {
        check(spread_over(&history, &spread, partitions), partitions, batch, Backend::Postgres);
    }

    #[test]
    fn tables_equal_the_reference_model_through_broker_and_sqlite(
        history in steps(400),
        partitions in 1..=4i32,
        batch in prop_oneof![1..8usize, 8..400usize],
        spread in prop::collection::vec(0..4i32, 400),
    ) {
        check(spread_over(&history, &spread, partitions), partitions, batch, Backend::Sqlite);
    }
}

/// Each record on a random partition: revisions of one fact then arrive in
/// different batches, in any order across partitions.
fn spread_over(history: &[support::history::Step], spread: &[i32], partitions: i32) -> Vec<Record> {
    render(history)
        .into_iter()
        .zip(spread.iter().cycle())
        .map(|(r, p)| Record {
            partition: Some(p % partitions),
            ..r
        })
        .collect()
}
