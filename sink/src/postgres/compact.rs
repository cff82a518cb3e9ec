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

use sqlx::{Connection, PgConnection};

use crate::lanes::Range;
use crate::{Result, Share};

/// Held by whoever writes the cells: shared by each lane of a compaction,
/// exclusive by a rebuild, which writes them itself.
pub(crate) const LOCK: i64 = 7_261_002_115;

/// Held by the one compaction running across every worker.
const COMPACTION: i64 = 7_261_002_116;

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

/// Per table: the deltas, the cells, their key, and the columns carried
/// besides key and value.
struct Table {
    deltas: &'static str,
    cells: &'static str,
    /// The deltas' key: the cells' key, or (regional, program) the same with
    /// `day` in place of the period and its first day.
    delta_key: &'static [&'static str],
    /// Where the cells' key comes from: the deleted deltas (`moved`), spread
    /// to their periods where the deltas hold days (migration 0004).
    from: &'static str,
    key: &'static [&'static str],
    conflict: &'static str,
    /// (column, how several deltas' values combine, how the stored value
    /// combines with the folded one).
    extra: &'static [(&'static str, &'static str, &'static str)],
    /// Keyed by `region_code`, so foldable in region ranges.
    regional: bool,
}

/// The DELETE's condition for `range`, its boundary bound as `$1`.
fn predicate(range: Range<'_>) -> String {
    range
        .operator()
        .map(|op| format!(" WHERE region_code {op} $1"))
        .unwrap_or_default()
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

/// Day-grain deltas summed per day first (deltas of many batches collapse
/// there), then one row per period holding the day.
const SPREAD_REGIONAL: &str = "(SELECT region_code, day, metric, sum(value) AS value,
        min(region_level) AS region_level, max(updated_at) AS updated_at
      FROM moved GROUP BY region_code, day, metric) m
    CROSS JOIN LATERAL outreach.period_starts(m.day)";
const SPREAD_PROGRAM: &str = "(SELECT program_id, day, metric, sum(value) AS value,
        max(updated_at) AS updated_at
      FROM moved GROUP BY program_id, day, metric) m
    CROSS JOIN LATERAL outreach.period_starts(m.day)";

const TABLES: [Table; 3] = [
    Table {
        deltas: "daily_deltas",
        cells: "daily_cells",
        delta_key: &DAILY_KEY,
        from: "moved",
        key: &DAILY_KEY,
        conflict: "ON CONSTRAINT daily_cells_key",
        extra: &[],
        regional: true,
    },
    Table {
        deltas: "regional_deltas",
        cells: "regional_cells",
        delta_key: &["region_code", "day", "metric"],
        from: SPREAD_REGIONAL,
        key: &["region_code", "period_type", "period_start", "metric"],
        conflict: "(region_code, period_type, period_start, metric)",
        extra: &[
            ("region_level", "min", "c.region_level"),
            (
                "updated_at",
                "max",
                "greatest(c.updated_at, excluded.updated_at)",
            ),
        ],
        regional: true,
    },
    Table {
        deltas: "program_deltas",
        cells: "program_cells",
        delta_key: &["program_id", "day", "metric"],
        from: SPREAD_PROGRAM,
        key: &["program_id", "period_type", "period_start", "metric"],
        conflict: "(program_id, period_type, period_start, metric)",
        extra: &[(
            "updated_at",
            "max",
            "greatest(c.updated_at, excluded.updated_at)",
        )],
        regional: false,
    },
];

impl Table {
    /// One statement: take every visible delta of `range` out, sum them per
    /// key, add the sums to the cells in key order (so concurrent writers
    /// of the cells, if any, lock rows in the same order).
    fn fold_sql(&self, range: Range<'_>) -> String {
        let key = self.key.join(", ");
        let delta_key = self.delta_key.join(", ");
        let extra_cols: String = self
            .extra
            .iter()
            .map(|(c, _, _)| format!(", {c}"))
            .collect();
        let extra_aggs: String = self
            .extra
            .iter()
            .map(|(c, agg, _)| format!(", {agg}({c})"))
            .collect();
        let extra_set: String = self
            .extra
            .iter()
            .map(|(c, _, set)| format!(", {c} = {set}"))
            .collect();
        format!(
            "WITH moved AS (DELETE FROM outreach.{deltas}{range} RETURNING {delta_key}, value{extra_cols}),
                  added AS (
               INSERT INTO outreach.{cells} AS c ({key}, value{extra_cols})
               SELECT {key}, sum(value)::bigint{extra_aggs} FROM {from}
               GROUP BY {key} HAVING sum(value) <> 0 ORDER BY {key}
               ON CONFLICT {conflict} DO UPDATE SET value = c.value + excluded.value{extra_set}
               RETURNING 1)
             SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM added)",
            deltas = self.deltas,
            cells = self.cells,
            from = self.from,
            conflict = self.conflict,
            range = predicate(range),
        )
    }

    /// Folds the deltas of `range`.
    async fn fold(&self, conn: &mut PgConnection, range: Range<'_>) -> Result<Compacted> {
        // Built from the constants above only.
        let sql = self.fold_sql(range);
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        if let Some(b) = range.boundary() {
            q = q.bind(b);
        }
        let (deltas, cells): (i64, i64) = q.fetch_one(&mut *conn).await?;
        Ok(Compacted {
            deltas: deltas as u64,
            cells: cells as u64,
            lanes: 1,
        })
    }
}

/// Moves every delta visible to this transaction into the cells. The
/// caller holds [`LOCK`].
pub(crate) async fn fold(conn: &mut PgConnection) -> Result<Compacted> {
    let mut done = Compacted::default();
    for t in &TABLES {
        done += t.fold(conn, Range::All).await?;
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
    // The median of the region table's codes: regions are where the cells
    // are (none yet: one lane does it all).
    let boundary: Option<String> = match share {
        Share::Beside => None,
        Share::Alone => {
            sqlx::query_scalar(
                "SELECT region_code FROM outreach.regions ORDER BY region_code
                 OFFSET (SELECT count(*) / 2 FROM outreach.regions) LIMIT 1",
            )
            .fetch_optional(&mut *tx)
            .await?
        }
    };
    let Some((boundary, mut second_conn)) = crate::lanes::second_lane(pool, boundary).await else {
        let done = fold(&mut tx).await?;
        tx.commit().await?;
        return Ok(Some(done));
    };
    let first = async {
        let mut done = Compacted::default();
        for t in &TABLES {
            done += t
                .fold(&mut tx, Range::first_lane(t.regional, &boundary))
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
        let mut done = Compacted::default();
        for t in TABLES.iter().filter(|t| t.regional) {
            done += t.fold(&mut tx, Range::From(&boundary)).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fold_moves_and_sums_in_key_order() {
        let sql = TABLES[1].fold_sql(Range::All);
        assert!(sql.contains("DELETE FROM outreach.regional_deltas RETURNING region_code, day, metric, value, region_level, updated_at"));
        assert!(sql.contains("FROM moved GROUP BY region_code, day, metric) m"));
        assert!(sql.contains("CROSS JOIN LATERAL outreach.period_starts(m.day)"));
        assert!(sql.contains("ORDER BY region_code, period_type, period_start, metric"));
        assert!(sql.contains("updated_at = greatest(c.updated_at, excluded.updated_at)"));
    }

    #[test]
    fn the_lanes_take_disjoint_regions() {
        for t in TABLES.iter().filter(|t| t.regional) {
            let below = t.fold_sql(Range::Below("b"));
            let from = t.fold_sql(Range::From("b"));
            let whole = t.fold_sql(Range::All);
            let deltas = format!("DELETE FROM outreach.{}", t.deltas);
            assert!(below.contains(&format!("{deltas} WHERE region_code < $1 RETURNING")));
            assert!(from.contains(&format!("{deltas} WHERE region_code >= $1 RETURNING")));
            assert!(whole.contains(&format!("{deltas} RETURNING")));
        }
        assert!(
            !TABLES[2].regional,
            "program cells have no region: the first lane folds them"
        );
    }
}
