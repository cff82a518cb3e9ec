//! What can go wrong writing a batch, split the way callers act on it.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The stored offset is not where this worker expected it: another worker
    /// owns (or owned) the partition and has written it since. The batch must
    /// be dropped and the partition re-read from the stored offset.
    #[error(
        "partition {topic}/{partition} was written by another worker (expected offset {expected:?}); dropping the batch and resuming from the database"
    )]
    Fenced {
        topic: String,
        partition: i32,
        expected: Option<i64>,
    },
    /// Another worker inserted a fact this batch also inserts; retrying the
    /// batch sees it and applies the difference.
    #[error("{0} or more facts were inserted concurrently by another worker; retrying the batch")]
    Conflict(u64),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database.url is not valid: {0}")]
    Url(String),
    /// A feature this backend does not have; the text says which.
    #[error("{0}")]
    Unsupported(&'static str),
    #[error(
        "the schema is at migration {applied} but this build needs {latest}, and database.migrate is false: run `outreach migrate` as the schema owner first"
    )]
    NotMigrated { applied: i64, latest: i64 },
}

impl Error {
    /// Worth trying the same batch again after a pause: the database was
    /// unreachable, restarting, or chose this transaction as a deadlock or
    /// serialisation victim.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Conflict(_) => true,
            Error::Database(e) => match e {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Protocol(_) => true,
                // SQLite: busy or locked past the busy timeout, an I/O
                // error, the disk full (primary result codes SQLITE_BUSY,
                // SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL; Postgres' 53xxx).
                sqlx::Error::Database(db)
                    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() =>
                {
                    db.code()
                        .and_then(|c| c.parse::<i32>().ok())
                        .is_some_and(|c| matches!(c & 0xff, 5 | 6 | 10 | 13))
                }
                sqlx::Error::Database(db) => db.code().is_some_and(|c| {
                    matches!(
                        c.as_ref(),
                        "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03"
                    ) || c.starts_with("08")
                        || c.starts_with("53")
                }),
                _ => false,
            },
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
