//! The sink stage: the database. Owns the schema (migrations), the region
//! table's copy in the database, the offsets that say where each partition
//! resumes, and the one transaction per batch that applies a batch's changes.
//!
//! Two backends, chosen by `database.url`, with the same tables and the same
//! semantics: Postgres (`postgres://…`, the production store: many writers,
//! roles, row-level security) and SQLite (`sqlite://file.db`, embedded: no
//! server to run, one writer at a time).
//!
//! Each backend implements the one seam, `backend.rs` ([`Sink`] holds a
//! `dyn Backend`): nothing outside `postgres/` and `sqlite/` knows which
//! database it talks to, but for what only Postgres has (analyst logins,
//! the benchmark's tools), which holds the Postgres database itself, and
//! the benchmark's scratch databases (`inspect.rs`), made beside the one
//! `database.url` names in that backend's terms.
//!
//! A batch is applied as: [`Sink::begin`], [`Batch::claim`] (compare-and-set
//! of the partitions' offsets: a fenced worker stops here), [`Batch::load`]
//! (the ledger rows the batch touches, locked), then the caller computes the
//! changes (the transform stage) and [`Batch::write`] + [`Batch::commit`].
//! The fold of the roll-ups' deltas, and when it runs, are `fold.rs`.

pub mod alternative;
mod backend;
mod batch;
mod error;
pub mod fold;
pub mod inspect;
mod lanes;
mod postgres;
pub mod report;
mod rows;
mod settings;
mod sqlite;

pub use backend::QuarantineRow;
pub use backend::{Compacted, Pending};
pub use batch::{Batch, WriteTimings};
pub use error::{ConnectFailure, Error, Result};
pub use lanes::Share;
pub use postgres::roles;
pub use report::Section;
pub use schemas::OffsetRange;
pub use settings::{BackendOptions, Settings, key_file_warning};

use std::sync::Arc;

use schemas::Regions;

const SQLITE_HAS_NO_LOGINS: &str = "analyst logins and their scope are Postgres' (database.url = postgres://…): a SQLite file has no logins, and whoever can read the file reads every row";

/// A pool of connections to the database.
#[derive(Clone)]
pub struct Sink {
    backend: Arc<dyn backend::Backend>,
    /// The same database, for what only Postgres has (analyst logins, the
    /// benchmark's readers and SQL alternative); `None` on SQLite.
    postgres: Option<postgres::Db>,
}

impl Sink {
    pub async fn connect(settings: &Settings) -> Result<Sink> {
        Ok(match settings.backend()? {
            BackendOptions::Postgres(options) => {
                let db = postgres::Db::connect(settings, options).await?;
                Sink {
                    backend: Arc::new(db.clone()),
                    postgres: Some(db),
                }
            }
            BackendOptions::Sqlite(options) => Sink {
                backend: Arc::new(sqlite::Db::connect(settings, options).await?),
                postgres: None,
            },
        })
    }

    /// Applies the migrations that have not run yet (Postgres: then the
    /// roles' grants when needed).
    pub async fn migrate(&self) -> Result<()> {
        self.backend.migrate().await
    }

    /// For a pipeline that does not migrate (`database.migrate = false`):
    /// fails unless every migration of this build has been applied.
    pub async fn check_migrated(&self) -> Result<()> {
        let (applied, latest) = self.backend.migration_versions().await?;
        if applied < latest {
            return Err(Error::NotMigrated { applied, latest });
        }
        Ok(())
    }

    /// Writes the region table (shipped plus operators' additions) to
    /// `regions`, so analysts can join on it. Returns the rows changed.
    pub async fn sync_regions(&self, regions: &Regions) -> Result<u64> {
        self.backend.sync_regions(regions).await
    }

    /// The next offset to apply for each partition, `None` where the
    /// database has never applied one.
    pub async fn stored_offsets(&self, partitions: &[(String, i32)]) -> Result<Vec<Option<i64>>> {
        let stored = self.backend.stored_offsets(partitions).await?;
        Ok(partitions
            .iter()
            .map(|(topic, partition)| {
                stored
                    .iter()
                    .find(|s| &s.topic == topic && s.partition == *partition)
                    .map(|s| s.next_offset)
            })
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
        Ok(Batch::new(self.backend.begin().await?))
    }

    /// Folds the deltas batches appended into the stored roll-up cells, in
    /// a transaction of its own ([`Share::Alone`]: two lanes at once).
    /// `None`: another worker is compacting now, or a rebuild holds the
    /// cells (Postgres; on SQLite a compaction waits for the write lock
    /// instead). Readers see the same totals before and after.
    pub async fn compact(&self, share: Share) -> Result<Option<Compacted>> {
        self.backend.compact(share).await
    }

    /// The deltas a fold has still to move, and how long the oldest
    /// regional or program delta has waited.
    pub async fn pending(&self) -> Result<Pending> {
        self.backend.pending().await
    }

    /// Makes the Postgres login `login` an analyst and adds `scope` to the
    /// institutions it sees; returns all it sees now. (Run as the schema
    /// owner, after [`Sink::migrate`].)
    pub async fn grant_analyst(&self, login: &str, scope: &roles::Scope) -> Result<roles::Scope> {
        let db = self.postgres(SQLITE_HAS_NO_LOGINS)?;
        roles::grant_analyst(&db.pool, db.analyst_role(), login, scope).await
    }

    /// Takes `institutions` (none named: every one, and the analyst role)
    /// from the Postgres login `login`; returns what it still sees.
    pub async fn revoke_analyst(
        &self,
        login: &str,
        institutions: &[schemas::Id],
    ) -> Result<roles::Scope> {
        let db = self.postgres(SQLITE_HAS_NO_LOGINS)?;
        roles::revoke_analyst(&db.pool, db.analyst_role(), login, institutions).await
    }

    /// Closes every connection, waiting for those in use.
    pub async fn close(&self) {
        self.backend.close().await
    }

    /// The roll-ups, indicators and quarantine as rows of text, for the
    /// demo (SQLite; Postgres users have `psql` and the views).
    pub async fn overview(&self) -> Result<Vec<Section>> {
        self.backend.overview().await
    }

    /// The rows of a report over `query`, read in one snapshot where the
    /// backend gives one (a repeatable-read transaction on Postgres, a read
    /// transaction on SQLite): every figure of a report agrees with the
    /// others even while batches commit.
    pub async fn report_rows(&self, query: &report::ReportQuery) -> Result<report::ReportRows> {
        self.backend.report_rows(query).await
    }

    /// The Postgres database, for what only Postgres has; `Unsupported`
    /// with `why` elsewhere.
    pub(crate) fn postgres(&self, why: &'static str) -> Result<&postgres::Db> {
        self.postgres.as_ref().ok_or(Error::Unsupported(why))
    }
}
