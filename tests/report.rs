//! `outreach report` on both backends: every figure the page prints
//! (each `span.fig` says what it sums) equals the same sum in SQL over the
//! analyst tables, for the bundled sample, a program filter, a date range
//! and a region; every indicator is the ratio of the figures beside it;
//! the quarantine counts are the table's; hostile names come out as text;
//! and a real browser (headless Chromium) renders the page.

mod support;

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

    /// `program_metrics`' day cells: what the lateness panel counts.
    async fn day_cells(&self) -> i64 {
        match self {
            Sql::Postgres(pool) => sqlx::query_scalar(
                "SELECT count(*) FROM outreach.program_metrics WHERE period_type = 'day'",
            )
            .fetch_one(pool)
            .await
            .unwrap(),
            Sql::Sqlite(pool) => {
                sqlx::query_scalar("SELECT count(*) FROM program_metrics WHERE period_type = 'day'")
                    .fetch_one(pool)
                    .await
                    .unwrap()
            }
        }
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
    if asked.programs.is_empty() && asked.from.is_none() && asked.to.is_none() {
        let late: i64 = doc
            .select(&select("td[data-lateness]"))
            .map(|e| e.text().collect::<String>().parse::<i64>().unwrap())
            .sum();
        assert_eq!(
            late,
            sql.day_cells().await,
            "every day cell is in one lateness bucket"
        );
    }
    assert!(
        doc.select(&select("script")).next().is_none(),
        "no script in the page"
    );
    checked
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

/// Writes the report for `asked` with the real binary and checks it.
async fn report_and_check(database_url: &str, sql: &Sql, asked: &Asked, out: &Path) -> usize {
    let mut args = vec![
        "report".to_owned(),
        "--out".to_owned(),
        out.display().to_string(),
    ];
    args.extend(asked.args());
    let o = outreach(database_url, &args);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains(&out.display().to_string()), "{stdout}");
    let html = std::fs::read_to_string(out).unwrap();
    check(&html, sql, asked).await
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

fn demo(dir: &Path, files: &[PathBuf], env: &[(&str, &str)]) -> (PathBuf, PathBuf, String) {
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
    assert!(
        stdout.contains(&html.display().to_string()),
        "the demo points at its report:\n{stdout}"
    );
    (database, html, stdout)
}

fn scratch(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_the_demo_report_and_filtered_reports_print_the_sql_sums() {
    let dir = scratch("outreach-report");
    let (database, html, _) = demo(&dir, &[], &[]);
    let url = format!("sqlite://{}", database.display());
    let sql = Sql::Sqlite(sqlite_reader(&database).await);
    let checked = check(
        &std::fs::read_to_string(&html).unwrap(),
        &sql,
        &Asked::default(),
    )
    .await;
    assert!(checked > 500, "the demo's report prints {checked} figures");
    for (i, asked) in filters().iter().enumerate() {
        let n = report_and_check(&url, &sql, asked, &dir.join(format!("r{i}.html"))).await;
        assert!(n > 0, "{i}: no figure printed");
    }
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

/// A dispatch and an activity whose program and region names are hostile.
const HOSTILE_NAME: &str = r#"<script>alert("x")</script> & 'quoted' "double" 健康中国行 "#;

fn hostile_events(dir: &Path) -> (PathBuf, PathBuf, String) {
    let name = format!("{HOSTILE_NAME}{}", "very long name ".repeat(200));
    let dispatch = serde_json::json!({
        "specversion": "1.0", "id": "h-1", "source": "urn:outreach:institution:hostile",
        "type": "org.outreach.mission.dispatched.v1", "time": "2023-05-01T08:00:00Z",
        "data": {"mission_id": "h-m", "program_id": "hostile", "program_name": name,
                 "host_facility_id": "h-f", "region_code": "620999", "team_size": 3,
                 "start_date": "2023-05-01"}
    });
    let activity = serde_json::json!({
        "specversion": "1.0", "id": "h-2", "source": "urn:outreach:institution:hostile",
        "type": "org.outreach.activity.recorded.v1", "time": "2023-05-02T08:00:00Z",
        "data": {"record_id": "h-r", "program_id": "hostile", "mission_id": "h-m",
                 "facility_id": "h-f", "region_code": "620999", "occurred_on": "2023-05-02",
                 "metric": "outpatient_visits", "value": 42}
    });
    let events = dir.join("hostile.jsonl");
    std::fs::write(&events, format!("{dispatch}\n{activity}\n")).unwrap();
    let regions = dir.join("regions.csv");
    let region_name = r#"<img src=x onerror=alert(1)> "金塔" 'county'"#;
    std::fs::write(
        &regions,
        format!(
            "region_code,name,level,parent_code\n620999,\"{}\",county,620900\n",
            region_name.replace('"', "\"\"")
        ),
    )
    .unwrap();
    (events, regions, name)
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_names_are_text_never_markup() {
    let dir = scratch("outreach-report-hostile");
    let (events, regions, name) = hostile_events(&dir);
    let regions = regions.display().to_string();
    let (_, html, _) = demo(
        &dir,
        &[events],
        &[("OUTREACH__REGIONS__EXTRA_FILE", &regions)],
    );
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(!text.contains("<script"), "a script tag reached the page");
    assert!(!text.contains("<img"), "an img tag reached the page");
    let doc = Html::parse_document(&text);
    let section = doc
        .select(&select("section[data-program=\"hostile\"]"))
        .next()
        .expect("the hostile program has its section");
    let title: String = section
        .select(&select("h2"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert_eq!(title, name, "the name reads back exactly, as text");
    let regions: Vec<String> = section
        .select(&select("table.regions td.name"))
        .map(|e| e.text().collect())
        .collect();
    assert!(
        regions
            .iter()
            .any(|r| r.starts_with(r#"<img src=x onerror=alert(1)> "金塔" 'county'"#)),
        "{regions:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Debian's Chromium (scripts/test installs it); `CHROMIUM` names another.
fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/chromium".into());
    assert!(
        path.exists(),
        "{} not found: run the tests with scripts/test (it installs Debian's chromium), or set CHROMIUM",
        path.display()
    );
    path
}

fn headless(profile: &Path) -> Command {
    let mut c = Command::new(chromium());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_browser_renders_the_demo_report() {
    let dir = scratch("outreach-report-browser");
    let (database, html, _) = demo(&dir, &[], &[]);
    let url = format!("file://{}", html.display());

    let dom = headless(&dir.join("profile-1"))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    // The headline figures, as SQL sums them.
    let pool = sqlite_reader(&database).await;
    let totals: Vec<(String, String, f64)> = sqlx::query_as(
        "SELECT program_id, metric, sum(value) FROM daily_metrics
         WHERE metric IN ('outpatient_visits', 'surgeries', 'missions_dispatched')
         GROUP BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(!totals.is_empty());
    for (program, metric, total) in totals {
        let span = format!(
            "data-program=\"{program}\" data-metric=\"{metric}\">{}</span>",
            group(total as i64)
        );
        assert!(dom.contains(&span), "the rendered page shows {span}");
    }
    assert!(
        dom.contains("Outcome indicators") && dom.contains("<svg"),
        "sections and charts rendered"
    );

    let png = dir.join("report.png");
    let shot = headless(&dir.join("profile-2"))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=412,1600")
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (412, 1600));
    let pixels = &buf[..info.buffer_size()];
    let step = info.line_size / info.width as usize;
    let distinct: std::collections::HashSet<&[u8]> = pixels.chunks(step).collect();
    let ink = pixels
        .chunks(step)
        .filter(|p| p[..3] != [255, 255, 255])
        .count();
    assert!(
        distinct.len() > 20,
        "the screenshot has {} colours",
        distinct.len()
    );
    assert!(
        ink > pixels.len() / step / 50,
        "the screenshot is nearly blank ({ink} non-white pixels)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn group(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
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
