//! The sink's batch transaction on its own, on both backends, with no
//! broker and no transform: the claim (compare-and-set of the stored
//! offsets), the fence that stops a worker whose idea of them is stale, a
//! rollback that leaves nothing behind, and the conflict two workers
//! inserting the same fact run into, which a retry resolves.
//!
//! Postgres: `DATABASE_URL` (default the machine's, trust auth), a database
//! of each test's own; SQLite: a file in a directory of its own.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::NaiveDate;
use schemas::{ActivityFact, Amount, Changes, Dims, Id, Metric, OffsetRange};
use sink::{Error, Settings, Sink};

/// A fresh database on one backend, dropped at the end.
struct Scratch {
    server: Settings,
    name: String,
    sink: Sink,
    /// SQLite: the directory of its file.
    dir: Option<std::path::PathBuf>,
}

impl Scratch {
    async fn new(backend: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "sink_test_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let dir = (backend == "sqlite").then(|| std::env::temp_dir().join(&name));
        let server = Settings::new(&match &dir {
            None => std::env::var("DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
            Some(dir) => {
                std::fs::create_dir_all(dir).unwrap();
                format!("sqlite://{}", dir.join("server.db").display())
            }
        });
        let db = sink::inspect::create_database(&server, &name)
            .await
            .unwrap();
        let sink = Sink::connect(&db).await.unwrap();
        sink.migrate().await.unwrap();
        Scratch {
            server,
            name,
            sink,
            dir,
        }
    }

    async fn close(self) {
        self.sink.close().await;
    }
}

/// Even when an assertion failed: the database, and SQLite's directory.
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = sink::inspect::drop_database_blocking(&self.server, &self.name);
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn range(expected: Option<i64>, next: i64) -> OffsetRange {
    OffsetRange {
        topic: "t".into(),
        partition: 0,
        expected,
        next,
    }
}

fn id(s: &str) -> Cow<'static, Id> {
    Cow::Owned(Id::parse(s).unwrap())
}

fn fact(record: &str, value: i64) -> ActivityFact<'static> {
    ActivityFact {
        institution: id("h1"),
        record_id: id(record),
        revision: 1,
        event_id: Cow::Owned(format!("e-{record}")),
        program_id: id("p"),
        mission_id: None,
        facility_id: id("f"),
        region_code: Cow::Borrowed("620921"),
        day: NaiveDate::from_ymd_opt(2023, 7, 16).unwrap(),
        metric: Metric::Surgeries,
        dims: Cow::Owned(Dims::default()),
        value: Amount::from_hundredths(value),
        first_arrived: None,
        revision_arrived: None,
    }
}

fn new_facts(facts: Vec<ActivityFact<'static>>) -> Changes<'static> {
    Changes {
        activities_new: facts,
        ..Changes::default()
    }
}

async fn stored(sink: &Sink) -> Option<i64> {
    sink.stored_offsets(&[("t".into(), 0)]).await.unwrap()[0]
}

/// The ledger row of `record`, as a batch loads it.
async fn load(sink: &Sink, record: &str) -> Option<ActivityFact<'static>> {
    let mut tx = sink.begin().await.unwrap();
    let key = (id("h1").into_owned(), id(record).into_owned());
    let (mut facts, _) = tx.load(std::slice::from_ref(&key), &[]).await.unwrap();
    facts.remove(&key)
}

async fn claims_move_the_stored_offsets_and_a_rollback_moves_nothing(backend: &str) {
    let s = Scratch::new(backend).await;
    assert_eq!(stored(&s.sink).await, None, "no row before the first batch");
    let mut tx = s.sink.begin().await.unwrap();
    tx.claim(&[range(None, 10)]).await.unwrap();
    tx.write(&new_facts(vec![fact("r1", 300)]), &[])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(stored(&s.sink).await, Some(10));
    assert_eq!(
        load(&s.sink, "r1").await.map(|f| f.value.hundredths()),
        Some(300)
    );

    // Claimed and written, then dropped uncommitted (a crash, a failed
    // write): neither the offsets nor the ledger move.
    let mut tx = s.sink.begin().await.unwrap();
    tx.claim(&[range(Some(10), 20)]).await.unwrap();
    tx.write(&new_facts(vec![fact("r2", 100)]), &[])
        .await
        .unwrap();
    drop(tx);
    assert_eq!(stored(&s.sink).await, Some(10));
    assert_eq!(load(&s.sink, "r2").await, None);

    // The next batch moves on from the stored offset.
    let mut tx = s.sink.begin().await.unwrap();
    tx.claim(&[range(Some(10), 20)]).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(stored(&s.sink).await, Some(20));
    s.close().await;
}

async fn a_stale_claim_is_fenced_and_not_retried(backend: &str) {
    let s = Scratch::new(backend).await;
    let mut tx = s.sink.begin().await.unwrap();
    tx.claim(&[range(None, 10)]).await.unwrap();
    tx.commit().await.unwrap();
    for stale in [range(None, 5), range(Some(4), 12)] {
        let mut tx = s.sink.begin().await.unwrap();
        let refused = tx.claim(std::slice::from_ref(&stale)).await;
        assert!(
            matches!(&refused, Err(Error::Fenced { partition: 0, expected, .. }) if *expected == stale.expected),
            "{stale:?}: {refused:?}"
        );
        assert!(
            !refused.unwrap_err().is_retryable(),
            "a fenced batch is dropped, not retried"
        );
    }
    assert_eq!(stored(&s.sink).await, Some(10));

    // The zombie: the new owner holds its transaction open while a worker
    // still believing in offset 10 claims the same range; it waits for the
    // owner, then is refused.
    let mut owner = s.sink.begin().await.unwrap();
    owner.claim(&[range(Some(10), 20)]).await.unwrap();
    let zombie = tokio::spawn({
        let sink = s.sink.clone();
        async move {
            let mut z = sink.begin().await.unwrap();
            z.claim(&[range(Some(10), 15)]).await.map(|_| ())
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !zombie.is_finished(),
        "the zombie waits for the owner's lock (Postgres: the row; SQLite: the database)"
    );
    owner.commit().await.unwrap();
    assert!(matches!(
        zombie.await.unwrap(),
        Err(Error::Fenced { partition: 0, .. })
    ));
    assert_eq!(stored(&s.sink).await, Some(20));
    s.close().await;
}

async fn a_fact_another_worker_inserted_is_a_conflict_a_retry_resolves(backend: &str) {
    let s = Scratch::new(backend).await;
    // This worker loaded its batch when r1 was not in the ledger; another
    // worker (another partition) has inserted it since.
    assert_eq!(load(&s.sink, "r1").await, None);
    let mut other = s.sink.begin().await.unwrap();
    other.claim(&[range(None, 1)]).await.unwrap();
    other
        .write(&new_facts(vec![fact("r1", 300)]), &[])
        .await
        .unwrap();
    other.commit().await.unwrap();

    let mut tx = s.sink.begin().await.unwrap();
    let written = tx.write(&new_facts(vec![fact("r1", 500)]), &[]).await;
    let err = written.expect_err("inserting a fact that exists");
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert!(err.is_retryable(), "the batch is applied again");
    drop(tx);
    // The retry loads the ledger again and now sees the fact.
    assert_eq!(
        load(&s.sink, "r1").await.map(|f| f.value.hundredths()),
        Some(300)
    );
    s.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_claims_move_the_stored_offsets_and_a_rollback_moves_nothing() {
    claims_move_the_stored_offsets_and_a_rollback_moves_nothing("postgres").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_claims_move_the_stored_offsets_and_a_rollback_moves_nothing() {
    claims_move_the_stored_offsets_and_a_rollback_moves_nothing("sqlite").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_a_stale_claim_is_fenced_and_not_retried() {
    a_stale_claim_is_fenced_and_not_retried("postgres").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_a_stale_claim_is_fenced_and_not_retried() {
    a_stale_claim_is_fenced_and_not_retried("sqlite").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_a_fact_another_worker_inserted_is_a_conflict_a_retry_resolves() {
    a_fact_another_worker_inserted_is_a_conflict_a_retry_resolves("postgres").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_a_fact_another_worker_inserted_is_a_conflict_a_retry_resolves() {
    a_fact_another_worker_inserted_is_a_conflict_a_retry_resolves("sqlite").await;
}
