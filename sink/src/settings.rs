//! The sink's settings (`database.*`).

use serde::{Deserialize, Serialize, Serializer};
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use std::path::{Path, PathBuf};
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
    /// A file holding the login's password (a Docker or Kubernetes secret,
    /// `OUTREACH__DATABASE__PASSWORD_FILE`): it replaces any password in
    /// `url`, so the URL itself holds no secret. Read at each start; one
    /// trailing newline is dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
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
    /// The most delta rows (all three tables) that may wait for the fold.
    /// Past it, batches wait until a fold brings the count back under, so
    /// what analysts' queries pay for pending deltas stays bounded at any
    /// offered load. 0: no bound.
    #[serde(default = "default_max_pending_deltas")]
    pub max_pending_deltas: u64,
}

fn default_max_pending_deltas() -> u64 {
    1_000_000
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
            password_file: None,
            max_connections: default_max_connections(),
            connect_timeout_secs: default_connect_timeout_secs(),
            connect_retry_secs: default_connect_retry_secs(),
            migrate: default_migrate(),
            writer_role: default_writer_role(),
            analyst_role: default_analyst_role(),
            compact_interval_ms: default_compact_interval_ms(),
            max_pending_deltas: default_max_pending_deltas(),
        }
    }

    /// The backend the URL names, with its connection options.
    pub fn backend(&self) -> Result<BackendOptions> {
        if self.url.starts_with("sqlite:") {
            self.sqlite_options().map(BackendOptions::Sqlite)
        } else {
            self.postgres_options().map(BackendOptions::Postgres)
        }
    }

    /// The SQLite file `url` names (`None` for Postgres), for commands
    /// that only read and must not create an empty one.
    pub fn sqlite_file(&self) -> Result<Option<std::path::PathBuf>> {
        Ok(match self.backend()? {
            BackendOptions::Sqlite(o) => Some(o.get_filename().to_owned()),
            BackendOptions::Postgres(_) => None,
        })
    }

    pub fn postgres_options(&self) -> Result<PgConnectOptions> {
        if !(self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")) {
            return Err(Error::Url(format!(
                "expected postgres://user:password@host:port/database or sqlite://path/to/file.db, found {}",
                redact_url(&self.url)
            )));
        }
        check_parameters(&self.url)?;
        let options = PgConnectOptions::from_str(&self.url)
            .map_err(|e| Error::Url(redact(&e.to_string(), &self.url)))?
            // A batch's statements take seconds under backlog by design;
            // the batch log line has the timings, so sqlx's own "slow
            // statement" warning would only be noise.
            .application_name("outreach")
            .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1));
        Ok(match &self.password_file {
            Some(path) => options.password(&read_secret(path, "database.password_file")?),
            None => options,
        })
    }

    /// What an operator should fix about how secrets are kept: a private
    /// key (`sslkey` in the URL) that other users can read.
    pub fn secret_warnings(&self) -> Vec<String> {
        let Ok(url) = url::Url::parse(&self.url) else {
            return Vec::new();
        };
        url.query_pairs()
            .filter(|(k, _)| k == "sslkey" || k == "ssl-key")
            .filter_map(|(_, path)| key_file_warning(Path::new(&*path), "sslkey in database.url"))
            .collect()
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
            .field("password_file", &self.password_file)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("connect_retry_secs", &self.connect_retry_secs)
            .field("migrate", &self.migrate)
            .field("writer_role", &self.writer_role)
            .field("analyst_role", &self.analyst_role)
            .field("compact_interval_ms", &self.compact_interval_ms)
            .field("max_pending_deltas", &self.max_pending_deltas)
            .finish()
    }
}

fn redacted<S: Serializer>(url: &str, s: S) -> std::result::Result<S::Ok, S::Error> {
    redact_url(url).serialize(s)
}

/// Which database `database.url` names.
pub enum BackendOptions {
    Postgres(PgConnectOptions),
    Sqlite(SqliteConnectOptions),
}

/// The URL with every secret replaced by `***`: the password of its
/// user information and the `password` parameter, and `sslpassword` (which
/// is refused, but may be written by mistake). Parsed as a URL, so an `@` or `?` inside a password moves
/// nothing; a URL that does not parse is shown as its scheme alone.
pub fn redact_url(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text) else {
        let scheme = text.split_once("://").map_or("", |(s, _)| s);
        return format!("{scheme}://*** (not a valid URL)");
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if let Some(query) = url.query() {
        // Parameter by parameter, the others as written.
        let masked: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if is_secret_parameter(&percent_decode(k)) => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        url.set_query(Some(&masked.join("&")));
    }
    url.to_string()
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

fn is_secret_parameter(key: &str) -> bool {
    key.eq_ignore_ascii_case("password") || key.eq_ignore_ascii_case("sslpassword")
}

/// `message` with every secret of `url` replaced by `***`.
fn redact(message: &str, url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url) else {
        return message.to_owned();
    };
    let mut secrets = Vec::new();
    let query = parsed.query().unwrap_or("").split('&');
    for (k, v) in query.filter_map(|pair| pair.split_once('=')) {
        if is_secret_parameter(&percent_decode(k)) {
            secrets.extend([v.to_owned(), percent_decode(&v.replace('+', " "))]);
        }
    }
    if let Some(p) = parsed.password() {
        secrets.extend([p.to_owned(), percent_decode(p)]);
    }
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(message.to_owned(), |m, s| m.replace(s.as_str(), "***"))
}

/// The URL parameters the Postgres driver (sqlx 0.9) acts on.
const PARAMETERS: [&str; 17] = [
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
];

/// Refuses a parameter the driver would ignore: a misspelt `sslrootcrt`
/// would quietly weaken TLS, and the driver's warning would log the value,
/// a secret for `sslpassword`. (`options` is accepted too.)
fn check_parameters(text: &str) -> Result<()> {
    let Ok(url) = url::Url::parse(text) else {
        return Ok(()); // the driver's own parser says what is wrong
    };
    for (key, _) in url.query_pairs() {
        if key == "sslpassword" {
            return Err(Error::Url(
                "sslpassword: the Postgres driver cannot open an encrypted client key; decrypt it (`openssl pkey -in client.key -out client-plain.key`), keep it mode 600 and name it in sslkey".into(),
            ));
        }
        if !PARAMETERS.contains(&&*key) && key != "options" {
            return Err(Error::Url(format!(
                "unknown parameter {key}: the Postgres driver knows {} and options",
                PARAMETERS.join(", ")
            )));
        }
    }
    Ok(())
}

/// The contents of a secret file, less one trailing newline; the error
/// names the setting and the file.
pub fn read_secret(path: &Path, setting: &str) -> Result<String> {
    let mut text = std::fs::read_to_string(path).map_err(|e| {
        Error::Secret(format!(
            "{setting} = {}: cannot read it ({e}); check the path and that this user may read it",
            path.display()
        ))
    })?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(Error::Secret(format!(
            "{setting} = {}: the file is empty",
            path.display()
        )));
    }
    Ok(text)
}

/// A warning when a private key file can be read by other users than its
/// owner (libpq refuses such a key outright; librdkafka and sqlx take it).
pub fn key_file_warning(path: &Path, setting: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "the private key {} ({setting}) can be read by other users (mode {mode:04o}): `chmod 600 {}`, owned by the user that runs outreach",
            path.display(),
            path.display()
        )
    })
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
            redact_url("postgres://w:a%3Fb@db/x?password=c&sslpassword=d"),
            "postgres://w:***@db/x?password=***&sslpassword=***"
        );
        // An `@` in a password given as a parameter hides neither the host
        // nor the rest of the password (issue 26).
        let leaky = "postgres://127.0.0.1:5432/db?user=postgres&password=topsecret@tail";
        assert_eq!(
            redact_url(leaky),
            "postgres://127.0.0.1:5432/db?user=postgres&password=***"
        );
        assert_eq!(
            redact("error near topsecret@tail and a%3Fb", leaky),
            "error near *** and a%3Fb"
        );
        assert_eq!(
            redact("password a?b, encoded a%3Fb", "postgres://w:a%3Fb@db/x"),
            "password ***, encoded ***"
        );
        assert_eq!(
            redact_url("postgres://w:x@[db/x"),
            "postgres://*** (not a valid URL)"
        );
        let serialized = serde_json::to_string(&s).unwrap();
        assert!(
            !serialized.contains("hunter2") && serialized.contains("writer:***@db:5432"),
            "{serialized}"
        );
    }

    #[test]
    fn a_parameter_the_driver_would_ignore_is_refused_without_its_value() {
        let refused = |url: &str| match Settings::new(url).postgres_options() {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{url} accepted"),
        };
        let e = refused("postgres://db/x?sslmode=verify-full&sslpassword=s3cret");
        assert!(e.contains("sslpassword") && !e.contains("s3cret"), "{e}");
        let e = refused("postgres://db/x?sslrootcrt=/ca.pem");
        assert!(e.contains("unknown parameter sslrootcrt"), "{e}");
        Settings::new("postgres://u@db/x?sslmode=verify-ca&sslrootcert=/ca.pem&application_name=a")
            .postgres_options()
            .unwrap();
    }
}
