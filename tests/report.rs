//! `outreach report` on both backends: every figure the page prints
//! (each `span.fig` says what it sums) equals the same sum in SQL over the
//! analyst tables, for the bundled sample, a program filter, a date range
//! and a region; every timeliness figure (`span.tl`) equals
//! `reporting_timeliness` or the same definitions over `reporting_lags`;
//! every indicator is the ratio of the figures beside it; the quarantine
//! counts are the table's; the Chinese page (`--lang zh-CN`) prints the
//! English page's figures; hostile names come out as text; and a real
//! browser (headless Chromium) renders both pages, the Chinese one with
//! no missing glyph.

#[path = "report/browser.rs"]
mod browser;
#[path = "report/glyphs.rs"]
mod glyphs;
#[path = "report/hostile.rs"]
mod hostile;
mod support;
#[path = "report/timeliness.rs"]
mod timeliness;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use scraper::{ElementRef, Html, Selector};
use sqlx::Connection;
use support::app::App;
use support::*;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample-events.jsonl");

/// A database the test reads with its own SQL.
enum Sql {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

/// What a report was asked for, as the test's SQL needs it.
#[derive(Default, Clone)]
struct Asked {
    programs: Vec<String>,
    regions: Vec<String>,
    from: Option<String>,
    to: Option<String>,
}

impl Asked {
    fn args(&self) -> Vec<String> {
        let mut a = Vec::new();
        for p in &self.programs {
            a.extend(["--program".into(), p.clone()]);
        }
        for r in &self.regions {
            a.extend(["--region".into(), r.clone()]);
        }
        if let Some(d) = &self.from {
            a.extend(["--from".into(), d.clone()]);
        }
        if let Some(d) = &self.to {
            a.extend(["--to".into(), d.clone()]);
        }
        a
    }
}

/// One figure's scope, read off its attributes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Scope {
    program: String,
    metric: String,
    region: Option<String>,
    month: Option<String>,
    roles: Option<Vec<String>>,
}

const PG_SUM: &str = "
WITH RECURSIVE asked(code) AS (
    SELECT unnest($5::text[])
    UNION SELECT r.region_code FROM outreach.regions r JOIN asked a ON r.parent_code = a.code),
row_region(code) AS (
    SELECT $6::text WHERE $6::text IS NOT NULL
    UNION SELECT r.region_code FROM outreach.regions r JOIN row_region a ON r.parent_code = a.code)
SELECT (coalesce(sum(value), 0) * 100)::bigint FROM outreach.daily_metrics
WHERE program_id = $1 AND metric = $2
  AND ($3::date IS NULL OR day >= $3) AND ($4::date IS NULL OR day <= $4)
  AND (cardinality($5::text[]) = 0 OR region_code IN (SELECT code FROM asked))
  AND ($6::text IS NULL OR region_code IN (SELECT code FROM row_region))
  AND ($7::text IS NULL OR to_char(day, 'YYYY-MM') = $7)
  AND ($8::text[] IS NULL OR dims->>'role' = ANY($8))";

const SQLITE_SUM: &str = "
WITH RECURSIVE asked(code) AS (
    SELECT value FROM json_each(?5)
    UNION SELECT r.region_code FROM regions r JOIN asked a ON r.parent_code = a.code),
row_region(code) AS (
    SELECT ?6 WHERE ?6 IS NOT NULL
    UNION SELECT r.region_code FROM regions r JOIN row_region a ON r.parent_code = a.code)
SELECT CAST(round(coalesce(sum(value), 0) * 100) AS INTEGER) FROM daily_metrics
WHERE program_id = ?1 AND metric = ?2
  AND (?3 IS NULL OR day >= ?3) AND (?4 IS NULL OR day <= ?4)
  AND (?5 = '[]' OR region_code IN (SELECT code FROM asked))
  AND (?6 IS NULL OR region_code IN (SELECT code FROM row_region))
  AND (?7 IS NULL OR substr(day, 1, 7) = ?7)
  AND (?8 IS NULL OR json_extract(dims, '$.role') IN (SELECT value FROM json_each(?8)))";

/// `query` with a figure's scope and the report's filter bound as `PG_SUM`
/// and `SQLITE_SUM` number their parameters.
macro_rules! bind_scope {
    (postgres, $query:expr, $s:expr, $asked:expr) => {{
        let date = |d: &Option<String>| d.as_ref().map(|d| d.parse::<chrono::NaiveDate>().unwrap());
        $query
            .bind(&$s.program)
            .bind(&$s.metric)
            .bind(date(&$asked.from))
            .bind(date(&$asked.to))
            .bind(&$asked.regions)
            .bind(&$s.region)
            .bind(&$s.month)
            .bind(&$s.roles)
    }};
    (sqlite, $query:expr, $s:expr, $asked:expr) => {
        $query
            .bind(&$s.program)
            .bind(&$s.metric)
            .bind(&$asked.from)
            .bind(&$asked.to)
            .bind(serde_json::to_string(&$asked.regions).unwrap())
            .bind(&$s.region)
            .bind(&$s.month)
            .bind($s.roles.as_ref().map(|r| serde_json::to_string(r).unwrap()))
    };
}

impl Sql {
    /// The sum a figure claims, computed in SQL, in hundredths.
    async fn sum(&self, s: &Scope, asked: &Asked) -> i64 {
        match self {
            Sql::Postgres(pool) => bind_scope!(postgres, sqlx::query_scalar(PG_SUM), s, asked)
                .fetch_one(pool)
                .await
                .unwrap(),
            Sql::Sqlite(pool) => bind_scope!(sqlite, sqlx::query_scalar(SQLITE_SUM), s, asked)
                .fetch_one(pool)
                .await
                .unwrap(),
        }
    }

    async fn quarantined(&self) -> HashMap<String, i64> {
        let rows: Vec<(String, i64)> = match self {
            Sql::Postgres(pool) => {
                sqlx::query_as("SELECT error_code, count(*) FROM outreach.quarantine GROUP BY 1")
                    .fetch_all(pool)
                    .await
                    .unwrap()
            }
            Sql::Sqlite(pool) => {
                sqlx::query_as("SELECT error_code, count(*) FROM quarantine GROUP BY 1")
                    .fetch_all(pool)
                    .await
                    .unwrap()
            }
        };
        rows.into_iter().collect()
    }

    /// The programs with figures in the asked period and regions.
    async fn programs_with_figures(&self, asked: &Asked) -> Vec<String> {
        let scope = Scope {
            program: String::new(),
            metric: String::new(),
            region: None,
            month: None,
            roles: None,
        };
        // PG_SUM / SQLITE_SUM without the program and metric conditions.
        let programs = |sql: &str| {
            sql.replace("program_id = $1 AND metric = $2", "$1::text = $2")
                .replace("program_id = ?1 AND metric = ?2", "?1 = ?2")
                .replace(
                    "SELECT (coalesce(sum(value), 0) * 100)::bigint",
                    "SELECT DISTINCT program_id",
                )
                .replace(
                    "SELECT CAST(round(coalesce(sum(value), 0) * 100) AS INTEGER)",
                    "SELECT DISTINCT program_id",
                )
                + " ORDER BY 1"
        };
        let mut got: Vec<String> = match self {
            Sql::Postgres(pool) => {
                let sql = sqlx::AssertSqlSafe(programs(PG_SUM));
                bind_scope!(postgres, sqlx::query_scalar(sql), scope, asked)
                    .fetch_all(pool)
                    .await
                    .unwrap()
            }
            Sql::Sqlite(pool) => {
                let sql = sqlx::AssertSqlSafe(programs(SQLITE_SUM));
                bind_scope!(sqlite, sqlx::query_scalar(sql), scope, asked)
                    .fetch_all(pool)
                    .await
                    .unwrap()
            }
        };
        got.sort();
        got
    }
}

fn select(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

/// `3,600` or `1,234.50` in hundredths.
fn hundredths(text: &str) -> i64 {
    let t = text.trim().replace(',', "");
    let (whole, cents) = t.split_once('.').unwrap_or((&t, "0"));
    let sign = if whole.starts_with('-') { -1 } else { 1 };
    let whole: i64 = whole
        .trim_start_matches('-')
        .parse()
        .unwrap_or_else(|_| panic!("a number: {text:?}"));
    let cents: i64 = format!("{cents:0<2}").parse().unwrap();
    sign * (whole * 100 + cents)
}

fn scope(e: &ElementRef) -> Scope {
    let a = |k| e.value().attr(k).map(str::to_owned);
    Scope {
        program: a("data-program").expect("every figure names its program"),
        metric: a("data-metric").expect("every figure names its metric"),
        region: a("data-region"),
        month: a("data-month"),
        roles: a("data-role").map(|r| r.split(' ').map(str::to_owned).collect()),
    }
}

/// Checks every figure, indicator and quarantine count of `html`; returns
/// how many figures were checked.
async fn check(html: &str, sql: &Sql, asked: &Asked) -> usize {
    let doc = Html::parse_document(html);
    let mut cache: HashMap<Scope, i64> = HashMap::new();
    let mut checked = 0;
    for e in doc.select(&select("span.fig")) {
        let s = scope(&e);
        let printed = hundredths(&e.text().collect::<String>());
        let want = match cache.get(&s) {
            Some(v) => *v,
            None => {
                let v = sql.sum(&s, asked).await;
                cache.insert(s.clone(), v);
                v
            }
        };
        assert_eq!(
            printed, want,
            "{s:?} printed {printed} (hundredths), SQL says {want}"
        );
        checked += 1;
    }
    // An indicator is the ratio of the two figures printed beside it.
    for row in doc.select(&select("table.indicators tbody tr")) {
        let figs: Vec<i64> = row
            .select(&select("span.fig"))
            .map(|e| hundredths(&e.text().collect::<String>()))
            .collect();
        let ratio = row
            .select(&select("td.ratio"))
            .next()
            .unwrap()
            .text()
            .collect::<String>();
        match figs[..] {
            [_, 0] => assert_eq!(ratio, "–"),
            [n, d] => assert_eq!(ratio, format!("{:.2}", n as f64 / d as f64)),
            _ => panic!(
                "an indicator shows its numerator and denominator: {}",
                row.html()
            ),
        }
    }
    // Every program with figures under the filter has its section.
    let mut sections: Vec<String> = doc
        .select(&select("section.program"))
        .map(|e| e.value().attr("data-program").unwrap().to_owned())
        .collect();
    sections.sort();
    if asked.programs.is_empty() {
        assert_eq!(sections, sql.programs_with_figures(asked).await);
    } else {
        let mut want = asked.programs.clone();
        want.sort();
        assert_eq!(sections, want);
    }
    if asked.from.is_none() && asked.to.is_none() {
        let printed: HashMap<String, i64> = doc
            .select(&select("td[data-quarantine]"))
            .map(|e| {
                let code = e.value().attr("data-quarantine").unwrap().to_owned();
                (code, e.text().collect::<String>().parse().unwrap())
            })
            .collect();
        assert_eq!(printed, sql.quarantined().await);
    }
    let (tl, _) = timeliness::check(&doc, sql, asked).await;
    assert!(
        doc.select(&select("section#timeliness")).next().is_some() || sections.is_empty(),
        "every report with programs has its timeliness section"
    );
    assert!(
        doc.select(&select("script")).next().is_none(),
        "no script in the page"
    );
    checked + tl
}

/// The binary, with nothing from the environment pointing it elsewhere.
fn outreach_bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_outreach"));
    for (k, _) in std::env::vars() {
        if k.starts_with("OUTREACH") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c
}

fn outreach(database_url: &str, args: &[String]) -> Output {
    let mut c = outreach_bin();
    c.env("OUTREACH__DATABASE__URL", database_url).args(args);
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "outreach {args:?}:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Writes the report for `asked` with the real binary, in English and in
/// Chinese, and checks both: the figures against SQL, and the Chinese
/// page's against the English page's. Returns how many figures a page has.
async fn report_and_check(database_url: &str, sql: &Sql, asked: &Asked, out: &Path) -> usize {
    let zh_out = out.with_extension("zh-CN.html");
    let mut pages = Vec::new();
    for (lang, out) in [(None, out), (Some("zh-CN"), zh_out.as_path())] {
        let mut args = vec![
            "report".to_owned(),
            "--out".to_owned(),
            out.display().to_string(),
        ];
        if let Some(lang) = lang {
            args.extend(["--lang".to_owned(), lang.to_owned()]);
        }
        args.extend(asked.args());
        let o = outreach(database_url, &args);
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(stdout.contains(&out.display().to_string()), "{stdout}");
        pages.push(std::fs::read_to_string(out).unwrap());
    }
    let checked = check(&pages[0], sql, asked).await;
    assert_eq!(check(&pages[1], sql, asked).await, checked);
    same_figures(&pages[0], &pages[1]);
    checked
}

/// A printed figure: what it says it is (its attributes, sorted), and its
/// value parsed (`None`: `–`).
type Printed = (Vec<(String, String)>, Option<i64>);

/// A page's figures, the quarantine counts and indicators too, sorted.
fn figures_of(html: &str) -> Vec<Printed> {
    let doc = Html::parse_document(html);
    let mut out = Vec::new();
    for e in doc.select(&select("span.fig, span.tl, td[data-quarantine], td.ratio")) {
        let mut attrs: Vec<(String, String)> = e
            .value()
            .attrs()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        attrs.sort();
        let text: String = e.text().collect();
        let value = match e.value().attr("class") {
            Some("fig") => Some(hundredths(&text)),
            Some("tl") => timeliness::value(&text),
            _ if text == "–" => None,
            _ => Some(hundredths(&text)),
        };
        out.push((attrs, value));
    }
    out.sort();
    out
}

/// The Chinese page prints the English page's figures, every one.
fn same_figures(en: &str, zh: &str) {
    let (en, zh) = (figures_of(en), figures_of(zh));
    assert!(!en.is_empty());
    assert_eq!(en.len(), zh.len(), "as many figures in both pages");
    for (e, z) in en.iter().zip(&zh) {
        assert_eq!(e, z, "the English and the Chinese page differ");
    }
}

/// The filters every backend's report is checked under.
fn filters() -> Vec<Asked> {
    vec![
        Asked::default(),
        Asked {
            programs: vec![
                "healthy-china-tour-2023".into(),
                "telemedicine-network".into(),
            ],
            ..Asked::default()
        },
        Asked {
            from: Some("2023-03-01".into()),
            to: Some("2023-08-31".into()),
            ..Asked::default()
        },
        Asked {
            regions: vec!["620000".into()],
            from: Some("2023-01-01".into()),
            ..Asked::default()
        },
    ]
}

/// The demo in `dir`: its database, its English and its Chinese report.
fn demo(dir: &Path, files: &[PathBuf], env: &[(&str, &str)]) -> (PathBuf, PathBuf, PathBuf) {
    let database = dir.join("demo.db");
    let mut c = outreach_bin();
    c.envs(env.iter().copied())
        .args(["demo", "--database"])
        .arg(&database)
        .args(files);
    let o = c.output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "demo:\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let html = dir.join("demo.html");
    let zh = dir.join("demo.zh-CN.html");
    for page in [&html, &zh] {
        assert!(
            stdout.contains(&page.display().to_string()),
            "the demo points at its report {}:\n{stdout}",
            page.display()
        );
    }
    (database, html, zh)
}

fn scratch(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_the_demo_report_and_filtered_reports_print_the_sql_sums() {
    let dir = scratch("outreach-report");
    let (database, html, zh) = demo(&dir, &[], &[]);
    let url = format!("sqlite://{}", database.display());
    let sql = Sql::Sqlite(sqlite_reader(&database).await);
    let (html, zh) = (
        std::fs::read_to_string(&html).unwrap(),
        std::fs::read_to_string(&zh).unwrap(),
    );
    let checked = check(&html, &sql, &Asked::default()).await;
    assert!(checked > 500, "the demo's report prints {checked} figures");
    assert_eq!(check(&zh, &sql, &Asked::default()).await, checked);
    same_figures(&html, &zh);

    // Arrivals spread over days (the demo's are all the time it ran, or
    // unknown), so that medians, percentiles and shares differ per row.
    let writer = Sql::Sqlite(sqlx::SqlitePool::connect(&url).await.unwrap());
    timeliness::spread_arrivals(&writer).await;
    if let Sql::Sqlite(pool) = writer {
        pool.close().await;
    }
    for (i, asked) in filters().iter().enumerate() {
        let n = report_and_check(&url, &sql, asked, &dir.join(format!("r{i}.html"))).await;
        assert!(n > 0, "{i}: no figure printed");
    }
    let page = std::fs::read_to_string(dir.join("r0.html")).unwrap();
    let (tl, known) =
        timeliness::check(&Html::parse_document(&page), &sql, &Asked::default()).await;
    assert!(
        known > tl / 4,
        "{known} of {tl} timeliness figures are days or shares: the arrivals did not reach the report"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_reports_print_the_sql_sums() {
    let app = App::spawn(3).await;
    let (broker, db) = (&app.broker, &app.db);
    let settings = settings(broker, db, &unique("report"));
    outreach::files::publish(&settings, &[PathBuf::from(SAMPLE)], true)
        .await
        .unwrap();
    drain(&settings).await;
    let sql = Sql::Postgres(db.pool().await);
    timeliness::spread_arrivals(&sql).await;
    let dir = scratch("outreach-report-pg");
    for (i, asked) in filters().iter().enumerate() {
        let n = report_and_check(&db.url, &sql, asked, &dir.join(format!("r{i}.html"))).await;
        assert!(n > 0, "{i}: no figure printed");
    }

    // As analyst logins, which the report reads as: one granted every
    // institution, one granted a single institution (its figures only, and
    // not the quarantine). The test's SQL runs as the same login.
    let mut admin = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let all = unique("report_all").to_lowercase();
    let one = unique("report_one").to_lowercase();
    for name in [&all, &one] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE ROLE {name} LOGIN IN ROLE outreach_analyst"
        )))
        .execute(&mut admin)
        .await
        .unwrap();
    }
    outreach(
        &db.url,
        &["grant-analyst".into(), all.clone(), "--all".into()],
    );
    outreach(
        &db.url,
        &[
            "grant-analyst".into(),
            one.clone(),
            "--institution".into(),
            "shanghai-general".into(),
        ],
    );
    let mut figures = Vec::new();
    for (name, sees_quarantine) in [(&all, true), (&one, false)] {
        let (scheme, rest) = db.url.split_once("://").unwrap();
        let host = rest.split_once('@').map_or(rest, |(_, h)| h);
        let url = format!("{scheme}://{name}@{host}");
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let out = dir.join(format!("{name}.html"));
        let n = report_and_check(&url, &Sql::Postgres(pool.clone()), &Asked::default(), &out).await;
        pool.close().await;
        let html = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            !html.contains("This login does not see the quarantine"),
            sees_quarantine,
            "{name}"
        );
        figures.push(n);
    }
    assert!(
        figures[1] < figures[0],
        "one institution's report is smaller: {figures:?}"
    );
    for name in [&all, &one] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_file_or_a_reversed_period_is_one_line_saying_what_to_do() {
    let dir = scratch("outreach-report-errors");
    let missing = dir.join("none.db");
    for (args, part) in [
        (vec!["report".to_owned()], "(database.url) does not exist"),
        (
            vec![
                "report".into(),
                "--from".into(),
                "2024-01-01".into(),
                "--to".into(),
                "2023-01-01".into(),
            ],
            "--from 2024-01-01 is after --to 2023-01-01",
        ),
    ] {
        let mut c = outreach_bin();
        let o = c
            .env(
                "OUTREACH__DATABASE__URL",
                format!("sqlite://{}", missing.display()),
            )
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {stderr}");
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(errors[0].contains(part), "{part:?} not in {stderr}");
        assert!(!missing.exists(), "a report never creates a database file");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
