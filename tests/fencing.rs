//! The sink's fence, directly, on both backends: a worker whose idea of a
//! partition's stored offset is stale cannot write it, even when it raced
//! the new owner.

mod support;

use sink::{Error, OffsetRange, Sink};
use support::*;

fn range(expected: Option<i64>, next: i64) -> OffsetRange {
    OffsetRange {
        topic: "t".into(),
        partition: 0,
        expected,
        next,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zombie_worker_cannot_write_a_partition_it_lost_postgres() {
    let db = Db::new().await;
    zombie_is_fenced(&db.url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zombie_worker_cannot_write_a_partition_it_lost_sqlite() {
    let db = SqliteDb::new();
    zombie_is_fenced(&db.url).await;
}

async fn zombie_is_fenced(url: &str) {
    let sink = Sink::connect(&sink::Settings::new(url)).await.unwrap();
    sink.migrate().await.unwrap();

    // First owner: nothing stored yet, applies 0..10.
    let mut a = sink.begin().await.unwrap();
    a.claim(&[range(None, 10)]).await.unwrap();
    a.commit().await.unwrap();

    // A second "first batch" for the same partition is refused.
    let mut b = sink.begin().await.unwrap();
    assert!(matches!(
        b.claim(&[range(None, 5)]).await,
        Err(Error::Fenced { .. })
    ));
    drop(b);

    // New owner (after a rebalance) holds its transaction open while the
    // zombie, still believing in offset 10, tries the same range.
    let mut owner = sink.begin().await.unwrap();
    owner.claim(&[range(Some(10), 20)]).await.unwrap();
    let zombie = tokio::spawn({
        let sink = sink.clone();
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
    assert!(
        matches!(
            zombie.await.unwrap(),
            Err(Error::Fenced { partition: 0, .. })
        ),
        "and is refused once it commits"
    );

    assert_eq!(
        sink.stored_offsets(&[("t".into(), 0)]).await.unwrap(),
        [Some(20)]
    );
}
