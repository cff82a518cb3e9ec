//! What `outreach report` reads: the analyst tables summed for a period
//! and a set of programs, on either backend. Only reads, through the same
//! views analysts query (`daily_metrics`, `reporting_lags`, `regions`,
//! `programs`, `quarantine`), so a report shows what its login may see
//! (Postgres' analyst scope applies).
//!
//! Values come back in hundredths (`i64`): sums stay exact, and the report
//! formats them. The report crate does the rest (regions, indicators,
//! charts) in memory: at most programs × regions × months × metrics rows.

use chrono::NaiveDate;

use crate::{Db, Result, Sink};

/// Which rows a report covers. Empty `programs`: every program.
#[derive(Debug, Clone, Default)]
pub struct ReportQuery {
    pub programs: Vec<String>,
    /// First and last day of the period, inclusive; `None`: unbounded.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

/// `daily_metrics` summed per program, region, month, metric and (for
/// surgeries) the visiting team's role.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ActivityRow {
    pub program_id: String,
    pub region_code: String,
    /// `YYYY-MM`.
    pub month: String,
    pub metric: String,
    /// `dims.role` of `surgeries` (`performed`, `supervised`, `assisted`);
    /// `None` for other metrics and for surgeries without one.
    pub role: Option<String>,
    pub hundredths: i64,
    /// The first and last day of the rows summed.
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RegionRow {
    pub region_code: String,
    pub name: String,
    pub level: String,
    pub parent_code: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProgramRow {
    pub program_id: String,
    pub name: Option<String>,
}

/// Quarantined messages received in the period, per error code.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QuarantineCount {
    pub error_code: String,
    pub messages: i64,
    /// One of the reasons given (the first in text order).
    pub example: String,
}

/// One row of `reporting_lags`: how many activity facts of an institution
/// and program, whose day falls in `month`, first arrived `days_to_arrival`
/// days after that day. The report sums these per program, per institution
/// and per month, percentiles included (docs/contract.md, "Reporting
/// timeliness").
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LagRow {
    pub institution_id: String,
    pub program_id: String,
    /// The first day of the month the work was done in.
    pub month: NaiveDate,
    /// `None`: the facts were stored before arrivals were kept.
    pub days_to_arrival: Option<i64>,
    pub events: i64,
    /// Facts whose winning revision is above 1 and not a withdrawal.
    pub corrections: i64,
    /// Facts whose winning revision has the value 0.
    pub withdrawals: i64,
}

/// Everything a report is made of.
#[derive(Debug, Clone)]
pub struct ReportRows {
    /// `"postgres"` or `"sqlite"`: how the report names its tables.
    pub backend: &'static str,
    pub activity: Vec<ActivityRow>,
    /// The first and last day with figures under the filter (of `activity`).
    pub days: Option<(NaiveDate, NaiveDate)>,
    pub regions: Vec<RegionRow>,
    pub programs: Vec<ProgramRow>,
    pub quarantine: Vec<QuarantineCount>,
    /// Whether this login sees the quarantine (Postgres: an analyst
    /// granted every institution, or the owner; SQLite: whoever reads the
    /// file). Where it does not, `quarantine` is empty whatever it holds.
    pub sees_quarantine: bool,
    /// `reporting_lags` for the programs asked, in the months the period
    /// touches (the view's grain is the month of the work), ordered by
    /// institution, program, month and days.
    pub lags: Vec<LagRow>,
}

const PG_ACTIVITY: &str = "
SELECT program_id, region_code, to_char(day, 'YYYY-MM') AS month, metric,
       CASE WHEN metric = 'surgeries' THEN dims->>'role' END AS role,
       (sum(value) * 100)::bigint AS hundredths, min(day) AS first_day, max(day) AS last_day
FROM outreach.daily_metrics
WHERE (cardinality($1::text[]) = 0 OR program_id = ANY($1))
  AND ($2::date IS NULL OR day >= $2) AND ($3::date IS NULL OR day <= $3)
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 3, 4, 5";

const PG_QUARANTINE: &str = "
SELECT error_code, count(*) AS messages, min(error_detail) AS example
FROM outreach.quarantine
WHERE ($1::date IS NULL OR (received_at AT TIME ZONE 'UTC')::date >= $1)
  AND ($2::date IS NULL OR (received_at AT TIME ZONE 'UTC')::date <= $2)
GROUP BY error_code ORDER BY error_code";

const SQLITE_ACTIVITY: &str = "
SELECT program_id, region_code, substr(day, 1, 7) AS month, metric,
       CASE WHEN metric = 'surgeries' THEN json_extract(dims, '$.role') END AS role,
       CAST(round(sum(value) * 100) AS INTEGER) AS hundredths,
       min(day) AS first_day, max(day) AS last_day
FROM daily_metrics
WHERE (?1 = '[]' OR program_id IN (SELECT value FROM json_each(?1)))
  AND (?2 IS NULL OR day >= ?2) AND (?3 IS NULL OR day <= ?3)
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 3, 4, 5";

const SQLITE_QUARANTINE: &str = "
SELECT error_code, count(*) AS messages, min(error_detail) AS example
FROM quarantine
WHERE (?1 IS NULL OR substr(received_at, 1, 10) >= ?1)
  AND (?2 IS NULL OR substr(received_at, 1, 10) <= ?2)
GROUP BY error_code ORDER BY error_code";

// `days_to_arrival` is a date difference, an `integer` in Postgres.
const PG_LAGS: &str = "
SELECT institution_id, program_id, month, days_to_arrival::bigint AS days_to_arrival,
       events, corrections, withdrawals
FROM outreach.reporting_lags
WHERE (cardinality($1::text[]) = 0 OR program_id = ANY($1))
  AND ($2::date IS NULL OR month >= date_trunc('month', $2::timestamp)::date)
  AND ($3::date IS NULL OR month <= $3)
ORDER BY 1, 2, 3, 4";

const SQLITE_LAGS: &str = "
SELECT institution_id, program_id, month, days_to_arrival, events, corrections, withdrawals
FROM reporting_lags
WHERE (?1 = '[]' OR program_id IN (SELECT value FROM json_each(?1)))
  AND (?2 IS NULL OR month >= substr(?2, 1, 7) || '-01')
  AND (?3 IS NULL OR month <= ?3)
ORDER BY 1, 2, 3, 4";

const PG_REGIONS: &str =
    "SELECT region_code, name, level, parent_code FROM outreach.regions ORDER BY region_code";
const SQLITE_REGIONS: &str =
    "SELECT region_code, name, level, parent_code FROM regions ORDER BY region_code";
const PG_PROGRAMS: &str = "SELECT program_id, name FROM outreach.programs ORDER BY program_id";
const SQLITE_PROGRAMS: &str = "SELECT program_id, name FROM programs ORDER BY program_id";

impl Sink {
    /// The rows of a report over `query`, read in one snapshot where the
    /// backend gives one (a repeatable-read transaction on Postgres, a read
    /// transaction on SQLite): every figure of a report agrees with the
    /// others even while batches commit.
    pub async fn report_rows(&self, query: &ReportQuery) -> Result<ReportRows> {
        match &self.db {
            Db::Postgres(db) => {
                let mut tx = db.pool.begin().await?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *tx)
                    .await?;
                // to_regclass: readable by any login, where the migrations
                // table is the owner's and the writer's only.
                let migrated: bool =
                    sqlx::query_scalar("SELECT to_regclass('outreach.daily_metrics') IS NOT NULL")
                        .fetch_one(&mut *tx)
                        .await?;
                if !migrated {
                    return Err(crate::Error::NoAnalystTables);
                }
                let sees_quarantine: bool =
                    sqlx::query_scalar("SELECT outreach.analyst_sees_all()")
                        .fetch_one(&mut *tx)
                        .await?;
                let programs = &query.programs;
                let activity = sqlx::query_as(PG_ACTIVITY)
                    .bind(programs)
                    .bind(query.from)
                    .bind(query.to)
                    .fetch_all(&mut *tx)
                    .await?;
                let quarantine = sqlx::query_as(PG_QUARANTINE)
                    .bind(query.from)
                    .bind(query.to)
                    .fetch_all(&mut *tx)
                    .await?;
                let lags = sqlx::query_as(PG_LAGS)
                    .bind(programs)
                    .bind(query.from)
                    .bind(query.to)
                    .fetch_all(&mut *tx)
                    .await?;
                let regions = sqlx::query_as(PG_REGIONS).fetch_all(&mut *tx).await?;
                let programs = sqlx::query_as(PG_PROGRAMS).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                Ok(ReportRows {
                    backend: "postgres",
                    days: span(&activity),
                    activity,
                    regions,
                    programs,
                    quarantine,
                    sees_quarantine,
                    lags,
                })
            }
            Db::Sqlite(db) => {
                let mut conn = db.pool.acquire().await?;
                // A read transaction: one snapshot of the file (WAL) for
                // every statement below.
                sqlx::query("BEGIN").execute(&mut *conn).await?;
                let rows = sqlite_rows(&mut conn, query).await;
                sqlx::query("COMMIT").execute(&mut *conn).await?;
                rows
            }
        }
    }
}

async fn sqlite_rows(conn: &mut sqlx::SqliteConnection, query: &ReportQuery) -> Result<ReportRows> {
    let migrated: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'daily_metrics')",
    )
    .fetch_one(&mut *conn)
    .await?;
    if !migrated {
        return Err(crate::Error::NoAnalystTables);
    }
    let programs = serde_json::to_string(&query.programs).expect("strings serialize");
    let from = query.from.map(|d| d.to_string());
    let to = query.to.map(|d| d.to_string());
    let activity = sqlx::query_as(SQLITE_ACTIVITY)
        .bind(&programs)
        .bind(&from)
        .bind(&to)
        .fetch_all(&mut *conn)
        .await?;
    let quarantine = sqlx::query_as(SQLITE_QUARANTINE)
        .bind(&from)
        .bind(&to)
        .fetch_all(&mut *conn)
        .await?;
    let lags = sqlx::query_as(SQLITE_LAGS)
        .bind(&programs)
        .bind(&from)
        .bind(&to)
        .fetch_all(&mut *conn)
        .await?;
    let regions = sqlx::query_as(SQLITE_REGIONS).fetch_all(&mut *conn).await?;
    let programs = sqlx::query_as(SQLITE_PROGRAMS)
        .fetch_all(&mut *conn)
        .await?;
    Ok(ReportRows {
        backend: "sqlite",
        days: span(&activity),
        activity,
        regions,
        programs,
        quarantine,
        sees_quarantine: true,
        lags,
    })
}

/// The first and last day of the activity rows: the period with figures,
/// read off the rows rather than by a second pass over `daily_metrics`.
fn span(activity: &[ActivityRow]) -> Option<(NaiveDate, NaiveDate)> {
    let first = activity.iter().map(|r| r.first_day).min()?;
    let last = activity.iter().map(|r| r.last_day).max()?;
    Some((first, last))
}
