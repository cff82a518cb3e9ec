//! The sink's settings (`database.*`).

use serde::{Deserialize, Serialize, Serializer};
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

use crate::{Error, Result};

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `postgres://user:password@host:port/db?sslmode=...`, or
    /// `sqlite://path/to/file.db` for the embedded backend (created if
    /// missing). Holds a secret: never printed nor serialized with its
    /// password (see the `Debug` impl and `redacted`).
    #[serde(serialize_with = "redacted")]
    pub url: String,
    /// Connections in the pool: one per in-flight batch plus the offset
    /// look-ups and the compaction (two for the fold after a drain, where
    /// the pool has room) is plenty.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// How long to keep retrying at start while the database is not up yet.
    #[serde(default = "default_connect_retry_secs")]
    pub connect_retry_secs: u64,
    /// Apply the migrations and role grants when `run` starts. Turn off when
    /// the pipeline connects as the writer role, which may not change the
    /// schema: the schema owner then runs `outreach migrate` before upgrades.
    #[serde(default = "default_migrate")]
    pub migrate: bool,
    /// The role the pipeline's login role should belong to: rows only, no
    /// schema changes. Created by `migrate` if missing; "" to skip roles.
    #[serde(default = "default_writer_role")]
    pub writer_role: String,
    /// The read-only role for analysts (tables and views of the contract,
    /// scoped per institution by `outreach.analyst_scope`); "" to skip.
    #[serde(default = "default_analyst_role")]
    pub analyst_role: String,
    /// How often to fold the roll-ups' pending deltas into their stored
    /// cells (both backends). Readers see every committed batch at once
    /// either way; folding often keeps their queries short. After a long
    /// fold the next waits twice as long as it took.
    #[serde(default = "default_compact_interval_ms")]
    pub compact_interval_ms: u64,
}

fn default_compact_interval_ms() -> u64 {
    1_000
}

fn default_migrate() -> bool {
    true
}

fn default_writer_role() -> String {
    "outreach_writer".into()
}

fn default_analyst_role() -> String {
    "outreach_analyst".into()
}

fn default_connect_retry_secs() -> u64 {
    60
}

fn default_max_connections() -> u32 {
    4
}

fn default_connect_timeout_secs() -> u64 {
    10
}

impl Settings {
    pub fn new(url: impl Into<String>) -> Settings {
        Settings {
            url: url.into(),
            max_connections: default_max_connections(),
            connect_timeout_secs: default_connect_timeout_secs(),
            connect_retry_secs: default_connect_retry_secs(),
            migrate: default_migrate(),
            writer_role: default_writer_role(),
            analyst_role: default_analyst_role(),
            compact_interval_ms: default_compact_interval_ms(),
        }
    }

    /// The backend the URL names, with its connection options.
    pub fn backend(&self) -> Result<Backend> {
        if self.url.starts_with("sqlite:") {
            self.sqlite_options().map(Backend::Sqlite)
        } else {
            self.postgres_options().map(Backend::Postgres)
        }
    }

    /// The SQLite file `url` names (`None` for Postgres), for commands
    /// that only read and must not create an empty one.
    pub fn sqlite_file(&self) -> Result<Option<std::path::PathBuf>> {
        Ok(match self.backend()? {
            Backend::Sqlite(o) => Some(o.get_filename().to_owned()),
            Backend::Postgres(_) => None,
        })
    }

    pub fn postgres_options(&self) -> Result<PgConnectOptions> {
        if !(self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")) {
            return Err(Error::Url(format!(
                "expected postgres://user:password@host:port/database or sqlite://path/to/file.db, found {}",
                redact_url(&self.url)
            )));
        }
        PgConnectOptions::from_str(&self.url)
            .map(|o| {
                // A batch's statements take seconds under backlog by design;
                // the batch log line has the timings, so sqlx's own "slow
                // statement" warning would only be noise.
                o.application_name("outreach")
                    .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1))
            })
            .map_err(|e| Error::Url(redact(&e.to_string(), &self.url)))
    }

    fn sqlite_options(&self) -> Result<SqliteConnectOptions> {
        // Each connection to `:memory:` is a database of its own, and the
        // offset look-up at each rebalance opens a connection of its own.
        if self.url.contains(":memory:") || self.url.contains("mode=memory") {
            return Err(Error::Url(format!(
                "{}: an in-memory SQLite database would be lost between connections; give a file, e.g. sqlite://outreach.db",
                self.url
            )));
        }
        SqliteConnectOptions::from_str(&self.url)
            .map(|o| {
                o.create_if_missing(true)
                    // Readers never block the writer, nor the writer them.
                    .journal_mode(SqliteJournalMode::Wal)
                    // A crash or power cut may lose the last commits, never
                    // tear one: their offsets go with them, so the batches
                    // are read again from the broker. Exact either way.
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    // One writer at a time: other processes' batches, and a
                    // rebuild, queue this long before failing (and retrying).
                    .busy_timeout(Duration::from_secs(30))
                    .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1))
            })
            .map_err(|e| Error::Url(format!("{}: {e}", self.url)))
    }

    /// The URL with its password replaced by `***`, for logs.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("url", &self.redacted_url())
            .field("max_connections", &self.max_connections)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("connect_retry_secs", &self.connect_retry_secs)
            .field("migrate", &self.migrate)
            .field("writer_role", &self.writer_role)
            .field("analyst_role", &self.analyst_role)
            .field("compact_interval_ms", &self.compact_interval_ms)
            .finish()
    }
}

fn redacted<S: Serializer>(url: &str, s: S) -> std::result::Result<S::Ok, S::Error> {
    redact_url(url).serialize(s)
}

/// Which database `database.url` names.
pub enum Backend {
    Postgres(PgConnectOptions),
    Sqlite(SqliteConnectOptions),
}

/// `scheme://user:secret@host` → `scheme://user:***@host`, and a
/// `password=` query parameter (which sqlx reads too) → `password=***`.
pub fn redact_url(url: &str) -> String {
    let url = redact_userinfo(url);
    let Some((base, query)) = url.split_once('?') else {
        return url;
    };
    let query: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => p.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(x) => x,
        None => return url.to_owned(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

fn redact(message: &str, url: &str) -> String {
    match url
        .split_once("://")
        .and_then(|(_, r)| r.rsplit_once('@'))
        .and_then(|(a, _)| a.split_once(':'))
    {
        Some((_, secret)) if !secret.is_empty() => message.replace(secret, "***"),
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_debug_output() {
        let s = Settings::new("postgres://writer:hunter2@db:5432/outreach");
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("writer:***@db:5432"), "{shown}");
        assert_eq!(redact_url("postgres://db/x"), "postgres://db/x");
        assert_eq!(
            redact_url("postgres://w@db/x?sslmode=require&password=hunter2"),
            "postgres://w@db/x?sslmode=require&password=***"
        );
        assert_eq!(
            redact_url("postgres://w:a?b@db/x?password=c"),
            "postgres://w:***@db/x?password=***"
        );
        let serialized = serde_json::to_string(&s).unwrap();
        assert!(
            !serialized.contains("hunter2") && serialized.contains("writer:***@db:5432"),
            "{serialized}"
        );
    }
}
