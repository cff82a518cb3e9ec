//! Compaction: folds the deltas that batches appended into the stored
//! cells, one compaction at a time across every worker (an advisory lock),
//! in transactions of its own beside the batches.
//!
//! When nothing else waits for the database (after a drain), a compaction
//! works in two lanes, two connections at once: the cells of regions below
//! the median region code in one, the rest in the other
//! (`regional_metrics` is most of a fold, and one statement runs on one
//! core: after the last batch, the fold is what a backfill waits for).
//!
//! Why this is exact: a delta row is either still in `*_deltas` or already
//! added to `*_cells`, never both and never neither, because the DELETE
//! that takes it out and the upsert that adds it in are one statement of
//! one transaction. The analyst views sum both sides in one snapshot, so a
//! reader sees the same totals before, during and after a compaction. The
//! lanes fold disjoint key ranges (each delta and each cell has one region
//! code), so they never touch the same row, and each lane's commit is
//! exact on its own.
//! Batches only append, so they never wait for a compaction, nor it for
//! them; rows a batch commits while a compaction runs are left for the next.
//!
//! This file holds what each table's fold moves (`TABLES`, and `PERIODS`:
//! each period summed from the next finer one, `date_trunc` on
//! `timestamp`, the same rule as the views' `outreach.period_starts`) and
//! the lanes; `sql` words a table's statement, `cells` runs it and holds
//! back the cells whose sums would not fit.

mod cells;
mod sql;

use sqlx::{Connection, PgConnection};

use crate::lanes::Range;
use crate::{Compacted, Result, Share};

use cells::held_tables;

/// Held by whoever writes the cells: shared by each lane of a compaction,
/// exclusive by a rebuild, which writes them itself.
pub(crate) const LOCK: i64 = 7_261_002_115;

/// Held by the one compaction running across every worker.
const COMPACTION: i64 = 7_261_002_116;

/// Per table: the deltas, the cells, their key, and the columns carried
/// besides key and value.
struct Table {
    deltas: &'static str,
    cells: &'static str,
    /// The deltas' key: the cells' key, or (regional, program) the owner
    /// and metric with `day` in place of the period and its first day.
    delta_key: &'static [&'static str],
    /// Where the deltas hold days (migration 0004): the columns before the
    /// period in the cells' key (the owner: region or program). `None`:
    /// the deltas have the cells' key (daily).
    owner: Option<&'static str>,
    key: &'static [&'static str],
    conflict: &'static str,
    /// The columns carried besides key and value.
    carried: &'static [Carried],
    /// Keyed by `region_code`, so foldable in region ranges.
    regional: bool,
    /// The deltas' column a held cell is known by (migration 0007).
    held_owner: &'static str,
}

/// A column a cell carries besides its key and value.
struct Carried {
    column: &'static str,
    /// The aggregate that combines several deltas' values.
    deltas: &'static str,
    /// How the stored value combines with the folded one (`c`: the cell,
    /// `excluded`: the fold's row).
    stored: &'static str,
}

/// Which deltas a fold takes, as to the held cells (migration 0007).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// The table has no held cell: every delta of the range.
    None,
    /// Every delta of the range but the held cells'.
    Exclude,
    /// Only the held cells' deltas (to see whether they fit again).
    Only,
}

/// Where a fold's sums go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The range holds cells: the sums are added to them (an upsert).
    Cells,
    /// The range holds no cell (a first backfill, the fold after a
    /// rebuild): a plain insert in key order, without the upsert's
    /// conflict checks. Nothing else writes the cells meanwhile: batches
    /// only append deltas, the other lane has other regions, and a rebuild
    /// waits for [`LOCK`].
    Empty,
}

/// The key of `daily_metrics`, the same in its cells and deltas.
const DAILY_KEY: [&str; 8] = [
    "day",
    "institution_id",
    "program_id",
    "mission_id",
    "facility_id",
    "region_code",
    "metric",
    "dims",
];

/// Each period's sums from a finer period's sums rather than from the
/// deltas: a day's deltas are summed once, weeks and months from the days,
/// quarters from the months, years from the quarters. Each step groups far
/// fewer rows than the one before (measured in psql on 3 M regional
/// deltas: 18 s against 62 s for spreading every delta to its five periods
/// with `period_starts` and grouping them all). On `timestamp`, not
/// `timestamptz`, as `period_starts` (migration 0004): no time zone.
/// (period, the finer period it sums.)
const PERIODS: [(&str, &str); 4] = [
    ("week", "day"),
    ("month", "day"),
    ("quarter", "month"),
    ("year", "quarter"),
];

/// When a cell last changed: the latest of its deltas'.
const UPDATED_AT: Carried = Carried {
    column: "updated_at",
    deltas: "max",
    stored: "greatest(c.updated_at, excluded.updated_at)",
};

const TABLES: [Table; 3] = [
    Table {
        deltas: "daily_deltas",
        cells: "daily_cells",
        delta_key: &DAILY_KEY,
        owner: None,
        key: &DAILY_KEY,
        conflict: "ON CONSTRAINT daily_cells_key",
        carried: &[],
        regional: true,
        held_owner: "region_code",
    },
    Table {
        deltas: "regional_deltas",
        cells: "regional_cells",
        delta_key: &["region_code", "day", "metric"],
        owner: Some("region_code"),
        key: &["region_code", "period_type", "period_start", "metric"],
        conflict: "(region_code, period_type, period_start, metric)",
        carried: &[
            Carried {
                column: "region_level",
                deltas: "min",
                stored: "c.region_level",
            },
            UPDATED_AT,
        ],
        regional: true,
        held_owner: "region_code",
    },
    Table {
        deltas: "program_deltas",
        cells: "program_cells",
        delta_key: &["program_id", "day", "metric"],
        owner: Some("program_id"),
        key: &["program_id", "period_type", "period_start", "metric"],
        conflict: "(program_id, period_type, period_start, metric)",
        carried: &[UPDATED_AT],
        regional: false,
        held_owner: "program_id",
    },
];

/// Moves every delta visible to this transaction into the cells. The
/// caller holds [`LOCK`].
pub(crate) async fn fold(conn: &mut PgConnection) -> Result<Compacted> {
    let held = held_tables(conn).await?;
    let mut done = Compacted::default();
    for t in &TABLES {
        done += t.fold(conn, Range::All, t.held_in(&held)).await?;
    }
    Ok(done)
}

/// One compaction, unless another worker's (or a rebuild) is running
/// (`None`). [`Share::Beside`]: every table in this transaction.
/// [`Share::Alone`]: this transaction folds the regions below the median
/// code and the programs; a second lane, the regions from it, in a
/// transaction of its own on a second connection, at the same time.
pub(crate) async fn compact(pool: &sqlx::PgPool, share: Share) -> Result<Option<Compacted>> {
    let mut tx = pool.begin().await?;
    if !lane_locks(&mut tx, true).await? {
        return Ok(None);
    }
    let boundary = match share {
        Share::Beside => None,
        Share::Alone => median_region(&mut tx).await?,
    };
    let Some((boundary, mut second_conn)) = crate::lanes::second_lane(pool, boundary).await else {
        let done = fold(&mut tx).await?;
        tx.commit().await?;
        return Ok(Some(done));
    };
    let first = async {
        let held = held_tables(&mut tx).await?;
        let mut done = Compacted::default();
        for t in &TABLES {
            done += t
                .fold(
                    &mut tx,
                    Range::first_lane(t.regional, &boundary),
                    t.held_in(&held),
                )
                .await?;
        }
        Ok::<_, crate::Error>(done)
    };
    let second = async {
        let mut tx = second_conn.begin().await?;
        if !lane_locks(&mut tx, false).await? {
            // A rebuild waits for the first lane: it folds everything.
            return Ok(Compacted::default());
        }
        let held = held_tables(&mut tx).await?;
        let mut done = Compacted::default();
        for t in TABLES.iter().filter(|t| t.regional) {
            done += t
                .fold(&mut tx, Range::From(&boundary), t.held_in(&held))
                .await?;
        }
        tx.commit().await?;
        Ok::<_, crate::Error>(done)
    };
    let (first, second) = futures_util::future::join(first, second).await;
    // Each lane is exact on its own: the first commits even if the second
    // failed (the second's deltas wait for the next fold).
    let mut done = first?;
    tx.commit().await?;
    done += second?;
    done.lanes = 2;
    Ok(Some(done))
}

/// The median of the region table's codes, where two lanes split: regions
/// are where the cells are (none yet: one lane does it all).
async fn median_region(tx: &mut PgConnection) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT region_code FROM outreach.regions ORDER BY region_code
         OFFSET (SELECT count(*) / 2 FROM outreach.regions) LIMIT 1",
    )
    .fetch_optional(&mut *tx)
    .await?)
}

/// After the fold that ends a backfill: the deltas tables are heaps of
/// dead rows (a fold deletes what it moves) until autovacuum comes by, a
/// minute or more later, and every analyst view scans them: measured on
/// 200,000 uniform events, "one county by month" took 16 ms on the views
/// against 0.4 ms on plain tables. VACUUM frees the pages (and gives back
/// the empty tail), beside any batches appending meanwhile. It needs the
/// tables' owner: a pipeline connected as the writer role gets Postgres'
/// warning and leaves it to autovacuum. Failure changes no total, so it is
/// only logged.
pub(crate) async fn vacuum_deltas(pool: &sqlx::PgPool) {
    let vacuum = sqlx::raw_sql(
        "VACUUM (SKIP_LOCKED) outreach.daily_deltas, outreach.regional_deltas, outreach.program_deltas",
    );
    if let Err(e) = vacuum.execute(pool).await {
        tracing::warn!(error = %e, "vacuuming the delta tables after the fold failed; autovacuum will");
    }
}

/// Takes a lane's locks in its transaction: for the first lane
/// [`COMPACTION`], then for both [`LOCK`] shared (no rebuild writes the
/// cells meanwhile). False if one is taken.
async fn lane_locks(tx: &mut PgConnection, first: bool) -> Result<bool> {
    // A compaction lost in a crash loses nothing: its deletes and upserts
    // go together, and the deltas are folded again by the next one.
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    if first && !try_lock(tx, "SELECT pg_try_advisory_xact_lock($1)", COMPACTION).await? {
        return Ok(false);
    }
    try_lock(tx, "SELECT pg_try_advisory_xact_lock_shared($1)", LOCK).await
}

async fn try_lock(tx: &mut PgConnection, sql: &'static str, key: i64) -> Result<bool> {
    Ok(sqlx::query_scalar(sql).bind(key).fetch_one(tx).await?)
}
