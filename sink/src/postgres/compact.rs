//! Compaction: folds the deltas that batches appended into the stored
//! cells, one compaction at a time across every worker (an advisory lock),
//! in a transaction of its own beside the batches.
//!
//! Why this is exact: a delta row is either still in `*_deltas` or already
//! added to `*_cells`, never both and never neither, because the DELETE
//! that takes it out and the upsert that adds it in are one statement of
//! one transaction. The analyst views sum both sides in one snapshot, so a
//! reader sees the same totals before, during and after a compaction.
//! Batches only append, so they never wait for a compaction, nor it for
//! them; rows a batch commits while a compaction runs are left for the next.

use sqlx::PgConnection;

use crate::Result;

/// Held by whoever writes the cells: a compaction, or a rebuild.
pub(crate) const LOCK: i64 = 7_261_002_115;

/// What one compaction moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    /// Delta rows folded (and deleted).
    pub deltas: u64,
    /// Cells inserted or updated.
    pub cells: u64,
}

impl std::ops::AddAssign for Compacted {
    fn add_assign(&mut self, o: Compacted) {
        self.deltas += o.deltas;
        self.cells += o.cells;
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
    },
];

impl Table {
    /// One statement: take every visible delta out, sum them per key, add
    /// the sums to the cells in key order (so concurrent writers of the
    /// cells, if any, lock rows in the same order).
    fn fold_sql(&self) -> String {
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
            "WITH moved AS (DELETE FROM outreach.{deltas} RETURNING {delta_key}, value{extra_cols}),
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
        )
    }
}

/// Moves every delta visible to this transaction into the cells. The
/// caller holds [`LOCK`].
pub(crate) async fn fold(conn: &mut PgConnection) -> Result<Compacted> {
    let mut done = Compacted::default();
    for t in &TABLES {
        // Built from the constants above only.
        let (deltas, cells): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(t.fold_sql()))
            .fetch_one(&mut *conn)
            .await?;
        done.deltas += deltas as u64;
        done.cells += cells as u64;
    }
    Ok(done)
}

/// One compaction, unless another worker's is running (`None`).
pub(crate) async fn compact(pool: &sqlx::PgPool) -> Result<Option<Compacted>> {
    let mut tx = pool.begin().await?;
    // A compaction lost in a crash loses nothing: its deletes and upserts
    // go together, and the deltas are folded again by the next one.
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    let mine: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(LOCK)
        .fetch_one(&mut *tx)
        .await?;
    if !mine {
        return Ok(None);
    }
    let done = fold(&mut tx).await?;
    tx.commit().await?;
    Ok(Some(done))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fold_moves_and_sums_in_key_order() {
        let sql = TABLES[1].fold_sql();
        assert!(sql.contains("DELETE FROM outreach.regional_deltas RETURNING region_code, day, metric, value, region_level, updated_at"));
        assert!(sql.contains("FROM moved GROUP BY region_code, day, metric) m"));
        assert!(sql.contains("CROSS JOIN LATERAL outreach.period_starts(m.day)"));
        assert!(sql.contains("ORDER BY region_code, period_type, period_start, metric"));
        assert!(sql.contains("updated_at = greatest(c.updated_at, excluded.updated_at)"));
    }
}
