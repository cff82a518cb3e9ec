//! Compaction on SQLite: folds the deltas that batches appended into the
//! stored cells (migration 0002), spread to their periods, in key order.
//!
//! SQLite has one writer, so a fold holds up every batch while it writes.
//! It therefore works in two phases. It first reads a chunk of pending
//! deltas (oldest first, without the write lock: in WAL mode a reader never
//! waits for the writer) and sums them per cell in memory, spread to the
//! five periods; SQLite's sort-based GROUP BY took 3–4 µs per row for this,
//! most of a fold (docs/performance.md). Then, under the write lock
//! (`BEGIN IMMEDIATE`), it adds the sums to the cells in key order and
//! deletes the deltas it read.
//!
//! Why this is exact: the deltas tables are AUTOINCREMENT, so a rowid is
//! never reused and every delta appended after the read has a higher rowid
//! than the chunk's last; the write phase deletes exactly the rows up to
//! that rowid, after checking that they are all still there (had another
//! process folded them meanwhile, it gives up and reads again). The sums
//! and the deletion commit together or not at all. Readers see the cells
//! plus the pending deltas in one snapshot: the same totals before, during
//! and after a fold.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use futures_util::TryStreamExt;
use schemas::Period;
use sqlx::{SqliteConnection, SqlitePool};

use super::json;
use crate::{Compacted, Result};

/// Deltas read per chunk: at most five cells each in memory (under 100
/// bytes a cell), so a chunk stays under about 25 MB however long the
/// backlog.
const CHUNK: i64 = 50_000;

/// Cells per upsert statement (one JSON parameter each).
const UPSERT_ROWS: usize = 20_000;

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A table of day-grain deltas and its cells.
struct Table {
    deltas: &'static str,
    /// rowid, group (region or program), level (regional only), day,
    /// metric, value, updated_at: the deltas past a rowid, oldest first.
    read: &'static str,
    /// Adds `json_each` rows (group, level, period_type, period_start,
    /// metric, value, updated_at) to the cells.
    upsert: &'static str,
}

const REGIONAL: Table = Table {
    deltas: "regional_deltas",
    read: "SELECT rowid, region_code, region_level, day, metric, value, updated_at
           FROM regional_deltas ORDER BY rowid LIMIT ?1",
    upsert: "INSERT INTO regional_cells AS c
               (region_code, region_level, period_type, period_start, metric, value, updated_at)
             SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4, j.value->>5,
                    j.value->>6
             FROM json_each(?1) AS j WHERE true
             ON CONFLICT DO UPDATE SET value = c.value + excluded.value,
               updated_at = max(c.updated_at, excluded.updated_at)",
};

const PROGRAM: Table = Table {
    deltas: "program_deltas",
    read: "SELECT rowid, program_id, NULL, day, metric, value, updated_at
           FROM program_deltas ORDER BY rowid LIMIT ?1",
    upsert: "INSERT INTO program_cells AS c
               (program_id, period_type, period_start, metric, value, updated_at)
             SELECT j.value->>0, j.value->>2, j.value->>3, j.value->>4, j.value->>5, j.value->>6
             FROM json_each(?1) AS j WHERE true
             ON CONFLICT DO UPDATE SET value = c.value + excluded.value,
               updated_at = max(c.updated_at, excluded.updated_at)",
};

/// `daily_metrics`' deltas are one per event and cell and rarely collapse:
/// summed and added in one statement. Its rows come out of SQLite's
/// sort-based GROUP BY in key order, so the upsert walks the cells' B-tree
/// in order (an ORDER BY would sort them a second time; the order is for
/// speed only).
const FOLD_DAILY: &str = "INSERT INTO daily_cells AS c
       (day, institution_id, program_id, mission_id, facility_id, region_code, metric, dims, value)
     SELECT * FROM daily_pending WHERE value <> 0
     ON CONFLICT DO UPDATE SET value = c.value + excluded.value";

/// Folds every pending delta. Between chunks the write lock is let go, so
/// batches go on.
pub(crate) async fn compact(pool: &SqlitePool) -> Result<Compacted> {
    let mut done = Compacted::default();
    for t in [&REGIONAL, &PROGRAM] {
        loop {
            let chunk = read(&mut *pool.acquire().await?, t).await?;
            if chunk.read == 0 {
                break;
            }
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            // Otherwise another process folded them: dropping the
            // transaction rolls it back, and the next chunk is read afresh.
            if still_pending(&mut tx, t, &chunk).await? {
                done += write(&mut tx, t, &chunk).await?;
                tx.commit().await?;
            }
            if chunk.read < CHUNK as u64 {
                break;
            }
        }
    }
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    done += fold_daily(&mut tx).await?;
    tx.commit().await?;
    Ok(done)
}

/// Folds every pending delta inside the caller's transaction, which holds
/// the write lock (a rebuild's last step).
pub(crate) async fn fold(conn: &mut SqliteConnection) -> Result<Compacted> {
    let mut done = Compacted::default();
    for t in [&REGIONAL, &PROGRAM] {
        loop {
            let chunk = read(conn, t).await?;
            if chunk.read == 0 {
                break;
            }
            done += write(conn, t, &chunk).await?;
        }
    }
    done += fold_daily(conn).await?;
    Ok(done)
}

async fn fold_daily(conn: &mut SqliteConnection) -> Result<Compacted> {
    let cells = sqlx::query(FOLD_DAILY).execute(&mut *conn).await?;
    let deltas = sqlx::query("DELETE FROM daily_deltas")
        .execute(&mut *conn)
        .await?;
    Ok(Compacted {
        deltas: deltas.rows_affected(),
        cells: cells.rows_affected(),
    })
}

/// The oldest pending deltas of a table, summed per cell.
struct Chunk {
    /// Deltas read, and the rowid of the last.
    read: u64,
    last: i64,
    /// (group, level, period, start, metric, value, updated_at), in the
    /// cells' key order.
    cells: Vec<(Arc<str>, Arc<str>, Period, NaiveDate, Arc<str>, i64, Arc<str>)>,
}

/// Reads up to [`CHUNK`] deltas and sums them per cell of every period.
async fn read(conn: &mut SqliteConnection, t: &Table) -> Result<Chunk> {
    let mut strings = Interner::default();
    // (group, period, start, metric) -> (value, level, updated_at)
    let mut sums: Map<(Arc<str>, Period, NaiveDate, Arc<str>), (i64, Arc<str>, Arc<str>)> =
        Map::default();
    let (mut read, mut last) = (0, 0);
    let mut rows = sqlx::query_as::<_, (i64, String, Option<String>, NaiveDate, String, i64, String)>(
        sqlx::AssertSqlSafe(t.read),
    )
    .bind(CHUNK)
    .fetch(&mut *conn);
    while let Some((rowid, group, level, day, metric, value, updated)) = rows.try_next().await? {
        read += 1;
        last = rowid;
        let (group, metric) = (strings.get(group), strings.get(metric));
        let level = strings.get(level.unwrap_or_default());
        let updated = strings.get(updated);
        for p in Period::ALL {
            let key = (group.clone(), p, p.start(day), metric.clone());
            let cell = sums
                .entry(key)
                .or_insert_with(|| (0, level.clone(), updated.clone()));
            cell.0 += value;
            if updated > cell.2 {
                cell.2 = updated.clone();
            }
        }
    }
    drop(rows);
    let mut cells: Vec<_> = sums
        .into_iter()
        .filter(|(_, (value, ..))| *value != 0)
        .map(|((g, p, s, m), (v, l, u))| (g, l, p, s, m, v, u))
        .collect();
    // The cells' key order: text order of (group, period_type,
    // period_start, metric).
    cells.sort_unstable_by(|a, b| {
        (&a.0, a.2.as_str(), a.3, &a.4).cmp(&(&b.0, b.2.as_str(), b.3, &b.4))
    });
    Ok(Chunk { read, last, cells })
}

/// Whether every delta of the chunk is still pending (no other process
/// folded it since it was read). Under the write lock.
async fn still_pending(conn: &mut SqliteConnection, t: &Table, chunk: &Chunk) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {} WHERE rowid <= ?1",
        t.deltas
    )))
    .bind(chunk.last)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n as u64 == chunk.read)
}

/// Adds a chunk's sums to the cells and deletes its deltas. Under the
/// write lock.
async fn write(conn: &mut SqliteConnection, t: &Table, chunk: &Chunk) -> Result<Compacted> {
    let mut cells = 0;
    for rows in chunk.cells.chunks(UPSERT_ROWS) {
        let rows: Vec<_> = rows
            .iter()
            .map(|(g, l, p, s, m, v, u)| (&**g, &**l, p.as_str(), s, &**m, v, &**u))
            .collect();
        cells += sqlx::query(sqlx::AssertSqlSafe(t.upsert))
            .bind(json(&rows))
            .execute(&mut *conn)
            .await?
            .rows_affected();
    }
    let deltas = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {} WHERE rowid <= ?1",
        t.deltas
    )))
    .bind(chunk.last)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(Compacted { deltas, cells })
}

/// One `Arc<str>` per distinct string of a chunk.
#[derive(Default)]
struct Interner(Map<String, Arc<str>>);

impl Interner {
    fn get(&mut self, s: String) -> Arc<str> {
        if let Some(a) = self.0.get(&s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s.as_str());
        self.0.insert(s, a.clone());
        a
    }
}
