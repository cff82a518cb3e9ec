//! The obvious alternative to the pipeline, for `outreach bench
//! --sql-alternative` to measure against: every accepted event COPYed raw
//! into Postgres (duplicates dropped on `(source, id)`), then the three
//! roll-ups rebuilt from the latest revisions with one GROUP BY each
//! (`postgres/alternative.sql`), then the same keys and indexes. It writes
//! schema `outreach_alt` beside `outreach` and checks its tables against
//! the pipeline's, so the comparison is between two exact results.

use std::time::{Duration, Instant};

use schemas::{Body, Event};

use crate::postgres::copy::{Row, copy_in};
use crate::{Result, Sink};

/// The raw tables, keyed and collated like the pipeline's own (text keys
/// in byte order, "C"), so neither side gets an advantage from collation.
const SCHEMA: &str = "
DROP SCHEMA IF EXISTS outreach_alt CASCADE;
CREATE SCHEMA outreach_alt;
CREATE TABLE outreach_alt.raw_activities (
  source text COLLATE \"C\" NOT NULL, id text COLLATE \"C\" NOT NULL,
  institution_id text COLLATE \"C\" NOT NULL, record_id text COLLATE \"C\" NOT NULL,
  revision int NOT NULL, program_id text COLLATE \"C\" NOT NULL, mission_id text COLLATE \"C\",
  facility_id text COLLATE \"C\" NOT NULL, region_code text COLLATE \"C\" NOT NULL,
  day date NOT NULL, metric text COLLATE \"C\" NOT NULL, dims jsonb NOT NULL, value bigint NOT NULL,
  PRIMARY KEY (source, id));
CREATE TABLE outreach_alt.raw_missions (
  source text COLLATE \"C\" NOT NULL, id text COLLATE \"C\" NOT NULL,
  kind text NOT NULL CHECK (kind IN ('dispatched', 'completed')),
  time timestamptz NOT NULL, institution_id text COLLATE \"C\" NOT NULL,
  mission_id text COLLATE \"C\" NOT NULL, program_id text COLLATE \"C\",
  host_facility_id text COLLATE \"C\", region_code text COLLATE \"C\", team_size int,
  start_date date, end_date date,
  PRIMARY KEY (source, id));
CREATE TEMP TABLE stage_activities (LIKE outreach_alt.raw_activities);
CREATE TEMP TABLE stage_missions (LIKE outreach_alt.raw_missions);
";

const REBUILD: &str = include_str!("postgres/alternative.sql");

/// The alternative's connection, with its staging tables.
pub struct Alternative {
    conn: sqlx::pool::PoolConnection<sqlx::Postgres>,
}

impl Sink {
    /// Creates `outreach_alt` afresh (Postgres only).
    pub async fn alternative(&self) -> Result<Alternative> {
        let db = self.postgres("the batch SQL alternative runs on Postgres")?;
        let mut conn = db.pool.acquire().await?;
        sqlx::raw_sql(SCHEMA).execute(&mut *conn).await?;
        Ok(Alternative { conn })
    }
}

impl Alternative {
    /// Loads one chunk of events in one transaction: COPY into staging,
    /// then into the raw tables, duplicates skipped.
    pub async fn load(&mut self, events: &[Event]) -> Result<()> {
        let mut tx = sqlx::Connection::begin(&mut *self.conn).await?;
        let activities: Vec<(&Event, &schemas::Activity)> = events
            .iter()
            .filter_map(|e| match &e.body {
                Body::Activity(a) => Some((e, a)),
                _ => None,
            })
            .collect();
        copy_in(
            &mut tx,
            "COPY stage_activities FROM STDIN",
            &activities,
            activity_row,
        )
        .await?;
        let missions: Vec<&Event> = events
            .iter()
            .filter(|e| !matches!(e.body, Body::Activity(_)))
            .collect();
        copy_in(
            &mut tx,
            "COPY stage_missions FROM STDIN",
            &missions,
            mission_row,
        )
        .await?;
        sqlx::raw_sql(
            "INSERT INTO outreach_alt.raw_activities SELECT * FROM stage_activities ON CONFLICT DO NOTHING;
             INSERT INTO outreach_alt.raw_missions SELECT * FROM stage_missions ON CONFLICT DO NOTHING;
             TRUNCATE stage_activities, stage_missions;",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Builds the three roll-ups and their keys from the raw tables.
    pub async fn rebuild(&mut self) -> Result<Duration> {
        let started = Instant::now();
        sqlx::raw_sql(REBUILD).execute(&mut *self.conn).await?;
        Ok(started.elapsed())
    }

    /// Cells where the alternative's tables and the pipeline's differ
    /// (0: the two results are the same).
    pub async fn mismatches(&mut self) -> Result<i64> {
        let mut bad = 0;
        for (table, key) in [
            (
                "daily_metrics",
                "day, institution_id, program_id, mission_id, facility_id, region_code, metric, dims",
            ),
            (
                "regional_metrics",
                "region_code, period_type, period_start, metric",
            ),
            (
                "program_metrics",
                "program_id, period_type, period_start, metric",
            ),
        ] {
            // EXCEPT compares NULLs (mission_id) as equal, as the keys do.
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "WITH a AS (SELECT {key}, value FROM outreach.{table}),
                      b AS (SELECT {key}, value FROM outreach_alt.{table} WHERE value <> 0)
                 SELECT (SELECT count(*) FROM (SELECT * FROM a EXCEPT ALL SELECT * FROM b) x)
                      + (SELECT count(*) FROM (SELECT * FROM b EXCEPT ALL SELECT * FROM a) y)"
            )))
            .fetch_one(&mut *self.conn)
            .await?;
            bad += n;
        }
        Ok(bad)
    }

    /// Drops `outreach_alt`.
    pub async fn drop(mut self) -> Result<()> {
        sqlx::raw_sql("DROP SCHEMA outreach_alt CASCADE")
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }
}

/// One activity as a row of `stage_activities`.
fn activity_row(r: &mut Row<'_>, (e, a): &(&Event, &schemas::Activity)) {
    r.text(&e.institution)
        .text(&e.id)
        .text(&e.institution)
        .text(&a.record_id)
        .int(a.revision.into())
        .text(&a.program_id)
        .opt_text(a.mission_id.as_deref())
        .text(&a.facility_id)
        .text(&a.region_code)
        .date(a.occurred_on)
        .text(a.metric.as_str())
        .text(a.dims.as_json())
        .int(a.value.hundredths());
}

/// One mission event as a row of `stage_missions`.
fn mission_row(r: &mut Row<'_>, e: &&Event) {
    r.text(&e.institution).text(&e.id);
    match &e.body {
        Body::Dispatched(d) => {
            r.text("dispatched")
                .text(&e.time.to_rfc3339())
                .text(&e.institution)
                .text(&d.mission_id)
                .text(&d.program_id)
                .text(&d.host_facility_id)
                .text(&d.region_code)
                .int(d.team_size.into())
                .date(d.start_date)
                .opt_text(None);
        }
        Body::Completed(c) => {
            r.text("completed")
                .text(&e.time.to_rfc3339())
                .text(&e.institution)
                .text(&c.mission_id)
                .opt_text(None)
                .opt_text(None)
                .opt_text(None)
                .opt_text(None)
                .opt_text(None)
                .date(c.end_date);
        }
        Body::Activity(_) => unreachable!("filtered out above"),
    }
}
