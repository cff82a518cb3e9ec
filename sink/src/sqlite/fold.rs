//! Compaction on SQLite: folds the deltas that batches appended into the
//! stored cells (migration 0002), spread to their periods, in key order.
//!
//! SQLite has one writer, so a fold holds up every batch while it writes.
//! It therefore works in two phases on one connection. First, in a read
//! transaction (in WAL mode a reader never waits for the writer, nor the
//! writer for it), it sums the pending deltas per cell into a TEMP table
//! (`*_pending`, the views the analysts' views read); TEMP tables belong to
//! the connection, so writing them takes no lock on the database. That sort
//! is most of a fold's work. Then, under the write lock (`BEGIN
//! IMMEDIATE`), it adds the sums to the cells, in the key order the sort
//! left them in, and deletes the deltas it summed.
//!
//! Why this is exact: the first phase reads one snapshot, and notes the
//! highest delta id in it and how many deltas it holds. The deltas tables
//! are AUTOINCREMENT, so every delta committed later has a higher id: the
//! second phase deletes exactly the deltas up to that id, after checking
//! that they are all still there (had another process folded them
//! meanwhile, it gives up; the next fold starts afresh). The sums and the
//! deletion commit together or not at all. Readers see the cells plus the
//! pending deltas in one snapshot: the same totals before, during and
//! after a fold.
//!
//! After a drain ([`Share::Alone`]) the regions below the median region
//! code and those from it fold in two lanes, on two connections: every
//! step above (count, sort, check, delete) is restricted to the lane's
//! range, and a delta or a cell has one region code, so each lane is exact
//! on its own. The sorts run side by side (each connection has its own
//! thread); the second phases take the write lock in turn.

use sqlx::{Connection, SqliteConnection, SqlitePool};

use crate::lanes::Range;
use crate::{Compacted, Result, Share};

/// A table of deltas, the view that sums them per cell, and the upsert
/// that adds those sums (from `source`) to the cells.
struct Table {
    deltas: &'static str,
    pending: &'static str,
    /// The TEMP table of a first phase.
    temp: &'static str,
    /// `{source}` is the pending view, or the TEMP table a first phase
    /// filled from it.
    upsert: &'static str,
    /// Keyed by `region_code`, so foldable in region ranges.
    regional: bool,
}

/// The pending views' rows come out of SQLite's sort-based GROUP BY in key
/// order, so the upserts walk the cells' B-trees in order; an ORDER BY would
/// sort them a second time (the order is for speed only: the sums are the
/// same in any order).
const TABLES: [Table; 3] = [
    Table {
        deltas: "daily_deltas",
        pending: "daily_pending",
        temp: "fold_daily",
        regional: true,
        upsert: "INSERT INTO daily_cells AS c
                   (day, institution_id, program_id, mission_id, facility_id, region_code,
                    metric, dims, value)
                 SELECT * FROM {source} WHERE value <> 0
                 ON CONFLICT DO UPDATE SET value = c.value + excluded.value",
    },
    Table {
        deltas: "regional_deltas",
        pending: "regional_pending",
        temp: "fold_regional",
        regional: true,
        upsert: "INSERT INTO regional_cells AS c
                   (region_code, region_level, period_type, period_start, metric, value,
                    updated_at)
                 SELECT * FROM {source} WHERE value <> 0
                 ON CONFLICT DO UPDATE SET value = c.value + excluded.value,
                   updated_at = max(c.updated_at, excluded.updated_at)",
    },
    Table {
        deltas: "program_deltas",
        pending: "program_pending",
        temp: "fold_program",
        regional: false,
        upsert: "INSERT INTO program_cells AS c
                   (program_id, period_type, period_start, metric, value, updated_at)
                 SELECT * FROM {source} WHERE value <> 0
                 ON CONFLICT DO UPDATE SET value = c.value + excluded.value,
                   updated_at = max(c.updated_at, excluded.updated_at)",
    },
];

impl Table {
    fn upsert_from(&self, source: &str) -> String {
        self.upsert.replace("{source}", source)
    }
}

/// One compaction, in two phases per table (see the module's comment).
/// [`Share::Alone`]: the regions below the median region code (and the
/// programs) on this connection, the rest on a second one at the same time,
/// so that the first phases' sorts run on two cores; the second phases
/// take the write lock in turn.
pub(crate) async fn compact(pool: &SqlitePool, share: Share) -> Result<Compacted> {
    let mut conn = pool.acquire().await?;
    let boundary: Option<String> = match share {
        Share::Beside => None,
        Share::Alone => {
            sqlx::query_scalar(
                "SELECT region_code FROM regions ORDER BY region_code
                 LIMIT 1 OFFSET (SELECT count(*) / 2 FROM regions)",
            )
            .fetch_optional(&mut *conn)
            .await?
        }
    };
    let Some((boundary, mut second)) = crate::lanes::second_lane(pool, boundary).await else {
        let mut folds = Folds::default();
        for t in &TABLES {
            folds.add(fold_range(&mut conn, t, Range::All).await);
        }
        return folds.done();
    };
    let first = async {
        let mut folds = Folds::default();
        for t in &TABLES {
            folds.add(fold_range(&mut conn, t, Range::first_lane(t.regional, &boundary)).await);
        }
        folds.done()
    };
    let second = async {
        let mut folds = Folds::default();
        for t in TABLES.iter().filter(|t| t.regional) {
            folds.add(fold_range(&mut second, t, Range::From(&boundary)).await);
        }
        folds.done()
    };
    // Each range commits on its own, exact: the other's failure loses it
    // nothing.
    let (first, second) = futures_util::future::join(first, second).await;
    let mut done = first?;
    done += second?;
    done.lanes = 2;
    Ok(done)
}

/// Each table's fold commits on its own: one that fails (a cell past
/// 2^63 - 1, refused by migration 0003's triggers) does not keep the others
/// from folding. The first error is returned once every table has tried.
#[derive(Default)]
struct Folds {
    done: Compacted,
    error: Option<crate::Error>,
}

impl Folds {
    fn add(&mut self, fold: Result<Compacted>) {
        match fold {
            Ok(done) => self.done += done,
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
    }

    fn done(self) -> Result<Compacted> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.done),
        }
    }
}

/// The SQL condition for `range`, its boundary as parameter `?{n}` (NULL
/// for every delta, so that each statement binds the same parameters).
fn condition(range: Range<'_>, n: usize) -> String {
    match range.operator() {
        None => format!("?{n} IS NULL"),
        Some(op) => format!("region_code {op} ?{n}"),
    }
}

/// Both phases for the deltas of `range` in one table.
async fn fold_range(conn: &mut SqliteConnection, t: &Table, range: Range<'_>) -> Result<Compacted> {
    // Built from the constants above only.
    let drop_temp = format!("DROP TABLE IF EXISTS temp.{}", t.temp);
    sqlx::query(sqlx::AssertSqlSafe(drop_temp.clone()))
        .execute(&mut *conn)
        .await?;
    let (last, n) = sort_pending(conn, t, range).await?;
    if n == 0 {
        return Ok(Compacted::default());
    }
    let done = add_sorted(conn, t, range, last, n).await?;
    sqlx::query(sqlx::AssertSqlSafe(drop_temp))
        .execute(&mut *conn)
        .await?;
    Ok(done)
}

/// The first phase, in a read transaction: the pending deltas of `range`
/// summed per cell into the table's TEMP table. Returns the highest delta
/// id seen and how many deltas it summed (none: no TEMP table).
async fn sort_pending(
    conn: &mut SqliteConnection,
    t: &Table,
    range: Range<'_>,
) -> Result<(i64, i64)> {
    let mut read = conn.begin().await?;
    let (last, n): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT ifnull(max(id), 0), count(*) FROM {} WHERE {}",
        t.deltas,
        condition(range, 1)
    )))
    .bind(range.boundary())
    .fetch_one(&mut *read)
    .await?;
    if n > 0 {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TEMP TABLE {} AS SELECT * FROM {} WHERE {}",
            t.temp,
            t.pending,
            condition(range, 1)
        )))
        .bind(range.boundary())
        .execute(&mut *read)
        .await?;
    }
    read.commit().await?;
    Ok((last, n))
}

/// The second phase, under the write lock: the sums added to the cells and
/// the `n` deltas up to `last` deleted, if all of them are still there.
async fn add_sorted(
    conn: &mut SqliteConnection,
    t: &Table,
    range: Range<'_>,
    last: i64,
    n: i64,
) -> Result<Compacted> {
    let mut write = conn.begin_with("BEGIN IMMEDIATE").await?;
    let still: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {} WHERE id <= ?1 AND {}",
        t.deltas,
        condition(range, 2)
    )))
    .bind(last)
    .bind(range.boundary())
    .fetch_one(&mut *write)
    .await?;
    if still != n {
        // Another process folded some of them; the next fold starts
        // afresh.
        write.rollback().await?;
        return Ok(Compacted::default());
    }
    let temp = format!("temp.{}", t.temp);
    let done = add(&mut write, t, &temp, Some(last), range).await?;
    write.commit().await?;
    Ok(done)
}

/// Folds every pending delta inside the caller's transaction, which holds
/// the write lock (a rebuild's last step).
pub(crate) async fn fold(conn: &mut SqliteConnection) -> Result<Compacted> {
    let mut done = Compacted::default();
    for t in &TABLES {
        done += add(conn, t, t.pending, None, Range::All).await?;
    }
    Ok(done)
}

/// Adds the sums in `source` to the cells and deletes the deltas of `range`
/// they came from (those up to id `last`, or all).
async fn add(
    conn: &mut SqliteConnection,
    t: &Table,
    source: &str,
    last: Option<i64>,
    range: Range<'_>,
) -> Result<Compacted> {
    let cells = sqlx::query(sqlx::AssertSqlSafe(t.upsert_from(source)))
        .execute(&mut *conn)
        .await?
        .rows_affected();
    let deltas = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {} WHERE id <= ?1 AND {}",
        t.deltas,
        condition(range, 2)
    )))
    .bind(last.unwrap_or(i64::MAX))
    .bind(range.boundary())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(Compacted {
        deltas,
        cells,
        lanes: 1,
    })
}
