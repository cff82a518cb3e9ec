//! Read-only questions about the tables and database administration used by
//! `outreach bench` (and useful to any verification): leaf totals, counts,
//! size; creating and dropping a scratch database. Postgres only: the
//! benchmark measures the production backend.

use std::collections::HashMap;

use sqlx::{Connection, PgConnection};

use crate::{Result, Settings, Sink};

impl Sink {
    /// `daily_metrics` summed per (region_code, metric), in hundredths.
    pub async fn leaf_totals(&self) -> Result<HashMap<(String, String), i64>> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT region_code, metric, (sum(value) * 100)::bigint::text FROM outreach.daily_metrics GROUP BY 1, 2",
        )
        .fetch_all(self.postgres("outreach bench needs a Postgres database.url")?)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(r, m, v)| ((r, m), v.parse().unwrap_or(0)))
            .collect())
    }

    /// The sum of every country's yearly cells, in hundredths.
    pub async fn country_total(&self) -> Result<i64> {
        let v: Option<String> = sqlx::query_scalar(
            "SELECT (sum(value) * 100)::bigint::text FROM outreach.regional_metrics
             WHERE region_level = 'country' AND period_type = 'year'",
        )
        .fetch_one(self.postgres("outreach bench needs a Postgres database.url")?)
        .await?;
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    pub async fn quarantined(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM outreach.quarantine")
                .fetch_one(self.postgres("outreach bench needs a Postgres database.url")?)
                .await?,
        )
    }

    pub async fn database_bytes(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(self.postgres("outreach bench needs a Postgres database.url")?)
                .await?,
        )
    }
}

/// Creates database `name` on the server of `settings.url`; returns the
/// settings that reach it.
pub async fn create_database(settings: &Settings, name: &str) -> Result<Settings> {
    let mut c = PgConnection::connect_with(&settings.postgres_options()?).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut c)
        .await?;
    c.close().await?;
    let (base, query) = settings.url.split_once('?').unwrap_or((&settings.url, ""));
    let server = base.rsplit_once('/').map_or(base, |(s, _)| s);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    Ok(Settings {
        url: format!("{server}/{name}{query}"),
        ..settings.clone()
    })
}

pub async fn drop_database(settings: &Settings, name: &str) -> Result<()> {
    let mut c = PgConnection::connect_with(&settings.postgres_options()?).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut c)
    .await?;
    c.close().await?;
    Ok(())
}
