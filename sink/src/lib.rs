//! The sink stage: the database. Owns the schema (migrations), the region
//! table's copy in the database, the offsets that say where each partition
//! resumes, and the one transaction per batch that applies a batch's changes.
//!
//! Two backends, chosen by `database.url`, with the same tables and the same
//! semantics: Postgres (`postgres://…`, the production store: many writers,
//! roles, row-level security) and SQLite (`sqlite://file.db`, embedded: no
//! server to run, one writer at a time).
//!
//! A batch is applied as: [`Sink::begin`], [`Batch::claim`] (compare-and-set
//! of the partitions' offsets: a fenced worker stops here), [`Batch::load`]
//! (the ledger rows the batch touches, locked), then the caller computes the
//! changes (the transform stage) and [`Batch::write`] + [`Batch::commit`].

pub mod alternative;
mod batch;
mod error;
pub mod inspect;
mod lanes;
mod postgres;
pub mod report;
mod rows;
mod settings;
mod sqlite;

pub use batch::{Batch, QuarantineRow, WriteTimings};
pub use error::{ConnectFailure, Error, Result};
pub use lanes::Share;
pub use postgres::compact::Compacted;
pub use postgres::roles;
pub use schemas::OffsetRange;
pub use settings::{Backend, Settings, key_file_warning};
pub use sqlite::overview::Section;

use schemas::Regions;

/// The delta rows waiting for the fold, per table: what readers pay for
/// on top of the stored cells, and what the pending budget bounds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub daily: u64,
    pub regional: u64,
    pub program: u64,
    /// How long the oldest regional or program delta has waited (`None`:
    /// none is pending).
    pub oldest: Option<std::time::Duration>,
    /// Cells the fold holds back because their sums would not fit
    /// (Postgres, migration 0007), and their delta rows (counted in the
    /// tables' figures above too).
    pub held: u64,
    pub held_rows: u64,
}

impl Pending {
    /// Every table's rows together but the held cells': what
    /// `database.max_pending_deltas` bounds. (A held cell's deltas wait for
    /// its records to be corrected, not for the fold: counting them would
    /// stop every batch behind a producer stuck in a loop.)
    pub fn rows(&self) -> u64 {
        (self.daily + self.regional + self.program).saturating_sub(self.held_rows)
    }

    /// (table, rows), for the per-table gauge.
    pub fn tables(&self) -> [(&'static str, u64); 3] {
        [
            ("daily_deltas", self.daily),
            ("regional_deltas", self.regional),
            ("program_deltas", self.program),
        ]
    }
}

const SQLITE_HAS_NO_LOGINS: &str = "analyst logins and their scope are Postgres' (database.url = postgres://…): a SQLite file has no logins, and whoever can read the file reads every row";

/// A pool of connections to the database.
#[derive(Clone)]
pub struct Sink {
    db: Db,
}

#[derive(Clone)]
enum Db {
    Postgres(postgres::Db),
    Sqlite(sqlite::Db),
}

impl Sink {
    pub async fn connect(settings: &Settings) -> Result<Sink> {
        let db = match settings.backend()? {
            Backend::Postgres(options) => {
                Db::Postgres(postgres::Db::connect(settings, options).await?)
            }
            Backend::Sqlite(options) => Db::Sqlite(sqlite::Db::connect(settings, options).await?),
        };
        Ok(Sink { db })
    }

    /// The periods whose regional and program cells a batch writes. Both
    /// backends keep deltas at the day grain and derive the other periods
    /// when they read or fold them (Postgres' migration 0004, SQLite's
    /// 0002), so the transform need not compute them.
    pub fn periods(&self) -> &'static [schemas::Period] {
        &[schemas::Period::Day]
    }

    /// Applies the migrations that have not run yet (Postgres: then the
    /// roles' grants when needed).
    pub async fn migrate(&self) -> Result<()> {
        match &self.db {
            Db::Postgres(db) => db.migrate().await,
            Db::Sqlite(db) => db.migrate().await,
        }
    }

    /// For a pipeline that does not migrate (`database.migrate = false`):
    /// fails unless every migration of this build has been applied.
    pub async fn check_migrated(&self) -> Result<()> {
        let (applied, latest) = match &self.db {
            Db::Postgres(db) => db.migration_versions().await?,
            Db::Sqlite(db) => db.migration_versions().await?,
        };
        if applied < latest {
            return Err(Error::NotMigrated { applied, latest });
        }
        Ok(())
    }

    /// Writes the region table (shipped plus operators' additions) to
    /// `regions`, so analysts can join on it. Returns the rows changed.
    pub async fn sync_regions(&self, regions: &Regions) -> Result<u64> {
        match &self.db {
            Db::Postgres(db) => db.sync_regions(regions).await,
            Db::Sqlite(db) => db.sync_regions(regions).await,
        }
    }

    /// The next offset to apply for each partition, `None` where the
    /// database has never applied one.
    pub async fn stored_offsets(&self, partitions: &[(String, i32)]) -> Result<Vec<Option<i64>>> {
        let rows = match &self.db {
            Db::Postgres(db) => db.stored_offsets(partitions).await?,
            Db::Sqlite(db) => db.stored_offsets(partitions).await?,
        };
        Ok(partitions
            .iter()
            .map(|(t, p)| rows.iter().find(|r| &r.0 == t && r.1 == *p).map(|r| r.2))
            .collect())
    }

    /// [`Sink::stored_offsets`] over a connection of its own, for callers
    /// outside any pool or runtime (the rebalance callback).
    pub async fn read_offsets(
        settings: &Settings,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Option<i64>>> {
        let one = Settings {
            max_connections: 1,
            ..settings.clone()
        };
        let sink = Sink::connect(&one).await?;
        let found = sink.stored_offsets(partitions).await;
        sink.close().await;
        found
    }

    /// Starts the transaction of one batch. (SQLite: takes the database's
    /// write lock now, so batches of several processes queue here.)
    pub async fn begin(&self) -> Result<Batch> {
        Ok(match &self.db {
            Db::Postgres(db) => Batch::postgres(db.begin().await?),
            Db::Sqlite(db) => Batch::sqlite(db.begin().await?),
        })
    }

    /// Folds the deltas batches appended into the stored roll-up cells, in
    /// a transaction of its own ([`Share::Alone`]: two lanes at once).
    /// `None`: another worker is compacting now, or a rebuild holds the
    /// cells (Postgres; on SQLite a compaction waits for the write lock
    /// instead). Readers see the same totals before and after.
    pub async fn compact(&self, share: Share) -> Result<Option<Compacted>> {
        match &self.db {
            Db::Postgres(db) => db.compact(share).await,
            Db::Sqlite(db) => db.compact(share).await,
        }
    }

    /// The deltas a fold has still to move, and how long the oldest
    /// regional or program delta has waited. Counted exactly (one scan of
    /// each deltas table, which the fold keeps small; the statistics'
    /// estimate lagged by seconds, too long for the pending budget).
    pub async fn pending(&self) -> Result<Pending> {
        #[allow(clippy::type_complexity)] // one row of the statement below
        let (daily, regional, program, oldest, held, held_rows): (i64, i64, i64, Option<f64>, i64, i64) =
            match &self.db {
                Db::Postgres(db) => {
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
                    .fetch_one(&db.pool)
                    .await?
                }
                Db::Sqlite(db) => {
                    sqlx::query_as(
                        "SELECT (SELECT count(*) FROM daily_deltas), r.n, p.n,
                            (julianday('now') - julianday(
                               CASE WHEN r.oldest IS NULL THEN p.oldest
                                    WHEN p.oldest IS NULL THEN r.oldest
                                    ELSE min(r.oldest, p.oldest) END)) * 86400.0,
                            0, 0
                     FROM (SELECT count(*) AS n, min(updated_at) AS oldest FROM regional_deltas) r,
                          (SELECT count(*) AS n, min(updated_at) AS oldest FROM program_deltas) p",
                    )
                    .fetch_one(&db.pool)
                    .await?
                }
            };
        Ok(Pending {
            daily: daily as u64,
            regional: regional as u64,
            program: program as u64,
            // A clock step may make it negative: nothing has waited.
            oldest: oldest.map(|s| std::time::Duration::from_secs_f64(s.max(0.0))),
            held: held as u64,
            held_rows: held_rows as u64,
        })
    }

    /// Makes the Postgres login `login` an analyst and adds `scope` to the
    /// institutions it sees; returns all it sees now. (Run as the schema
    /// owner, after [`Sink::migrate`].)
    pub async fn grant_analyst(&self, login: &str, scope: &roles::Scope) -> Result<roles::Scope> {
        match &self.db {
            Db::Postgres(db) => {
                roles::grant_analyst(&db.pool, db.analyst_role(), login, scope).await
            }
            Db::Sqlite(_) => Err(Error::Unsupported(SQLITE_HAS_NO_LOGINS)),
        }
    }

    /// Takes `institutions` (none named: every one, and the analyst role)
    /// from the Postgres login `login`; returns what it still sees.
    pub async fn revoke_analyst(
        &self,
        login: &str,
        institutions: &[schemas::Id],
    ) -> Result<roles::Scope> {
        match &self.db {
            Db::Postgres(db) => {
                roles::revoke_analyst(&db.pool, db.analyst_role(), login, institutions).await
            }
            Db::Sqlite(_) => Err(Error::Unsupported(SQLITE_HAS_NO_LOGINS)),
        }
    }

    /// Closes every connection, waiting for those in use.
    pub async fn close(&self) {
        match &self.db {
            Db::Postgres(db) => db.pool.close().await,
            Db::Sqlite(db) => db.pool.close().await,
        }
    }

    /// The roll-ups, indicators and quarantine as rows of text, for the
    /// demo (SQLite; Postgres users have `psql` and the views).
    pub async fn overview(&self) -> Result<Vec<Section>> {
        match &self.db {
            Db::Sqlite(db) => sqlite::overview::overview(&db.pool).await,
            Db::Postgres(_) => Err(Error::Unsupported("the overview is for SQLite databases")),
        }
    }
}
