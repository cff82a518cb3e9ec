//! The Postgres backend: schema `outreach`, set-based statements over
//! arrays (`UNNEST`), the roll-ups' deltas appended with COPY and folded by
//! compaction, row locks so that several workers can write at once, and the
//! writer and analyst roles.

mod batch;
pub(crate) mod copy;
pub(crate) mod fold;
mod reads;
pub mod roles;
mod upgrade;

use batch::Batch;

use std::time::Duration;

use async_trait::async_trait;
use schemas::Regions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

use crate::backend::{self, Backend, StoredOffset};
use crate::{Compacted, ConnectFailure, Error, Result, Settings, Share};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Clone)]
pub(crate) struct Db {
    pub pool: PgPool,
    /// (writer, analyst) role names, when roles are managed.
    roles: Option<(String, String)>,
    /// To say where and why when the pool cannot connect later.
    target: std::sync::Arc<(Settings, PgConnectOptions)>,
}

/// One connection, outside any pool, within `timeout`; a failure to
/// connect is [`Error::Connect`], which names the address and the setting.
pub(crate) async fn connect_one(
    settings: &Settings,
    options: &PgConnectOptions,
    timeout: Duration,
) -> Result<PgConnection> {
    match tokio::time::timeout(timeout, options.connect()).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(connect_error(settings, options, e)),
        Err(_) => Err(Error::Connect {
            address: address(options),
            url: settings.redacted_url(),
            failure: ConnectFailure::TimedOut(settings.connect_timeout_secs),
        }),
    }
}

/// The pool retries a refused connection until its time-out and then says
/// only that: one attempt of our own tells why (the address, database.url,
/// refused or timed out). [`sqlx::Error::PoolTimedOut`] if that attempt
/// connects: the pool was busy, not the database away.
async fn why_timed_out(settings: &Settings, options: &PgConnectOptions) -> Error {
    let timeout = Duration::from_secs(settings.connect_timeout_secs.clamp(1, 5));
    match connect_one(settings, options, timeout).await {
        Err(e) => e,
        Ok(c) => match c.close().await {
            Err(e) => e.into(),
            Ok(()) => sqlx::Error::PoolTimedOut.into(),
        },
    }
}

fn connect_error(settings: &Settings, options: &PgConnectOptions, e: sqlx::Error) -> Error {
    let database = options.get_database().unwrap_or(options.get_username());
    match ConnectFailure::of(&e, database) {
        Some(ConnectFailure::TimedOut(_)) => Error::Connect {
            address: address(options),
            url: settings.redacted_url(),
            failure: ConnectFailure::TimedOut(settings.connect_timeout_secs),
        },
        Some(failure) => Error::Connect {
            address: address(options),
            url: settings.redacted_url(),
            failure,
        },
        None => e.into(),
    }
}

/// `host:port`, or the socket directory.
fn address(options: &PgConnectOptions) -> String {
    let host = options.get_host();
    if host.starts_with('/') {
        format!("{host} (socket)")
    } else {
        format!("{host}:{}", options.get_port())
    }
}

impl Db {
    pub async fn connect(settings: &Settings, options: PgConnectOptions) -> Result<Db> {
        let pool = match PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(Duration::from_secs(settings.connect_timeout_secs))
            .connect_with(options.clone())
            .await
        {
            Ok(pool) => pool,
            Err(sqlx::Error::PoolTimedOut) => return Err(why_timed_out(settings, &options).await),
            Err(e) => return Err(connect_error(settings, &options, e)),
        };
        let roles = (!settings.writer_role.is_empty() && !settings.analyst_role.is_empty())
            .then(|| (settings.writer_role.clone(), settings.analyst_role.clone()));
        Ok(Db {
            pool,
            roles,
            target: std::sync::Arc::new((settings.clone(), options)),
        })
    }

    /// The managed analyst role; "" when roles are not managed.
    pub fn analyst_role(&self) -> &str {
        self.roles.as_ref().map_or("", |(_, analyst)| analyst)
    }

    /// The latest migration applied (0: none, or no migration table yet).
    async fn applied_version(&self) -> Result<i64> {
        match sqlx::query_scalar::<_, Option<i64>>(
            "SELECT max(version) FROM public._sqlx_migrations WHERE success",
        )
        .fetch_one(&self.pool)
        .await
        {
            Ok(v) => Ok(v.unwrap_or(0)),
            // No migration table: nothing was ever applied.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Ok(0),
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait]
impl Backend for Db {
    /// Applies the migrations that have not run yet, then the roles' grants
    /// when a migration ran or the roles are not in place. (Granting again
    /// at every start would take exclusive locks that wait behind, and then
    /// hold up, analysts' long queries.) An upgrade from before 0005 keeps
    /// what its analysts saw ([`upgrade`]).
    async fn migrate(&self) -> Result<()> {
        let before = self.applied_version().await?;
        upgrade::capture(&self.pool, before).await?;
        MIGRATOR.run(&self.pool).await?;
        if let Some((writer, analyst)) = &self.roles {
            let migrated = self.applied_version().await? != before;
            if migrated || !roles::in_place(&self.pool, writer, analyst).await? {
                roles::grant(&self.pool, writer, analyst).await?;
            }
        }
        let analyst = self.roles.as_ref().map(|(_, analyst)| analyst.as_str());
        let kept = upgrade::keep(&self.pool, analyst).await?;
        if !kept.is_empty() {
            tracing::warn!(
                logins = kept.join(", "),
                "analyst logins without a scope used to see every institution; they keep it as an explicit grant (institution_id '*'): {}. New logins see no institution until granted (outreach grant-analyst).",
                kept.join(", ")
            );
        }
        Ok(())
    }

    /// (latest applied, latest of this build).
    async fn migration_versions(&self) -> Result<(i64, i64)> {
        let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        Ok((self.applied_version().await?, latest))
    }

    async fn sync_regions(&self, regions: &Regions) -> Result<u64> {
        let rows = regions.parents_first();
        let code: Vec<&str> = rows.iter().map(|r| r.code.as_str()).collect();
        let name: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        let level: Vec<&str> = rows.iter().map(|r| r.level.as_str()).collect();
        let parent: Vec<Option<&str>> = rows.iter().map(|r| r.parent.as_deref()).collect();
        let done = sqlx::query(
            "INSERT INTO outreach.regions (region_code, name, level, parent_code)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[])
             ON CONFLICT (region_code) DO UPDATE
               SET name = excluded.name, level = excluded.level, parent_code = excluded.parent_code
             WHERE (regions.name, regions.level, regions.parent_code)
                   IS DISTINCT FROM (excluded.name, excluded.level, excluded.parent_code)",
        )
        .bind(code)
        .bind(name)
        .bind(level)
        .bind(parent)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn stored_offsets(&self, partitions: &[(String, i32)]) -> Result<Vec<StoredOffset>> {
        let topics: Vec<&str> = partitions.iter().map(|(t, _)| t.as_str()).collect();
        let parts: Vec<i32> = partitions.iter().map(|(_, p)| *p).collect();
        Ok(sqlx::query_as(
            "SELECT o.topic, o.partition, o.next_offset FROM outreach.consumer_offsets o
             JOIN UNNEST($1::text[], $2::int[]) AS k(t, p) ON o.topic = k.t AND o.partition = k.p",
        )
        .bind(topics)
        .bind(parts)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn compact(&self, share: Share) -> Result<Option<Compacted>> {
        let done = fold::compact(&self.pool, share).await?;
        if share == Share::Alone && done.is_some_and(|d| d.deltas > 0) {
            fold::vacuum_deltas(&self.pool).await;
        }
        Ok(done)
    }

    async fn begin(&self) -> Result<Box<dyn backend::Transaction>> {
        match self.pool.begin().await {
            Ok(tx) => Ok(Box::new(Batch::new(tx))),
            // Say, the database went away since the start.
            Err(sqlx::Error::PoolTimedOut) => {
                let (settings, options) = &*self.target;
                Err(why_timed_out(settings, options).await)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn close(&self) {
        self.pool.close().await
    }
}
