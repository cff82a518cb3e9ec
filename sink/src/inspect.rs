//! Read-only questions about the tables and database administration used by
//! `outreach bench` (and useful to any verification): leaf totals, counts,
//! size; creating and dropping a scratch database, on either backend.

use std::collections::HashMap;
use std::path::PathBuf;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use sqlx::Connection;

use crate::backend::Count;
use crate::{BackendOptions, Result, Settings, Sink};

const READERS_ON_POSTGRES: &str = "the readers' benchmark runs on Postgres";

impl Sink {
    /// `daily_metrics` summed per (region_code, metric), in hundredths.
    pub async fn leaf_totals(&self) -> Result<HashMap<(String, String), i64>> {
        let rows = self.backend.leaf_totals().await?;
        Ok(rows.into_iter().map(|(r, m, v)| ((r, m), v)).collect())
    }

    /// The sum of every country's yearly cells, in hundredths.
    pub async fn country_total(&self) -> Result<i64> {
        Ok(self.backend.country_total().await?.unwrap_or(0))
    }

    pub async fn quarantined(&self) -> Result<i64> {
        self.backend.count(Count::Quarantined).await
    }

    pub async fn database_bytes(&self) -> Result<i64> {
        self.backend.count(Count::DatabaseBytes).await
    }

    /// Messages applied, over every partition the ledger has offsets for
    /// (the sum of the next offsets: on topics that start at offset 0,
    /// every message read, accepted or quarantined).
    pub async fn applied_messages(&self) -> Result<u64> {
        Ok(self.backend.count(Count::AppliedMessages).await? as u64)
    }
}

/// How long Postgres takes to COPY rows into an empty table with the keys
/// and indexes of one of ours: the floor any way of writing them has.
#[derive(Debug, Clone)]
pub struct CopyFloor {
    pub tables: Vec<(String, u64, Duration)>,
}

impl CopyFloor {
    pub fn total(&self) -> Duration {
        self.tables.iter().map(|t| t.2).sum()
    }
}

/// What [`Sink::copy_floor`] copies: the stored roll-ups, the ledger, the
/// missions and the quarantine: every row a run leaves.
const FLOOR_TABLES: [&str; 7] = [
    "daily_cells",
    "regional_cells",
    "program_cells",
    "activity_facts",
    "mission_facts",
    "missions",
    "quarantine",
];

impl Sink {
    /// Runs `sql` (Postgres, the simple protocol: no prepared plan) and
    /// returns how long it took to fetch every row, and how many there were.
    /// For the benchmark's readers.
    pub async fn timed_read(&self, sql: &str) -> Result<(Duration, u64)> {
        let db = self.postgres(READERS_ON_POSTGRES)?;
        let t = Instant::now();
        let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_all(&db.pool)
            .await?;
        Ok((t.elapsed(), rows.len() as u64))
    }

    /// The first column of the first row of `sql`, as text (Postgres).
    pub async fn read_text(&self, sql: &str) -> Result<Option<String>> {
        let db = self.postgres(READERS_ON_POSTGRES)?;
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&db.pool)
            .await?)
    }

    /// The Postgres settings that decide what a write costs, to print
    /// beside the figures (`None` on SQLite).
    pub async fn server_settings(&self) -> Result<Option<Vec<(String, String)>>> {
        let Some(db) = &self.postgres else {
            return Ok(None);
        };
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, setting || coalesce(unit, '') FROM pg_settings
             WHERE name IN ('server_version', 'shared_buffers', 'synchronous_commit', 'fsync',
                            'full_page_writes', 'wal_compression', 'max_wal_size',
                            'checkpoint_timeout', 'work_mem', 'maintenance_work_mem')
             ORDER BY name",
        )
        .fetch_all(&db.pool)
        .await?;
        Ok(Some(rows))
    }

    /// Copies every row the run left ([`FLOOR_TABLES`]) out to a scratch
    /// file, then times COPY of it into an empty copy of each table (same
    /// keys and indexes), in a scratch schema dropped afterwards. Postgres only.
    pub async fn copy_floor(&self, scratch: &std::path::Path) -> Result<Option<CopyFloor>> {
        let Some(db) = &self.postgres else {
            return Ok(None);
        };
        let mut c = db.pool.acquire().await?;
        sqlx::raw_sql("DROP SCHEMA IF EXISTS outreach_floor CASCADE; CREATE SCHEMA outreach_floor")
            .execute(&mut *c)
            .await?;
        let mut tables = Vec::new();
        for t in FLOOR_TABLES {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE TABLE outreach_floor.{t} (LIKE outreach.{t} INCLUDING ALL)"
            )))
            .execute(&mut *c)
            .await?;
            let mut file = std::fs::File::create(scratch).map_err(sqlx::Error::Io)?;
            let mut out = c
                .copy_out_raw(&format!("COPY outreach.{t} TO STDOUT"))
                .await?;
            while let Some(chunk) = out.try_next().await? {
                file.write_all(&chunk).map_err(sqlx::Error::Io)?;
            }
            drop(out);
            drop(file);
            let mut file = std::fs::File::open(scratch).map_err(sqlx::Error::Io)?;
            let started = Instant::now();
            let mut copy = c
                .copy_in_raw(&format!("COPY outreach_floor.{t} FROM STDIN"))
                .await?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buf).map_err(sqlx::Error::Io)?;
                if n == 0 {
                    break;
                }
                copy.send(&buf[..n]).await?;
            }
            let rows = copy.finish().await?;
            tables.push((t.to_owned(), rows, started.elapsed()));
        }
        let _ = std::fs::remove_file(scratch);
        sqlx::query("DROP SCHEMA outreach_floor CASCADE")
            .execute(&mut *c)
            .await?;
        Ok(Some(CopyFloor { tables }))
    }
}

/// Creates database `name` beside the one `settings.url` names (Postgres:
/// on the same server; SQLite: `name.db` in the same directory); returns
/// the settings that reach it.
pub async fn create_database(settings: &Settings, name: &str) -> Result<Settings> {
    let url = match settings.backend()? {
        BackendOptions::Postgres(options) => {
            let mut c = crate::postgres::connect_one(settings, &options, timeout(settings)).await?;
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
            format!("{server}/{name}{query}")
        }
        BackendOptions::Sqlite(options) => {
            format!(
                "sqlite://{}",
                sqlite_sibling(options.get_filename(), name).display()
            )
        }
    };
    Ok(Settings {
        url,
        ..settings.clone()
    })
}

pub async fn drop_database(settings: &Settings, name: &str) -> Result<()> {
    match settings.backend()? {
        BackendOptions::Postgres(options) => {
            let mut c = crate::postgres::connect_one(settings, &options, timeout(settings)).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut c)
            .await?;
            c.close().await?;
        }
        BackendOptions::Sqlite(options) => {
            let file = sqlite_sibling(options.get_filename(), name);
            for suffix in ["", "-wal", "-shm"] {
                let mut p = file.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
    }
    Ok(())
}

/// [`drop_database`] from synchronous code (a scratch database's `Drop`,
/// which may run inside a runtime): on a thread and runtime of its own.
pub fn drop_database_blocking(settings: &Settings, name: &str) -> Result<()> {
    let (settings, name) = (settings.clone(), name.to_owned());
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| crate::Error::Database(sqlx::Error::Io(e)))?
            .block_on(drop_database(&settings, &name))
    })
    .join()
    .unwrap_or(Ok(()))
}

fn timeout(settings: &Settings) -> std::time::Duration {
    std::time::Duration::from_secs(settings.connect_timeout_secs)
}

/// `name.db` in the directory of `file`.
fn sqlite_sibling(file: &std::path::Path, name: &str) -> PathBuf {
    file.parent()
        .unwrap_or_else(|| std::path::Path::new("."))
        .join(format!("{name}.db"))
}
