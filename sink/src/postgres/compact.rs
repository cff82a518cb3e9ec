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
    /// The deltas' key: the cells' key, or (regional, program) the owner
    /// and metric with `day` in place of the period and its first day.
    delta_key: &'static [&'static str],
    /// Where the deltas hold days (migration 0004): the columns before the
    /// period in the cells' key (the owner: region or program). `None`:
    /// the deltas have the cells' key (daily).
    owner: Option<&'static str>,
    key: &'static [&'static str],
    conflict: &'static str,
    /// (column, how several deltas' values combine, how the stored value
    /// combines with the folded one).
    extra: &'static [(&'static str, &'static str, &'static str)],
    /// Keyed by `region_code`, so foldable in region ranges.
    regional: bool,
    /// The deltas' column a held cell is known by (migration 0007).
    held_owner: &'static str,
}

/// The condition for `range`, its boundary bound as `$1`.
fn predicate(range: Range<'_>) -> String {
    range
        .operator()
        .map(|op| format!(" WHERE region_code {op} $1"))
        .unwrap_or_default()
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

const TABLES: [Table; 3] = [
    Table {
        deltas: "daily_deltas",
        cells: "daily_cells",
        delta_key: &DAILY_KEY,
        owner: None,
        key: &DAILY_KEY,
        conflict: "ON CONSTRAINT daily_cells_key",
        extra: &[],
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
        extra: &[
            ("region_level", "min", "c.region_level"),
            (
                "updated_at",
                "max",
                "greatest(c.updated_at, excluded.updated_at)",
            ),
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
        extra: &[(
            "updated_at",
            "max",
            "greatest(c.updated_at, excluded.updated_at)",
        )],
        regional: false,
        held_owner: "program_id",
    },
];

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

impl Table {
    fn extra_cols(&self) -> String {
        self.extra
            .iter()
            .map(|(c, _, _)| format!(", {c}"))
            .collect()
    }

    fn extra_aggs(&self) -> String {
        self.extra
            .iter()
            .map(|(c, agg, _)| format!(", {agg}({c}) AS {c}"))
            .collect()
    }

    /// The CTEs after `moved` and the query over them that yields the
    /// cells' rows (key, value, extras), unordered and unfiltered.
    fn sums_sql(&self) -> (String, String) {
        let extra_cols = self.extra_cols();
        let extra_aggs = self.extra_aggs();
        let Some(owner) = self.owner else {
            let key = self.key.join(", ");
            return (
                String::new(),
                format!("SELECT {key}, sum(value) AS value{extra_aggs} FROM moved GROUP BY {key}"),
            );
        };
        let mut ctes = format!(
            ",\n p_day AS MATERIALIZED (SELECT {owner}, day AS period_start, metric, \
             sum(value) AS value{extra_aggs} FROM moved GROUP BY {owner}, day, metric)"
        );
        let mut union = format!(
            "SELECT {owner}, 'day' AS period_type, period_start, metric, value{extra_cols} FROM p_day"
        );
        for (period, finer) in PERIODS {
            ctes += &format!(
                ",\n p_{period} AS MATERIALIZED (SELECT {owner}, \
                 date_trunc('{period}', period_start::timestamp)::date AS period_start, metric, \
                 sum(value) AS value{extra_aggs} FROM p_{finer} GROUP BY 1, 2, 3)"
            );
            union += &format!(
                "\n UNION ALL SELECT {owner}, '{period}', period_start, metric, value{extra_cols} \
                 FROM p_{period}"
            );
        }
        (ctes, union)
    }

    /// The deltas (aliased `d`) of `range` that `hold` takes.
    fn deltas_where(&self, range: Range<'_>, hold: Hold) -> String {
        let held = format!(
            "EXISTS (SELECT FROM outreach.held_cells h WHERE h.deltas = '{}' \
             AND h.owner = d.{} AND h.metric = d.metric AND h.year = date_trunc('year', d.day::timestamp)::date)",
            self.deltas, self.held_owner
        );
        let mut conditions: Vec<String> = range
            .operator()
            .map(|op| format!("d.region_code {op} $1"))
            .into_iter()
            .collect();
        match hold {
            Hold::None => {}
            Hold::Exclude => conditions.push(format!("NOT {held}")),
            Hold::Only => conditions.push(held),
        }
        if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        }
    }

    /// One statement: take every visible delta of `range` out, sum them per
    /// key, add the sums to the cells in key order (so concurrent writers
    /// of the cells, if any, lock rows in the same order).
    fn fold_sql(&self, range: Range<'_>, target: Target, hold: Hold) -> String {
        let key = self.key.join(", ");
        let delta_key = self.delta_key.join(", ");
        let extra_cols = self.extra_cols();
        let extra_set: String = self
            .extra
            .iter()
            .map(|(c, _, set)| format!(", {c} = {set}"))
            .collect();
        let (ctes, sums) = self.sums_sql();
        let on_conflict = match target {
            Target::Cells => format!(
                "ON CONFLICT {} DO UPDATE SET value = c.value + excluded.value{extra_set}",
                self.conflict
            ),
            Target::Empty => String::new(),
        };
        format!(
            "WITH moved AS (DELETE FROM outreach.{deltas} d{range} RETURNING {delta_key}, value{extra_cols}){ctes},
                  added AS (
               INSERT INTO outreach.{cells} AS c ({key}, value{extra_cols})
               SELECT {key}, value::bigint{extra_cols} FROM ({sums}) s
               WHERE value <> 0 ORDER BY {key}
               {on_conflict}
               RETURNING 1)
             SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM added)",
            deltas = self.deltas,
            cells = self.cells,
            range = self.deltas_where(range, hold),
        )
    }

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
    async fn fold(
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
            // Built from the constants above only.
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

    /// The (owner, metric, year) with a cell whose stored value plus the
    /// pending deltas of `range` do not fit a bigint: the fold's own sums,
    /// every period, joined to the cells. A week that spans New Year holds
    /// both years.
    fn overflowing_sql(&self, range: Range<'_>, hold: Hold) -> String {
        let (ctes, sums) = self.sums_sql();
        let joined = self
            .key
            .iter()
            .map(|k| match *k {
                // The one nullable key column (daily cells' mission).
                "mission_id" => format!("c.{k} IS NOT DISTINCT FROM s.{k}"),
                _ => format!("c.{k} = s.{k}"),
            })
            .collect::<Vec<_>>()
            .join(" AND ");
        let (first, last) = match self.owner {
            Some(_) => (
                "s.period_start",
                "CASE s.period_type WHEN 'week' THEN s.period_start + 6 ELSE s.period_start END",
            ),
            None => ("s.day", "s.day"),
        };
        format!(
            "WITH moved AS (SELECT {delta_key}, value{extra} FROM outreach.{deltas} d{deltas_where}){ctes},
                  over AS (SELECT s.{owner} AS owner, s.metric, {first} AS first, {last} AS last,
                                  coalesce(c.value, 0) AS stored, s.value AS pending
                           FROM ({sums}) s LEFT JOIN outreach.{cells} c ON {joined}
                           WHERE coalesce(c.value, 0) + s.value
                                 NOT BETWEEN -9223372036854775808 AND 9223372036854775807)
             SELECT owner, metric, year, max(stored)::text AS stored, max(pending)::text AS pending
             FROM (SELECT *, date_trunc('year', first::timestamp)::date AS year FROM over
                   UNION SELECT *, date_trunc('year', last::timestamp)::date FROM over) y
             GROUP BY 1, 2, 3",
            delta_key = self.delta_key.join(", "),
            extra = self.extra_cols(),
            deltas_where = self.deltas_where(range, hold),
            deltas = self.deltas,
            cells = self.cells,
            owner = self.held_owner,
        )
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

    /// The three institutions whose ledger facts add most to a held
    /// (owner, metric, year): facts of its region and the regions below it,
    /// or of its program.
    fn sources_sql(&self) -> String {
        let owned = match (self.owner, self.regional) {
            (Some(_), true) => {
                "f.region_code IN (WITH RECURSIVE r AS (
                    SELECT region_code FROM outreach.regions WHERE region_code = $1
                    UNION ALL SELECT g.region_code FROM outreach.regions g
                    JOIN r ON g.parent_code = r.region_code) SELECT region_code FROM r)"
            }
            (Some(_), false) => "f.program_id = $1",
            (None, _) => "f.region_code = $1",
        };
        format!(
            "SELECT f.institution_id, count(*), sum(f.value)::text FROM outreach.activity_facts f
             WHERE {owned} AND f.metric = $2 AND f.day >= $3 AND f.day < ($3 + interval '1 year')
             GROUP BY 1 ORDER BY sum(f.value) DESC LIMIT 3"
        )
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
async fn held_tables(conn: &mut PgConnection) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT DISTINCT deltas FROM outreach.held_cells")
            .fetch_all(&mut *conn)
            .await?,
    )
}

impl Table {
    fn held_in(&self, held: &[String]) -> bool {
        held.iter().any(|t| t == self.deltas)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fold_moves_and_sums_in_key_order() {
        let sql = TABLES[1].fold_sql(Range::All, Target::Cells, Hold::None);
        assert!(sql.contains("DELETE FROM outreach.regional_deltas d RETURNING region_code, day, metric, value, region_level, updated_at"));
        assert!(sql.contains("FROM moved GROUP BY region_code, day, metric"));
        assert!(sql.contains("date_trunc('quarter', period_start::timestamp)::date AS period_start, metric, sum(value) AS value, min(region_level) AS region_level, max(updated_at) AS updated_at FROM p_month"));
        assert!(sql.contains("UNION ALL SELECT region_code, 'year', period_start"));
        assert!(sql.contains("ORDER BY region_code, period_type, period_start, metric"));
        assert!(sql.contains("updated_at = greatest(c.updated_at, excluded.updated_at)"));
        let daily = TABLES[0].fold_sql(Range::All, Target::Cells, Hold::None);
        assert!(!daily.contains("p_day"), "daily cells have the deltas' key");
    }

    #[test]
    fn held_cells_are_left_out_or_taken_alone() {
        for t in &TABLES {
            let out = t.fold_sql(Range::All, Target::Cells, Hold::Exclude);
            let only = t.fold_sql(Range::All, Target::Cells, Hold::Only);
            let none = t.fold_sql(Range::All, Target::Cells, Hold::None);
            let held = format!(
                "EXISTS (SELECT FROM outreach.held_cells h WHERE h.deltas = '{}'",
                t.deltas
            );
            assert!(out.contains(&format!("d WHERE NOT {held}")));
            assert!(only.contains(&format!("d WHERE {held}")));
            assert!(!none.contains("held_cells"));
        }
        let lane = TABLES[1].fold_sql(Range::From("b"), Target::Cells, Hold::Exclude);
        assert!(lane.contains("WHERE d.region_code >= $1 AND NOT EXISTS"));
    }

    #[test]
    fn an_empty_target_is_inserted_without_conflict_checks() {
        for t in &TABLES {
            assert!(
                t.fold_sql(Range::All, Target::Cells, Hold::None)
                    .contains("ON CONFLICT")
            );
            assert!(
                !t.fold_sql(Range::All, Target::Empty, Hold::None)
                    .contains("ON CONFLICT")
            );
        }
    }

    #[test]
    fn the_lanes_take_disjoint_regions() {
        for t in TABLES.iter().filter(|t| t.regional) {
            let below = t.fold_sql(Range::Below("b"), Target::Cells, Hold::None);
            let from = t.fold_sql(Range::From("b"), Target::Cells, Hold::None);
            let whole = t.fold_sql(Range::All, Target::Cells, Hold::None);
            let deltas = format!("DELETE FROM outreach.{}", t.deltas);
            assert!(below.contains(&format!("{deltas} d WHERE d.region_code < $1 RETURNING")));
            assert!(from.contains(&format!("{deltas} d WHERE d.region_code >= $1 RETURNING")));
            assert!(whole.contains(&format!("{deltas} d RETURNING")));
        }
        assert!(
            !TABLES[2].regional,
            "program cells have no region: the first lane folds them"
        );
    }
}
