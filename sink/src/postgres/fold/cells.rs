//! Runs one table's fold: into an empty range a plain insert, else an
//! upsert, each in a savepoint; a sum that no longer fits a cell (SQLSTATE
//! 22003) holds that cell back (migration 0007), names it and where its
//! deltas came from in the log, and lets every other cell fold.

use sqlx::{Connection, PgConnection};

use crate::lanes::Range;
use crate::{Compacted, Result};

use super::sql::predicate;
use super::{Hold, Table, Target};

impl Table {
    /// Whether `range` of the cells holds none.
    async fn target(&self, conn: &mut PgConnection, range: Range<'_>) -> Result<Target> {
        let sql = format!(
            "SELECT NOT EXISTS (SELECT 1 FROM outreach.{}{})",
            self.cells,
            predicate(range)
        );
        let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
        if let Some(b) = range.boundary() {
            q = q.bind(b);
        }
        let empty: bool = q.fetch_one(&mut *conn).await?;
        Ok(if empty { Target::Empty } else { Target::Cells })
    }

    /// Folds the deltas of `range` but those of held cells (when `held`:
    /// this table has some). A sum that no longer fits a cell (SQLSTATE
    /// 22003) fails only that cell: it is held, named in the log, and the
    /// rest folds. Held cells whose sums fit again are folded and released.
    pub(super) async fn fold(
        &self,
        conn: &mut PgConnection,
        range: Range<'_>,
        held: bool,
    ) -> Result<Compacted> {
        let hold = if held { Hold::Exclude } else { Hold::None };
        let (mut done, newly_held) = match self.fold_savepoint(conn, range, hold).await {
            Err(e) if out_of_range(&e) => {
                let found = self.overflowing(conn, range, hold).await?;
                if found.is_empty() {
                    return Err(e);
                }
                for cell in &found {
                    self.hold(conn, cell).await?;
                }
                (self.fold_savepoint(conn, range, Hold::Exclude).await?, true)
            }
            other => (other?, false),
        };
        if held && !newly_held {
            match self.fold_savepoint(conn, range, Hold::Only).await {
                Ok(released) => {
                    self.release(conn, range).await?;
                    done += released;
                }
                // Still too large: held on, tried again at the next fold.
                Err(e) if out_of_range(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// One fold statement inside a savepoint, so that its failure leaves
    /// the fold's transaction usable (and the other tables' folds in it).
    async fn fold_savepoint(
        &self,
        conn: &mut PgConnection,
        range: Range<'_>,
        hold: Hold,
    ) -> Result<Compacted> {
        let mut savepoint = conn.begin().await?;
        let result = async {
            let target = self.target(&mut savepoint, range).await?;
            // Built from the tables' constants (`mod.rs`) only.
            let sql = self.fold_sql(range, target, hold);
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            if let Some(b) = range.boundary() {
                q = q.bind(b);
            }
            let (deltas, cells): (i64, i64) = q.fetch_one(&mut *savepoint).await?;
            Ok::<_, crate::Error>(Compacted {
                deltas: deltas as u64,
                cells: cells as u64,
                lanes: 1,
            })
        }
        .await;
        match result {
            Ok(done) => {
                savepoint.commit().await?;
                Ok(done)
            }
            Err(e) => {
                savepoint.rollback().await?;
                Err(e)
            }
        }
    }

    async fn overflowing(
        &self,
        conn: &mut PgConnection,
        range: Range<'_>,
        hold: Hold,
    ) -> Result<Vec<Overflow>> {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(self.overflowing_sql(range, hold)));
        if let Some(b) = range.boundary() {
            q = q.bind(b);
        }
        Ok(q.fetch_all(&mut *conn).await?)
    }

    /// Records `cell` as held and says so, with the institutions whose
    /// facts make up most of it: where its deltas came from.
    async fn hold(&self, conn: &mut PgConnection, cell: &Overflow) -> Result<()> {
        sqlx::query(
            "INSERT INTO outreach.held_cells (deltas, owner, metric, year, stored, pending)
             VALUES ($1, $2, $3, $4, $5::numeric, $6::numeric) ON CONFLICT DO NOTHING",
        )
        .bind(self.deltas)
        .bind(&cell.owner)
        .bind(&cell.metric)
        .bind(cell.year)
        .bind(&cell.stored)
        .bind(&cell.pending)
        .execute(&mut *conn)
        .await?;
        // Its pending deltas, now held (the fold's condition for them).
        let (deltas, first, last): (i64, Option<chrono::NaiveDate>, Option<chrono::NaiveDate>) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT count(*), min(day), max(day) FROM outreach.{} d
                 WHERE d.{} = $1 AND d.metric = $2
                   AND date_trunc('year', d.day::timestamp)::date = $3",
                self.deltas, self.held_owner
            )))
            .bind(&cell.owner)
            .bind(&cell.metric)
            .bind(cell.year)
            .fetch_one(&mut *conn)
            .await?;
        let days = match (first, last) {
            (Some(first), Some(last)) => format!("{first} to {last}"),
            _ => "none".to_owned(),
        };
        let sources: Vec<(String, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(self.sources_sql()))
                .bind(&cell.owner)
                .bind(&cell.metric)
                .bind(cell.year)
                .fetch_all(&mut *conn)
                .await?;
        let sources = sources
            .iter()
            .map(|(institution, facts, value)| {
                format!("{institution} ({facts} facts, {value} hundredths)")
            })
            .collect::<Vec<_>>()
            .join(", ");
        tracing::error!(
            cells = self.cells,
            owner = %cell.owner,
            metric = %cell.metric,
            year = %cell.year,
            stored = %cell.stored,
            pending = %cell.pending,
            deltas,
            days = %days,
            sources = %sources,
            "{}: {} {} {}: the stored {} plus the pending {} hundredths exceed a bigint; the year's {} deltas (days {}) stay pending, the views stay exact, every other cell folds. Largest sources in the ledger: {}. See docs/operations.md, \"A held cell\"",
            self.cells, cell.owner, cell.metric, cell.year, cell.stored, cell.pending,
            deltas, days, if sources.is_empty() { "none" } else { &sources },
        );
        Ok(())
    }

    /// Forgets the held cells of `range`: their deltas were just folded.
    async fn release(&self, conn: &mut PgConnection, range: Range<'_>) -> Result<()> {
        let sql = format!(
            "DELETE FROM outreach.held_cells h WHERE h.deltas = '{}'{} RETURNING owner, metric, year",
            self.deltas,
            range
                .operator()
                .map(|op| format!(" AND h.owner {op} $1"))
                .unwrap_or_default()
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        if let Some(b) = range.boundary() {
            q = q.bind(b);
        }
        let released: Vec<(String, String, chrono::NaiveDate)> = q.fetch_all(&mut *conn).await?;
        for (owner, metric, year) in released {
            tracing::info!(cells = self.cells, %owner, %metric, %year, "a held cell fits again: its deltas are folded");
        }
        Ok(())
    }

    pub(super) fn held_in(&self, held: &[String]) -> bool {
        held.iter().any(|t| t == self.deltas)
    }
}

/// A cell whose sum does not fit, by (owner, metric, year), with its
/// stored value and pending sum in hundredths (as text: numeric; the
/// largest of the year's cells that do not fit).
#[derive(Debug, sqlx::FromRow)]
struct Overflow {
    owner: String,
    metric: String,
    year: chrono::NaiveDate,
    stored: String,
    pending: String,
}

/// SQLSTATE 22003: a value out of its type's range (a sum beyond bigint).
fn out_of_range(e: &crate::Error) -> bool {
    matches!(e, crate::Error::Database(sqlx::Error::Database(db)) if db.code().as_deref() == Some("22003"))
}

/// The deltas tables that have held cells.
pub(super) async fn held_tables(conn: &mut PgConnection) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT DISTINCT deltas FROM outreach.held_cells")
            .fetch_all(&mut *conn)
            .await?,
    )
}
