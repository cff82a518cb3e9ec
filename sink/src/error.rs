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
    /// The database could not be reached, or refused the login: where,
    /// which setting, what happened and what to check, in one line.
    #[error(
        "cannot connect to the database at {address} (database.url / OUTREACH__DATABASE__URL = {url}): {failure}; {}",
        failure.advice()
    )]
    Connect {
        address: String,
        /// `database.url` with its password masked.
        url: String,
        failure: ConnectFailure,
    },
    #[error("migration failed: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    /// The database records a migration this build does not have: a newer
    /// release migrated it.
    #[error(
        "the database was migrated by a newer release of outreach (it records migration {0}, which this build does not have): run that release or a later one; this one cannot use the newer schema"
    )]
    SchemaNewer(i64),
    #[error("database.url is not valid: {0}")]
    Url(String),
    /// A secret file that cannot be used: the setting, the file, why.
    #[error("{0}")]
    Secret(String),
    /// A feature this backend does not have; the text says which.
    #[error("{0}")]
    Unsupported(&'static str),
    #[error(
        "the schema is at migration {applied} but this build needs {latest}, and database.migrate is false: run `outreach migrate` as the schema owner first"
    )]
    NotMigrated { applied: i64, latest: i64 },
    /// A reader (`outreach report`) found no analyst tables.
    #[error(
        "the database has no analyst tables (no daily_metrics): point database.url at the pipeline's database, or run `outreach migrate` on it first"
    )]
    NoAnalystTables,
    /// `grant-analyst` / `revoke-analyst` name a login the cluster lacks.
    #[error(
        "there is no login role \"{0}\" in this Postgres cluster: create it first (psql -c \"CREATE ROLE {0} LOGIN PASSWORD '…'\"), then grant it"
    )]
    NoSuchLogin(String),
    /// A role name that would need quoting, or a managed role left unset.
    #[error("{0}")]
    Role(String),
    /// The last fold waited this long for another worker's (or a
    /// rebuild's) fold to end.
    #[error(
        "another worker (or a rebuild) held the fold's lock for {0:?}: the deltas stay visible and are folded by whoever holds it; check `outreach_compactions_total` on the other workers"
    )]
    FoldLocked(std::time::Duration),
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Error {
        match e {
            sqlx::migrate::MigrateError::VersionMissing(v) => Error::SchemaNewer(v),
            e => Error::Migrate(e),
        }
    }
}

impl Error {
    /// Worth trying the same batch again after a pause: the database was
    /// unreachable, restarting, or chose this transaction as a deadlock or
    /// serialisation victim.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Conflict(_) => true,
            Error::Connect { failure, .. } => failure.is_retryable(),
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

/// Why a connection to the database failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectFailure {
    Refused,
    /// No answer within `database.connect_timeout_secs`.
    TimedOut(u64),
    /// The host name does not resolve.
    NameNotFound,
    /// Wrong password, unknown role, or no `pg_hba.conf` entry (28P01,
    /// 28000): the server's words.
    Authentication(String),
    /// The database named in the URL does not exist (3D000): its name.
    NoDatabase(String),
    /// The server's certificate does not chain to `sslrootcert`: OpenSSL's
    /// reason.
    Untrusted(String),
    /// It chains, but names another host (`verify-full`).
    NameMismatch(String),
    /// `pg_hba.conf` has only `hostssl` lines for us: the server's words.
    TlsOnly(String),
    /// `sslmode` requires TLS and the server has it off.
    NoTls,
    Tls(String),
    /// Anything else on the way (reset, not a Postgres server...).
    Other(String),
}

impl std::fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectFailure::Refused => f.write_str("connection refused"),
            ConnectFailure::TimedOut(s) => write!(f, "timed out after {s} s"),
            ConnectFailure::NameNotFound => f.write_str("name not found"),
            ConnectFailure::Authentication(m) => write!(f, "authentication failed ({m})"),
            ConnectFailure::NoDatabase(name) => write!(f, "database \"{name}\" does not exist"),
            ConnectFailure::Untrusted(why) => {
                write!(f, "the server's certificate is not trusted ({why})")
            }
            ConnectFailure::NameMismatch(why) => write!(
                f,
                "the server's certificate does not match the host in the URL ({why})"
            ),
            ConnectFailure::TlsOnly(m) => {
                write!(f, "the server accepts only TLS connections ({m})")
            }
            ConnectFailure::NoTls => f.write_str("the server does not offer TLS"),
            ConnectFailure::Tls(m) => write!(f, "TLS failed ({m})"),
            ConnectFailure::Other(m) => f.write_str(m),
        }
    }
}

impl ConnectFailure {
    /// What to check or do.
    pub fn advice(&self) -> String {
        let advice = match self {
            ConnectFailure::Refused => "check that Postgres runs and listens at that address",
            ConnectFailure::TimedOut(_) => {
                "check the host, the port and any firewall between (database.connect_timeout_secs sets the wait)"
            }
            ConnectFailure::NameNotFound => "check the host name in the URL",
            ConnectFailure::Authentication(_) => {
                "check the user and password in the URL, and the server's pg_hba.conf"
            }
            ConnectFailure::NoDatabase(name) => {
                return format!(
                    "create it (`CREATE DATABASE \"{name}\"`, or `createdb {name}`) or correct the database name in the URL"
                );
            }
            ConnectFailure::Untrusted(_) => {
                "set sslrootcert in the URL to the file of the CA that signed it"
            }
            ConnectFailure::NameMismatch(_) => {
                "connect by a name the certificate holds, or set sslmode=verify-ca in the URL to check its CA only"
            }
            ConnectFailure::TlsOnly(_) => "set sslmode=verify-full (with sslrootcert) in the URL",
            ConnectFailure::NoTls => {
                "turn ssl on in the server, or, on a network you trust, lower sslmode in the URL to prefer"
            }
            ConnectFailure::Tls(_) => "check sslmode and sslrootcert in the URL",
            ConnectFailure::Other(_) => "check the address and that Postgres runs there",
        };
        advice.to_owned()
    }

    /// The database may come up or be found later; a refused login or a
    /// missing database will not fix itself.
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            ConnectFailure::Authentication(_)
                | ConnectFailure::NoDatabase(_)
                | ConnectFailure::Untrusted(_)
                | ConnectFailure::NameMismatch(_)
                | ConnectFailure::TlsOnly(_)
                | ConnectFailure::NoTls
                | ConnectFailure::Tls(_)
        )
    }

    /// What a failed connection attempt says; `None` for errors that are
    /// not about connecting.
    /// `database`: the name the URL gives, for a missing database.
    pub(crate) fn of(error: &sqlx::Error, database: &str) -> Option<ConnectFailure> {
        Some(match error {
            sqlx::Error::Io(e) => match e.kind() {
                std::io::ErrorKind::ConnectionRefused => ConnectFailure::Refused,
                std::io::ErrorKind::TimedOut => ConnectFailure::TimedOut(0),
                // tokio's resolver: "failed to lookup address information:
                // Name or service not known".
                _ if e.to_string().contains("lookup address") => ConnectFailure::NameNotFound,
                _ => ConnectFailure::Other(e.to_string()),
            },
            sqlx::Error::Tls(e) => tls_failure(&e.to_string()),
            sqlx::Error::Protocol(m) => ConnectFailure::Other(format!(
                "the server there does not speak Postgres' protocol ({m})"
            )),
            sqlx::Error::Database(db) => match db.code().as_deref() {
                // "no pg_hba.conf entry for host …, no encryption"
                Some("28000") if db.message().ends_with("no encryption") => {
                    ConnectFailure::TlsOnly(db.message().to_owned())
                }
                Some("28P01" | "28000") => ConnectFailure::Authentication(db.message().to_owned()),
                Some("3D000") => ConnectFailure::NoDatabase(database.to_owned()),
                _ => return None,
            },
            _ => return None,
        })
    }
}

/// A TLS failure, in OpenSSL's and sqlx's words ("error:0A000086:SSL
/// routines:…:certificate verify failed:…: (IP address mismatch)").
fn tls_failure(text: &str) -> ConnectFailure {
    if text.contains("server does not support TLS") {
        return ConnectFailure::NoTls;
    }
    if !text.contains("certificate verify failed") {
        return ConnectFailure::Tls(text.to_owned());
    }
    let why = text
        .rsplit_once('(')
        .map_or(text, |(_, why)| why.trim_end_matches(')'))
        .to_owned();
    if why.contains("mismatch") {
        ConnectFailure::NameMismatch(why)
    } else {
        ConnectFailure::Untrusted(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_connection_is_one_line_naming_the_address_the_setting_and_the_fix() {
        let io = |kind, text: &str| sqlx::Error::Io(std::io::Error::new(kind, text.to_owned()));
        let refused = io(std::io::ErrorKind::ConnectionRefused, "refused");
        let dns = io(
            std::io::ErrorKind::Other,
            "failed to lookup address information: Name or service not known",
        );
        assert_eq!(
            ConnectFailure::of(&refused, "x"),
            Some(ConnectFailure::Refused)
        );
        assert_eq!(
            ConnectFailure::of(&dns, "x"),
            Some(ConnectFailure::NameNotFound)
        );
        assert_eq!(ConnectFailure::of(&sqlx::Error::RowNotFound, "x"), None);

        let e = Error::Connect {
            address: "db:5432".into(),
            url: "postgres://w:***@db:5432/outreach".into(),
            failure: ConnectFailure::NoDatabase("outreach".into()),
        };
        assert_eq!(
            e.to_string(),
            "cannot connect to the database at db:5432 (database.url / OUTREACH__DATABASE__URL = postgres://w:***@db:5432/outreach): database \"outreach\" does not exist; create it (`CREATE DATABASE \"outreach\"`, or `createdb outreach`) or correct the database name in the URL"
        );
        assert!(!e.is_retryable(), "a missing database stays missing");
        let refused = Error::Connect {
            address: "db:5432".into(),
            url: "postgres://db:5432/outreach".into(),
            failure: ConnectFailure::Refused,
        };
        assert!(refused.is_retryable(), "the server may be starting");
    }

    #[test]
    fn tls_failures_say_which_and_which_url_parameter_to_change() {
        // As sqlx with native-tls words them (measured on Postgres 15).
        let verify = |why: &str| {
            tls_failure(&format!(
                "error:0A000086:SSL routines:tls_post_process_server_certificate:certificate verify failed:../ssl/statem/statem_clnt.c:1889: ({why})"
            ))
        };
        let untrusted = verify("self-signed certificate in certificate chain");
        assert_eq!(
            untrusted,
            ConnectFailure::Untrusted("self-signed certificate in certificate chain".into())
        );
        assert!(untrusted.advice().contains("sslrootcert"));
        let name = verify("IP address mismatch");
        assert_eq!(
            name,
            ConnectFailure::NameMismatch("IP address mismatch".into())
        );
        assert!(name.to_string().contains("does not match") && name.advice().contains("verify-ca"));
        assert_eq!(
            tls_failure("server does not support TLS"),
            ConnectFailure::NoTls
        );
        assert!(ConnectFailure::NoTls.advice().contains("sslmode"));
        for f in [untrusted, name, ConnectFailure::NoTls] {
            assert!(!f.is_retryable(), "{f}: no retry fixes a certificate");
        }
    }
}
