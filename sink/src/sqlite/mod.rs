//! The SQLite backend, for running the pipeline with no database server: a
//! field team's laptop, a small hospital, the demo. The same tables and the
//! same guarantees as Postgres: a batch's changes and its offsets commit in
//! one transaction, and offsets are compare-and-set.
//!
//! SQLite has one writer at a time: every batch transaction begins
//! IMMEDIATE (takes the write lock first), so batches of several processes
//! queue instead of failing half-way, and so does a compaction. Set-based
//! statements read their rows from one JSON parameter (`json_each`), as
//! Postgres reads arrays.
//!
//! The roll-ups are views over stored cells and pending deltas, as in
//! Postgres: a batch appends day-grain deltas, the compaction folds them
//! (`fold.rs`, migration 0002).

mod batch;
pub(crate) mod fold;
pub mod overview;
mod reads;

use batch::Batch;

use async_trait::async_trait;
use schemas::Regions;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use crate::backend::{self, Backend, StoredOffset};
use crate::{Compacted, Result, Settings, Share};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone)]
pub(crate) struct Db {
    pub pool: SqlitePool,
}

impl Db {
    pub async fn connect(settings: &Settings, options: SqliteConnectOptions) -> Result<Db> {
        let pool = SqlitePoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(std::time::Duration::from_secs(
                settings.connect_timeout_secs,
            ))
            .connect_with(options)
            .await?;
        Ok(Db { pool })
    }
}

#[async_trait]
impl Backend for Db {
    /// sqlx cannot lock SQLite's migrations: when two processes start on a
    /// new file together, one applies a migration and the other fails on
    /// "table already exists". Running again skips what is applied (and
    /// still checks checksums), so a lost race is retried; a real error
    /// fails every attempt.
    async fn migrate(&self) -> Result<()> {
        let mut attempt = 1;
        loop {
            match MIGRATOR.run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt == 3 => return Err(e.into()),
                Err(e) => {
                    tracing::debug!(error = %e, attempt, "migrating again");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    attempt += 1;
                }
            }
        }
    }

    /// (latest applied, latest of this build).
    async fn migration_versions(&self) -> Result<(i64, i64)> {
        let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
        )
        .fetch_one(&self.pool)
        .await?;
        if !exists {
            return Ok((0, latest));
        }
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await?;
        Ok((applied.unwrap_or(0), latest))
    }

    async fn sync_regions(&self, regions: &Regions) -> Result<u64> {
        let rows: Vec<_> = regions
            .parents_first()
            .into_iter()
            .map(|r| (&r.code, &r.name, r.level.as_str(), &r.parent))
            .collect();
        let done = sqlx::query(
            "INSERT INTO regions (region_code, name, level, parent_code)
             SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3 FROM json_each(?1) AS j WHERE true
             ON CONFLICT (region_code) DO UPDATE
               SET name = excluded.name, level = excluded.level, parent_code = excluded.parent_code
             WHERE (regions.name, regions.level, regions.parent_code)
                   IS NOT (excluded.name, excluded.level, excluded.parent_code)",
        )
        .bind(json(&rows))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn stored_offsets(&self, partitions: &[(String, i32)]) -> Result<Vec<StoredOffset>> {
        Ok(sqlx::query_as(
            "SELECT o.topic, o.partition, o.next_offset FROM consumer_offsets o
             JOIN json_each(?1) AS k ON o.topic = k.value->>0 AND o.partition = k.value->>1",
        )
        .bind(json(partitions))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Takes the database's write lock now, so batches of several
    /// processes queue here.
    async fn begin(&self) -> Result<Box<dyn backend::Transaction>> {
        Ok(Box::new(Batch::new(
            self.pool.begin_with("BEGIN IMMEDIATE").await?,
        )))
    }

    /// Never `None`: a compaction waits for the write lock instead.
    async fn compact(&self, share: Share) -> Result<Option<Compacted>> {
        fold::compact(&self.pool, share).await.map(Some)
    }

    async fn close(&self) {
        self.pool.close().await
    }
}

/// Rows as one JSON array of arrays, for `json_each`.
pub(crate) fn json<T: serde::Serialize + ?Sized>(rows: &T) -> String {
    serde_json::to_string(rows).expect("strings, numbers and dates serialise")
}
