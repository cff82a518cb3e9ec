//! What the sink reads back from Postgres (`Reads`): the pending deltas the
//! fold has still to move, a report's rows in one snapshot, and the checks the
//! benchmark and the tests make of the tables.

use async_trait::async_trait;

use crate::backend::{Count, Reads};
use crate::report::{ReportQuery, ReportRows, StoredActivityRow, known};
use crate::{Error, Pending, Result};

use super::Db;

#[async_trait]
impl Reads for Db {
    /// Counted exactly (one scan of each deltas table, which the fold keeps
    /// small; the statistics' estimate lagged by seconds, too long for the
    /// pending budget). Held cells' deltas are counted apart (migration 0007).
    async fn pending(&self) -> Result<Pending> {
        let (daily, regional, program, oldest, held, held_rows): (i64, i64, i64, Option<f64>, i64, i64) =
            sqlx::query_as(
                "SELECT (SELECT count(*) FROM outreach.daily_deltas),
                    r.n, p.n,
                    extract(epoch FROM now() - least(r.oldest, p.oldest))::float8,
                    (SELECT count(*) FROM outreach.held_cells),
                    CASE WHEN EXISTS (SELECT FROM outreach.held_cells) THEN
                      (SELECT count(*) FROM outreach.daily_deltas d WHERE EXISTS (SELECT FROM outreach.held_cells h WHERE h.deltas = 'daily_deltas' AND h.owner = d.region_code AND h.metric = d.metric AND h.year = date_trunc('year', d.day::timestamp)::date))
                      + (SELECT count(*) FROM outreach.regional_deltas d WHERE EXISTS (SELECT FROM outreach.held_cells h WHERE h.deltas = 'regional_deltas' AND h.owner = d.region_code AND h.metric = d.metric AND h.year = date_trunc('year', d.day::timestamp)::date))
                      + (SELECT count(*) FROM outreach.program_deltas d WHERE EXISTS (SELECT FROM outreach.held_cells h WHERE h.deltas = 'program_deltas' AND h.owner = d.program_id AND h.metric = d.metric AND h.year = date_trunc('year', d.day::timestamp)::date))
                    ELSE 0 END
             FROM (SELECT count(*) AS n, min(updated_at) AS oldest
                   FROM outreach.regional_deltas) r,
                  (SELECT count(*) AS n, min(updated_at) AS oldest
                   FROM outreach.program_deltas) p",
            )
            .fetch_one(&self.pool)
            .await?;
        Ok(Pending::counted(
            daily, regional, program, oldest, held, held_rows,
        ))
    }

    async fn leaf_totals(&self) -> Result<Vec<(String, String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT region_code, metric, (sum(value) * 100)::bigint
             FROM outreach.daily_metrics GROUP BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn country_total(&self) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT (sum(value) * 100)::bigint FROM outreach.regional_metrics
             WHERE region_level = 'country' AND period_type = 'year'",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    async fn count(&self, what: Count) -> Result<i64> {
        let sql = match what {
            Count::Quarantined => "SELECT count(*) FROM outreach.quarantine",
            Count::DatabaseBytes => "SELECT pg_database_size(current_database())",
            Count::AppliedMessages => {
                "SELECT coalesce(sum(next_offset), 0)::bigint FROM outreach.consumer_offsets"
            }
        };
        Ok(sqlx::query_scalar(sql).fetch_one(&self.pool).await?)
    }

    /// Every query of a report in one repeatable-read transaction.
    async fn report_rows(&self, query: &ReportQuery) -> Result<ReportRows> {
        let mut tx = self.pool.begin().await?;
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
            return Err(Error::NoAnalystTables);
        }
        let sees_quarantine: bool = sqlx::query_scalar("SELECT outreach.analyst_sees_all()")
            .fetch_one(&mut *tx)
            .await?;
        let programs = &query.programs;
        let activity: Vec<StoredActivityRow> = sqlx::query_as(REPORT_ACTIVITY)
            .bind(programs)
            .bind(query.from)
            .bind(query.to)
            .fetch_all(&mut *tx)
            .await?;
        let quarantine = sqlx::query_as(REPORT_QUARANTINE)
            .bind(query.from)
            .bind(query.to)
            .fetch_all(&mut *tx)
            .await?;
        let lags = sqlx::query_as(REPORT_LAGS)
            .bind(programs)
            .bind(query.from)
            .bind(query.to)
            .fetch_all(&mut *tx)
            .await?;
        let regions = sqlx::query_as(REPORT_REGIONS).fetch_all(&mut *tx).await?;
        let programs = sqlx::query_as(REPORT_PROGRAMS).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let (activity, days) = known(activity);
        Ok(ReportRows {
            backend: "postgres",
            days,
            activity,
            regions,
            programs,
            quarantine,
            sees_quarantine,
            lags,
        })
    }
}

const REPORT_ACTIVITY: &str = "
SELECT program_id, region_code, date_trunc('month', day::timestamp)::date AS month, metric,
       CASE WHEN metric = 'surgeries' THEN dims->>'role' END AS role,
       (sum(value) * 100)::bigint AS hundredths, min(day) AS first_day, max(day) AS last_day
FROM outreach.daily_metrics
WHERE (cardinality($1::text[]) = 0 OR program_id = ANY($1))
  AND ($2::date IS NULL OR day >= $2) AND ($3::date IS NULL OR day <= $3)
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 3, 4, 5";

const REPORT_QUARANTINE: &str = "
SELECT error_code, count(*) AS messages, min(error_detail) AS example
FROM outreach.quarantine
WHERE ($1::date IS NULL OR (received_at AT TIME ZONE 'UTC')::date >= $1)
  AND ($2::date IS NULL OR (received_at AT TIME ZONE 'UTC')::date <= $2)
GROUP BY error_code ORDER BY error_code";

// `days_to_arrival` is a date difference, an `integer` in Postgres.
const REPORT_LAGS: &str = "
SELECT institution_id, program_id, month, days_to_arrival::bigint AS days_to_arrival,
       events, corrections, withdrawals
FROM outreach.reporting_lags
WHERE (cardinality($1::text[]) = 0 OR program_id = ANY($1))
  AND ($2::date IS NULL OR month >= date_trunc('month', $2::timestamp)::date)
  AND ($3::date IS NULL OR month <= $3)
ORDER BY 1, 2, 3, 4";

const REPORT_REGIONS: &str =
    "SELECT region_code, name, level, parent_code FROM outreach.regions ORDER BY region_code";

const REPORT_PROGRAMS: &str = "SELECT program_id, name FROM outreach.programs ORDER BY program_id";
