//! One batch, one transaction, whichever the backend: the types callers fill
//! in, and [`Batch`], which hands each step to the backend's transaction.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use schemas::{ActivityFact, Changes, ErrorCode, Id, MissionFact, OffsetRange};

use crate::{Result, postgres, sqlite};

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

/// Where a batch's write time went.
#[derive(Debug, Default, Clone, Copy)]
pub struct WriteTimings {
    /// Ledger rows, missions, programs.
    pub ledger: Duration,
    pub daily: Duration,
    pub regional: Duration,
    /// `program_metrics` and the quarantine.
    pub program: Duration,
}

impl std::ops::AddAssign for WriteTimings {
    fn add_assign(&mut self, o: Self) {
        self.ledger += o.ledger;
        self.daily += o.daily;
        self.regional += o.regional;
        self.program += o.program;
    }
}

/// (institution, record_id) or (institution, mission_id).
pub(crate) type Key = (Id, Id);

/// The transaction of one batch.
pub struct Batch {
    tx: Tx,
}

enum Tx {
    Postgres(postgres::Batch),
    Sqlite(sqlite::Batch),
}

/// Hands a call to the backend's transaction.
macro_rules! each {
    ($self:ident, $tx:ident => $call:expr) => {
        match &mut $self.tx {
            Tx::Postgres($tx) => $call,
            Tx::Sqlite($tx) => $call,
        }
    };
}

impl Batch {
    pub(crate) fn postgres(tx: postgres::Batch) -> Batch {
        Batch {
            tx: Tx::Postgres(tx),
        }
    }

    pub(crate) fn sqlite(tx: sqlite::Batch) -> Batch {
        Batch { tx: Tx::Sqlite(tx) }
    }

    /// Moves each partition's stored offset from `expected` to `next`, or
    /// fails with [`crate::Error::Fenced`] if another worker moved it first.
    pub async fn claim(&mut self, ranges: &[OffsetRange]) -> Result<()> {
        let mut ranges: Vec<&OffsetRange> = ranges.iter().collect();
        ranges.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        each!(self, tx => tx.claim(&ranges).await)
    }

    /// The ledger rows of these keys, locked until commit.
    pub async fn load(
        &mut self,
        activity_keys: &[Key],
        mission_keys: &[Key],
    ) -> Result<(
        HashMap<Key, ActivityFact<'static>>,
        HashMap<Key, MissionFact>,
    )> {
        let (activities, missions) = each!(self, tx => tx.load(activity_keys, mission_keys).await)?;
        Ok((
            activities
                .into_iter()
                .map(|f| {
                    (
                        (
                            f.institution.clone().into_owned(),
                            f.record_id.clone().into_owned(),
                        ),
                        f,
                    )
                })
                .collect(),
            missions
                .into_iter()
                .map(|f| ((f.institution.clone(), f.mission_id.clone()), f))
                .collect(),
        ))
    }

    /// Writes a batch's changes and its quarantined messages.
    /// Returns how long each group of statements took.
    pub async fn write(
        &mut self,
        c: &Changes<'_>,
        quarantine: &[QuarantineRow<'_>],
    ) -> Result<WriteTimings> {
        each!(self, tx => write(tx, c, quarantine).await)
    }

    /// For a rebuild: every batch's claim waits until this transaction
    /// ends, and a batch in flight is waited for. Readers go on.
    pub async fn lock_out_writers(&mut self) -> Result<()> {
        match &mut self.tx {
            Tx::Postgres(tx) => tx.lock_out_writers().await,
            // The transaction began IMMEDIATE: it holds the write lock.
            Tx::Sqlite(_) => Ok(()),
        }
    }

    /// For a rebuild: (activity facts, mission facts) in the ledger.
    pub async fn ledger_size(&mut self) -> Result<(u64, u64)> {
        each!(self, tx => tx.ledger_size().await)
    }

    /// For a rebuild: the next `n` activity facts of the ledger (none
    /// once every fact was read). The rebuild reads the ledger in chunks,
    /// so its memory does not grow with the ledger.
    pub async fn next_activities(&mut self, n: usize) -> Result<Vec<ActivityFact<'static>>> {
        each!(self, tx => tx.next_activities(n).await)
    }

    /// For a rebuild: the next `n` mission facts of the ledger.
    pub async fn next_missions(&mut self, n: usize) -> Result<Vec<MissionFact>> {
        each!(self, tx => tx.next_missions(n).await)
    }

    /// For a rebuild: empties `daily_metrics`, `regional_metrics`,
    /// `program_metrics` and `missions`. Other connections keep reading
    /// the old contents until commit (MVCC in Postgres, WAL snapshots in
    /// SQLite), then the new ones, never a mix.
    pub async fn clear_derived(&mut self) -> Result<()> {
        each!(self, tx => clear_derived(tx).await)
    }

    /// For a rebuild: adds `c`'s cells (the full contributions of a part of
    /// the ledger) and writes `missions`' rows.
    pub async fn add_rebuilt(&mut self, c: &Changes<'_>, missions: &[MissionFact]) -> Result<()> {
        each!(self, tx => add_rebuilt(tx, c, missions).await)
    }

    /// For a rebuild, last: brings the roll-ups to their stored form
    /// (Postgres folds the deltas written into the emptied cells).
    pub async fn settle(&mut self) -> Result<()> {
        each!(self, tx => tx.settle().await)
    }

    pub async fn commit(self) -> Result<()> {
        match self.tx {
            Tx::Postgres(tx) => tx.commit().await,
            Tx::Sqlite(tx) => tx.commit().await,
        }
    }
}

/// The statements that write a batch, one per table, as each backend
/// words them. Their order, and what a rebuild replaces, are the same for
/// both: [`write`], [`clear_derived`] and [`add_rebuilt`].
pub(crate) trait Statements {
    /// Inserts new ledger facts (`new`) or replaces stored ones.
    async fn write_activities(&mut self, facts: &[ActivityFact<'_>], new: bool) -> Result<()>;
    /// The same for missions, then their rows in the `missions` table.
    async fn write_missions(&mut self, facts: &[MissionFact], new: bool) -> Result<()>;
    /// Upserts the `missions` rows of facts whose dispatch is known.
    async fn write_mission_rows(&mut self, facts: &[MissionFact]) -> Result<()>;
    async fn write_programs(&mut self, programs: &[(Id, Option<String>)]) -> Result<()>;
    /// Adds the batch's deltas to the three roll-up tables.
    async fn write_daily(&mut self, c: &Changes<'_>) -> Result<()>;
    async fn write_regional(&mut self, c: &Changes<'_>) -> Result<()>;
    async fn write_program_metrics(&mut self, c: &Changes<'_>) -> Result<()>;
    async fn write_quarantine(&mut self, rows: &[QuarantineRow<'_>]) -> Result<()>;
    /// Deletes every row of one of our tables (named without schema).
    async fn clear(&mut self, table: &str) -> Result<()>;
    /// After a rebuild's writes: brings the roll-ups to their stored form
    /// (Postgres folds the deltas just written into the cells).
    async fn settle(&mut self) -> Result<()>;
}

/// The ledger first (so a concurrent insert is detected before any
/// aggregate moves), then each roll-up table, timing each group.
async fn write<S: Statements>(
    tx: &mut S,
    c: &Changes<'_>,
    quarantine: &[QuarantineRow<'_>],
) -> Result<WriteTimings> {
    let mut t = WriteTimings::default();
    let mut clock = Instant::now();
    let mut lap = |slot: &mut Duration| {
        *slot += clock.elapsed();
        clock = Instant::now();
    };
    tx.write_activities(&c.activities_new, true).await?;
    tx.write_activities(&c.activities_replaced, false).await?;
    tx.write_activities(&c.activities_restamped, false).await?;
    tx.write_missions(&c.missions_new, true).await?;
    tx.write_missions(&c.missions_replaced, false).await?;
    tx.write_programs(&c.programs).await?;
    lap(&mut t.ledger);
    tx.write_daily(c).await?;
    lap(&mut t.daily);
    tx.write_regional(c).await?;
    lap(&mut t.regional);
    tx.write_program_metrics(c).await?;
    tx.write_quarantine(quarantine).await?;
    lap(&mut t.program);
    Ok(t)
}

/// What a rebuild empties: `missions`, and the stored cells and pending
/// deltas that the analysts' roll-ups are views over, on both backends.
const DERIVED: [&str; 7] = [
    "daily_cells",
    "daily_deltas",
    "regional_cells",
    "regional_deltas",
    "program_cells",
    "program_deltas",
    "missions",
];

async fn clear_derived<S: Statements>(tx: &mut S) -> Result<()> {
    for table in DERIVED {
        tx.clear(table).await?;
    }
    Ok(())
}

async fn add_rebuilt<S: Statements>(
    tx: &mut S,
    c: &Changes<'_>,
    missions: &[MissionFact],
) -> Result<()> {
    tx.write_mission_rows(missions).await?;
    tx.write_daily(c).await?;
    tx.write_regional(c).await?;
    tx.write_program_metrics(c).await
}

/// Fails with [`crate::Error::Conflict`] unless `done` rows were written.
pub(crate) fn check_count(done: u64, expected: usize) -> Result<()> {
    if done == expected as u64 {
        Ok(())
    } else {
        Err(crate::Error::Conflict(
            expected as u64 - done.min(expected as u64),
        ))
    }
}
