//! What the sink reads back from SQLite (`Reads`): the pending deltas the
//! fold has still to move, a report's rows in one snapshot, the demo's
//! overview, and the checks the benchmark and the tests make of the tables.

use async_trait::async_trait;

use crate::backend::{Count, Reads};
use crate::report::{ReportQuery, ReportRows, Section, StoredActivityRow, known};
use crate::{Error, Pending, Result};

use super::{Db, overview};

#[async_trait]
impl Reads for Db {
    /// Counted exactly, as on Postgres (SQLite holds no cell back).
    async fn pending(&self) -> Result<Pending> {
        let (daily, regional, program, oldest): (i64, i64, i64, Option<f64>) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM daily_deltas), r.n, p.n,
                (julianday('now') - julianday(
                   CASE WHEN r.oldest IS NULL THEN p.oldest
                        WHEN p.oldest IS NULL THEN r.oldest
                        ELSE min(r.oldest, p.oldest) END)) * 86400.0
             FROM (SELECT count(*) AS n, min(updated_at) AS oldest FROM regional_deltas) r,
                  (SELECT count(*) AS n, min(updated_at) AS oldest FROM program_deltas) p",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Pending::counted(daily, regional, program, oldest, 0, 0))
    }

    async fn leaf_totals(&self) -> Result<Vec<(String, String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT region_code, metric, CAST(round(sum(value) * 100) AS INTEGER)
             FROM daily_metrics GROUP BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn country_total(&self) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT CAST(round(sum(value) * 100) AS INTEGER) FROM regional_metrics
             WHERE region_level = 'country' AND period_type = 'year'",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    async fn count(&self, what: Count) -> Result<i64> {
        let sql = match what {
            Count::Quarantined => "SELECT count(*) FROM quarantine",
            Count::DatabaseBytes => {
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
            }
            Count::AppliedMessages => {
                "SELECT CAST(coalesce(sum(next_offset), 0) AS BIGINT) FROM consumer_offsets"
            }
        };
        Ok(sqlx::query_scalar(sql).fetch_one(&self.pool).await?)
    }

    /// Every query of a report in one read transaction: one snapshot of
    /// the file (WAL) for every statement.
    async fn overview(&self) -> Result<Vec<Section>> {
        overview::overview(&self.pool).await
    }

    async fn report_rows(&self, query: &ReportQuery) -> Result<ReportRows> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("BEGIN").execute(&mut *conn).await?;
        let rows = read_report(&mut conn, query).await;
        sqlx::query("COMMIT").execute(&mut *conn).await?;
        rows
    }
}

async fn read_report(conn: &mut sqlx::SqliteConnection, query: &ReportQuery) -> Result<ReportRows> {
    let migrated: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'daily_metrics')",
    )
    .fetch_one(&mut *conn)
    .await?;
    if !migrated {
        return Err(Error::NoAnalystTables);
    }
    let programs = serde_json::to_string(&query.programs).expect("strings serialize");
    let from = query.from.map(|d| d.to_string());
    let to = query.to.map(|d| d.to_string());
    let activity: Vec<StoredActivityRow> = sqlx::query_as(REPORT_ACTIVITY)
        .bind(&programs)
        .bind(&from)
        .bind(&to)
        .fetch_all(&mut *conn)
        .await?;
    let quarantine = sqlx::query_as(REPORT_QUARANTINE)
        .bind(&from)
        .bind(&to)
        .fetch_all(&mut *conn)
        .await?;
    let lags = sqlx::query_as(REPORT_LAGS)
        .bind(&programs)
        .bind(&from)
        .bind(&to)
        .fetch_all(&mut *conn)
        .await?;
    let regions = sqlx::query_as(REPORT_REGIONS).fetch_all(&mut *conn).await?;
    let programs = sqlx::query_as(REPORT_PROGRAMS)
        .fetch_all(&mut *conn)
        .await?;
    let (activity, days) = known(activity);
    Ok(ReportRows {
        backend: "sqlite",
        days,
        activity,
        regions,
        programs,
        quarantine,
        sees_quarantine: true,
        lags,
    })
}

const REPORT_ACTIVITY: &str = "
SELECT program_id, region_code, substr(day, 1, 7) || '-01' AS month, metric,
       CASE WHEN metric = 'surgeries' THEN json_extract(dims, '$.role') END AS role,
       CAST(round(sum(value) * 100) AS INTEGER) AS hundredths,
       min(day) AS first_day, max(day) AS last_day
FROM daily_metrics
WHERE (?1 = '[]' OR program_id IN (SELECT value FROM json_each(?1)))
  AND (?2 IS NULL OR day >= ?2) AND (?3 IS NULL OR day <= ?3)
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 3, 4, 5";

const REPORT_QUARANTINE: &str = "
SELECT error_code, count(*) AS messages, min(error_detail) AS example
FROM quarantine
WHERE (?1 IS NULL OR substr(received_at, 1, 10) >= ?1)
  AND (?2 IS NULL OR substr(received_at, 1, 10) <= ?2)
GROUP BY error_code ORDER BY error_code";

const REPORT_LAGS: &str = "
SELECT institution_id, program_id, month, days_to_arrival, events, corrections, withdrawals
FROM reporting_lags
WHERE (?1 = '[]' OR program_id IN (SELECT value FROM json_each(?1)))
  AND (?2 IS NULL OR month >= substr(?2, 1, 7) || '-01')
  AND (?3 IS NULL OR month <= ?3)
ORDER BY 1, 2, 3, 4";

const REPORT_REGIONS: &str =
    "SELECT region_code, name, level, parent_code FROM regions ORDER BY region_code";

const REPORT_PROGRAMS: &str = "SELECT program_id, name FROM programs ORDER BY program_id";
