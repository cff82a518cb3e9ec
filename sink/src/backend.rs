//! The one seam between the sink and its databases. [`Backend`] is a
//! database (a pool of connections), [`Reads`] what is read back from it,
//! and [`Transaction`] one batch's transaction on it; Postgres
//! (`postgres/`) and SQLite (`sqlite/`) each implement all three whole,
//! and the rest of the crate only ever sees these traits (as tansu's
//! broker sees its one `Storage`).
//!
//! What is the same on both sides is written once, outside the backends:
//! the order of a batch's steps and statements (`batch.rs`), when the
//! fold runs (`fold.rs`), the ledger's columns (`rows.rs`). What differs
//! (SQL dialect, locking, COPY or JSON rows, how a fold is made exact) is
//! each backend's own, behind these methods.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schemas::{ActivityFact, Changes, ErrorCode, Id, MissionFact, OffsetRange, Regions};

use crate::report::{ReportQuery, ReportRows, Section};
use crate::{Error, Result, Share};

/// (institution, record_id) or (institution, mission_id).
pub(crate) type Key = (Id, Id);

/// A partition's next offset to apply, as the database stores it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct StoredOffset {
    pub topic: String,
    pub partition: i32,
    pub next_offset: i64,
}

/// A refused message, kept whole; borrowed from the batch, so a large
/// payload is not copied again on its way to the database.
#[derive(Debug, Clone, Copy)]
pub struct QuarantineRow<'a> {
    pub received_at: DateTime<Utc>,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
    pub error_code: ErrorCode,
    pub error_detail: &'a str,
}

/// What one compaction moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    /// Delta rows folded (and deleted).
    pub deltas: u64,
    /// Cells inserted or updated.
    pub cells: u64,
    /// Lanes that folded at once (of several compactions, the most).
    pub lanes: u32,
}

impl std::ops::AddAssign for Compacted {
    fn add_assign(&mut self, o: Compacted) {
        self.deltas += o.deltas;
        self.cells += o.cells;
        self.lanes = self.lanes.max(o.lanes);
    }
}

/// The delta rows waiting for the fold, per table: what readers pay for
/// on top of the stored cells, and what the pending budget bounds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub daily: u64,
    pub regional: u64,
    pub program: u64,
    /// How long the oldest regional or program delta has waited (`None`:
    /// none is pending).
    pub oldest: Option<Duration>,
    /// Cells the fold holds back because their sums would not fit
    /// (Postgres, migration 0007), and their delta rows (counted in the
    /// tables' figures above too).
    pub held: u64,
    pub held_rows: u64,
}

impl Pending {
    /// From a backend's count (SQL counts are `bigint`; a clock step may
    /// make the oldest delta's age negative: nothing has waited).
    pub(crate) fn counted(
        daily: i64,
        regional: i64,
        program: i64,
        oldest: Option<f64>,
        held: i64,
        held_rows: i64,
    ) -> Pending {
        Pending {
            daily: daily as u64,
            regional: regional as u64,
            program: program as u64,
            oldest: oldest.map(|s| Duration::from_secs_f64(s.max(0.0))),
            held: held as u64,
            held_rows: held_rows as u64,
        }
    }

    /// Every table's rows together but the held cells': what
    /// `database.max_pending_deltas` bounds. (A held cell's deltas wait for
    /// its records to be corrected, not for the fold: counting them would
    /// stop every batch behind a producer stuck in a loop.)
    pub fn rows(&self) -> u64 {
        (self.daily + self.regional + self.program).saturating_sub(self.held_rows)
    }

    /// (table, rows), for the per-table gauge.
    pub fn tables(&self) -> [(&'static str, u64); 3] {
        [
            ("daily_deltas", self.daily),
            ("regional_deltas", self.regional),
            ("program_deltas", self.program),
        ]
    }
}

/// A count the benchmark and the tests read back.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Count {
    /// Rows in the quarantine.
    Quarantined,
    /// The database's size on disk, in bytes.
    DatabaseBytes,
    /// The sum of every partition's next offset.
    AppliedMessages,
}

/// What is read back from a database: each backend's `reads.rs`.
#[async_trait]
pub(crate) trait Reads: Send + Sync {
    /// The deltas waiting for the fold, counted exactly.
    async fn pending(&self) -> Result<Pending>;

    /// `daily_metrics` summed per (region_code, metric), in hundredths.
    async fn leaf_totals(&self) -> Result<Vec<(String, String, i64)>>;

    /// The sum of every country's yearly cells, in hundredths.
    async fn country_total(&self) -> Result<Option<i64>>;

    /// One of the counts the benchmark and the tests read.
    async fn count(&self, what: Count) -> Result<i64>;

    /// A report's rows, in one snapshot.
    async fn report_rows(&self, query: &ReportQuery) -> Result<ReportRows>;

    /// The demo's overview of the analyst tables (SQLite's).
    async fn overview(&self) -> Result<Vec<Section>> {
        Err(Error::Unsupported("the overview is for SQLite databases"))
    }
}

/// A database: its schema, its pool, its fold, and (through [`Reads`])
/// what can be read from it.
#[async_trait]
pub(crate) trait Backend: Reads {
    /// Applies the migrations that have not run yet.
    async fn migrate(&self) -> Result<()>;

    /// (latest migration applied, latest of this build).
    async fn migration_versions(&self) -> Result<(i64, i64)>;

    /// Writes the region table to `regions`; returns the rows changed.
    async fn sync_regions(&self, regions: &Regions) -> Result<u64>;

    /// The stored next offsets of those of `partitions` the database has.
    async fn stored_offsets(&self, partitions: &[(String, i32)]) -> Result<Vec<StoredOffset>>;

    /// Starts one batch's transaction.
    async fn begin(&self) -> Result<Box<dyn Transaction>>;

    /// Folds the pending deltas into the stored cells (`None`: another
    /// worker or a rebuild holds the fold).
    async fn compact(&self, share: Share) -> Result<Option<Compacted>>;

    /// Closes every connection, waiting for those in use.
    async fn close(&self);
}

/// One batch's (or one rebuild's) transaction.
#[async_trait]
pub(crate) trait Transaction: Send {
    /// Moves one partition's stored offset from `range.expected` to
    /// `range.next`; `false` if another worker moved it first.
    async fn claim(&mut self, range: &OffsetRange) -> Result<bool>;

    /// The ledger rows of these keys, locked (or under the write lock)
    /// until commit.
    async fn load_activities(&mut self, keys: &[Key]) -> Result<Vec<ActivityFact<'static>>>;
    async fn load_missions(&mut self, keys: &[Key]) -> Result<Vec<MissionFact>>;

    // The statements that write a batch, one per table, as each backend
    // words them. Their order, and what a rebuild replaces, are the same
    // for both: `batch.rs`.

    /// Inserts new ledger facts (`new`) or replaces stored ones.
    async fn write_activities(&mut self, facts: &[ActivityFact<'_>], new: bool) -> Result<()>;
    /// The same for missions, then their rows in the `missions` table.
    async fn write_missions(&mut self, facts: &[MissionFact], new: bool) -> Result<()>;
    /// Upserts the `missions` rows of facts whose dispatch is known.
    async fn write_mission_rows(&mut self, facts: &[MissionFact]) -> Result<()>;
    async fn write_programs(&mut self, programs: &[(Id, Option<String>)]) -> Result<()>;
    /// Appends the batch's deltas to the three roll-up tables.
    async fn write_daily(&mut self, c: &Changes<'_>) -> Result<()>;
    async fn write_regional(&mut self, c: &Changes<'_>) -> Result<()>;
    async fn write_program_metrics(&mut self, c: &Changes<'_>) -> Result<()>;
    async fn write_quarantine(&mut self, rows: &[QuarantineRow<'_>]) -> Result<()>;

    // A rebuild's steps.

    /// Every batch's claim waits until this transaction ends, and so does
    /// a fold.
    async fn lock_out_writers(&mut self) -> Result<()>;
    /// (activity facts, mission facts) in the ledger.
    async fn ledger_size(&mut self) -> Result<(u64, u64)>;
    /// The next `n` facts of the ledger (none once every fact was read).
    async fn next_activities(&mut self, n: usize) -> Result<Vec<ActivityFact<'static>>>;
    async fn next_missions(&mut self, n: usize) -> Result<Vec<MissionFact>>;
    /// Deletes every row of one of our tables (named without schema).
    async fn clear(&mut self, table: &str) -> Result<()>;
    /// After a rebuild's writes: brings the roll-ups to their stored form.
    async fn settle(&mut self) -> Result<()>;

    async fn commit(self: Box<Self>) -> Result<()>;
}

/// Fails with [`Error::Conflict`] unless `done` rows were written.
pub(crate) fn check_count(done: u64, expected: usize) -> Result<()> {
    if done == expected as u64 {
        Ok(())
    } else {
        Err(Error::Conflict(expected as u64 - done.min(expected as u64)))
    }
}
