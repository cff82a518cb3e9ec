//! One harness for the end-to-end tests, as zero2prod's `spawn_app`: a
//! broker with the contract's topics, a database of its own (Postgres, or
//! a SQLite file), the settings of a pipeline on both, and typed questions
//! about the tables.
//! A test says what it sends and what the analysts must read; the harness
//! owns how.

use std::fmt;

use chrono::NaiveDate;
use outreach::settings::Settings;
use schemas::{Metric, Period};
use sqlx::{PgPool, SqlitePool};
use tokio::sync::OnceCell;

use super::{Broker, Db, Record, SqliteDb, drain, settings_to, unique};

/// Where an [`App`] keeps its tables: a Postgres database of its own
/// ([`Db`]) or a SQLite file in a directory of its own ([`SqliteDb`]).
pub trait Store: Sized {
    /// A pool to read the tables with.
    type Pool;
    async fn create() -> Self;
    fn url(&self) -> &str;
    /// Opened at the first question: a SQLite file exists only once a
    /// pipeline has run on it (and that run is what creates it).
    async fn open(&self) -> Self::Pool;
}

impl Store for Db {
    type Pool = PgPool;
    async fn create() -> Db {
        Db::new().await
    }
    fn url(&self) -> &str {
        &self.url
    }
    async fn open(&self) -> PgPool {
        self.pool().await
    }
}

impl Store for SqliteDb {
    type Pool = SqlitePool;
    async fn create() -> SqliteDb {
        SqliteDb::new()
    }
    fn url(&self) -> &str {
        &self.url
    }
    async fn open(&self) -> SqlitePool {
        self.pool().await
    }
}

pub struct App<D: Store = Db> {
    pub broker: Broker,
    pub db: D,
    /// A pipeline's settings on this broker and database.
    pub settings: Settings,
    pool: OnceCell<D::Pool>,
}

impl App<SqliteDb> {
    /// The same on a SQLite file, which the first pipeline creates.
    pub async fn spawn_sqlite(partitions: i32) -> App<SqliteDb> {
        App::spawn_on(partitions).await
    }

    /// Every invariant between the tables holds, in SQLite's dialect.
    pub async fn assert_consistent(&self) {
        super::assert_consistent_sqlite(self.pool().await).await
    }
}

impl<D: Store> App<D> {
    async fn spawn_on(partitions: i32) -> App<D> {
        let broker = Broker::start();
        broker.contract_topics(partitions).await;
        let db = D::create().await;
        let settings = settings_to(&broker, db.url(), &unique("g"));
        App {
            broker,
            db,
            settings,
            pool: OnceCell::new(),
        }
    }

    /// A pool on the tables, opened at the first call.
    pub async fn pool(&self) -> &D::Pool {
        self.pool.get_or_init(|| self.db.open()).await
    }

    /// Publishes `records` in order and waits for every acknowledgement.
    pub async fn send(&self, records: &[Record]) {
        self.broker.producer().send(records).await;
    }

    /// Runs the pipeline in-process until it has caught up, as a consumer
    /// group of its own each time: a new group has no Kafka offsets, so
    /// every drain also checks that the database alone says where each
    /// partition resumes.
    pub async fn drain(&self) -> outreach::pipeline::Report {
        let mut settings = self.settings.clone();
        settings.kafka.group_id = unique("g");
        drain(&settings).await
    }
}

impl App {
    /// A fresh world on Postgres: the contract's topics with `partitions`
    /// partitions each, and an empty database of its own.
    pub async fn spawn(partitions: i32) -> App {
        App::spawn_on(partitions).await
    }

    /// One `regional_metrics` total (zero when the row is absent).
    pub async fn regional(
        &self,
        region: &str,
        period: Period,
        start: &str,
        metric: Metric,
    ) -> Decimal {
        regional(self.pool().await, region, period, start, metric).await
    }

    /// One `program_metrics` total (zero when the row is absent).
    pub async fn program(
        &self,
        program_id: &str,
        period: Period,
        start: &str,
        metric: Metric,
    ) -> Decimal {
        program(self.pool().await, program_id, period, start, metric).await
    }

    /// Every invariant between the tables holds ([`super::assert_consistent`]).
    pub async fn assert_consistent(&self) -> i64 {
        super::assert_consistent(self.pool().await).await
    }
}

/// One `regional_metrics` total of any Postgres database (zero when the
/// row is absent), for tests that build their world by hand.
pub async fn regional(
    pool: &PgPool,
    region: &str,
    period: Period,
    start: &str,
    metric: Metric,
) -> Decimal {
    cell(
        pool,
        "regional_metrics",
        "region_code",
        region,
        (period, start, metric),
    )
    .await
}

/// One `program_metrics` total of any Postgres database.
pub async fn program(
    pool: &PgPool,
    program_id: &str,
    period: Period,
    start: &str,
    metric: Metric,
) -> Decimal {
    cell(
        pool,
        "program_metrics",
        "program_id",
        program_id,
        (period, start, metric),
    )
    .await
}

async fn cell(
    pool: &PgPool,
    table: &str,
    key: &str,
    id: &str,
    (period, start, metric): (Period, &str, Metric),
) -> Decimal {
    let start: NaiveDate = start.parse().expect("a period start as YYYY-MM-DD");
    // As text, parsed here: a stray third decimal fails the parse instead
    // of being rounded away.
    let sql = format!(
        "SELECT value::text FROM outreach.{table}
         WHERE {key} = $1 AND period_type = $2 AND period_start = $3 AND metric = $4"
    );
    let v: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(period.as_str())
        .bind(start)
        .bind(metric.as_str())
        .fetch_optional(pool)
        .await
        .unwrap();
    v.map_or(Decimal(0), |t| Decimal::parse(&t))
}

/// A total as the tables hold it, exactly: hundredths of the metric's unit.
/// It compares with the text of a number (`"23"`, `"12.5"`), so a test
/// reads as the analyst's figure.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Decimal(pub i64);

impl Decimal {
    pub fn parse(text: &str) -> Decimal {
        let (neg, t) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (units, cents) = t.split_once('.').unwrap_or((t, ""));
        // Postgres' numeric text keeps its scale ("23.00"): zeros are no decimal.
        let cents = cents.trim_end_matches('0');
        assert!(cents.len() <= 2, "{text}: at most two decimals");
        let units: i64 = units.parse().unwrap_or_else(|_| panic!("{text}: a number"));
        let cents: i64 = format!("{cents:0<2}").parse().unwrap();
        let h = units * 100 + cents;
        Decimal(if neg { -h } else { h })
    }
}

impl PartialEq<&str> for Decimal {
    fn eq(&self, text: &&str) -> bool {
        *self == Decimal::parse(text)
    }
}

impl fmt::Debug for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sign, h) = if self.0 < 0 {
            ("-", -self.0)
        } else {
            ("", self.0)
        };
        match h % 100 {
            0 => write!(f, "{sign}{}", h / 100),
            c if c % 10 == 0 => write!(f, "{sign}{}.{}", h / 100, c / 10),
            c => write!(f, "{sign}{}.{c:02}", h / 100),
        }
    }
}
