//! One batch, one transaction, whichever the backend: [`Batch`] runs each
//! step on the backend's [`Transaction`], in the order that is the same
//! for both: the claim in partition order, the ledger before the
//! roll-ups, and what a rebuild empties and writes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use schemas::{ActivityFact, Changes, MissionFact, OffsetRange};

use crate::backend::{Key, QuarantineRow, Transaction};
use crate::{Error, Result};

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

/// The ledger rows a batch touches, by key.
pub type Loaded = (
    HashMap<Key, ActivityFact<'static>>,
    HashMap<Key, MissionFact>,
);

/// The transaction of one batch.
pub struct Batch {
    tx: Box<dyn Transaction>,
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

impl Batch {
    pub(crate) fn new(tx: Box<dyn Transaction>) -> Batch {
        Batch { tx }
    }

    /// Moves each partition's stored offset from `expected` to `next`, or
    /// fails with [`Error::Fenced`] if another worker moved it first.
    /// Partitions are claimed in (topic, partition) order, the same in
    /// every worker, so that workers waiting for each other's offsets
    /// never deadlock.
    pub async fn claim(&mut self, ranges: &[OffsetRange]) -> Result<()> {
        let mut ranges: Vec<&OffsetRange> = ranges.iter().collect();
        ranges.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        for r in ranges {
            if !self.tx.claim(r).await? {
                return Err(Error::Fenced {
                    topic: r.topic.to_string(),
                    partition: r.partition,
                    expected: r.expected,
                });
            }
        }
        Ok(())
    }

    /// The ledger rows of these keys, locked until commit.
    pub async fn load(&mut self, activity_keys: &[Key], mission_keys: &[Key]) -> Result<Loaded> {
        let activities = self.tx.load_activities(activity_keys).await?;
        let missions = self.tx.load_missions(mission_keys).await?;
        Ok((
            activities
                .into_iter()
                .map(|f| {
                    let key = (
                        f.institution.clone().into_owned(),
                        f.record_id.clone().into_owned(),
                    );
                    (key, f)
                })
                .collect(),
            missions
                .into_iter()
                .map(|f| ((f.institution.clone(), f.mission_id.clone()), f))
                .collect(),
        ))
    }

    /// Writes a batch's changes and its quarantined messages: the ledger
    /// first (so a concurrent insert is detected before any roll-up
    /// moves), then each roll-up table. Returns how long each group of
    /// statements took.
    pub async fn write(
        &mut self,
        c: &Changes<'_>,
        quarantine: &[QuarantineRow<'_>],
    ) -> Result<WriteTimings> {
        let tx = &mut self.tx;
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

    /// For a rebuild: every batch's claim waits until this transaction
    /// ends, and a batch in flight is waited for. Readers go on.
    pub async fn lock_out_writers(&mut self) -> Result<()> {
        self.tx.lock_out_writers().await
    }

    /// For a rebuild: (activity facts, mission facts) in the ledger.
    pub async fn ledger_size(&mut self) -> Result<(u64, u64)> {
        self.tx.ledger_size().await
    }

    /// For a rebuild: the next `n` activity facts of the ledger (none
    /// once every fact was read). The rebuild reads the ledger in chunks,
    /// so its memory does not grow with the ledger.
    pub async fn next_activities(&mut self, n: usize) -> Result<Vec<ActivityFact<'static>>> {
        self.tx.next_activities(n).await
    }

    /// For a rebuild: the next `n` mission facts of the ledger.
    pub async fn next_missions(&mut self, n: usize) -> Result<Vec<MissionFact>> {
        self.tx.next_missions(n).await
    }

    /// For a rebuild: empties `daily_metrics`, `regional_metrics`,
    /// `program_metrics` and `missions`. Other connections keep reading
    /// the old contents until commit (MVCC in Postgres, WAL snapshots in
    /// SQLite), then the new ones, never a mix.
    pub async fn clear_derived(&mut self) -> Result<()> {
        for table in DERIVED {
            self.tx.clear(table).await?;
        }
        Ok(())
    }

    /// For a rebuild: adds `c`'s cells (the full contributions of a part of
    /// the ledger) and writes `missions`' rows.
    pub async fn add_rebuilt(&mut self, c: &Changes<'_>, missions: &[MissionFact]) -> Result<()> {
        self.tx.write_mission_rows(missions).await?;
        self.tx.write_daily(c).await?;
        self.tx.write_regional(c).await?;
        self.tx.write_program_metrics(c).await
    }

    /// For a rebuild, last: brings the roll-ups to their stored form
    /// (the deltas written into the emptied cells are folded).
    pub async fn settle(&mut self) -> Result<()> {
        self.tx.settle().await
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await
    }
}
