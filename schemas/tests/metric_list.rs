//! The metric names the migrations spell out, against the catalogue of
//! `schemas/src/metric.rs`.
//!
//! The tables store `metric` as free text (no CHECK constraint, no column
//! per metric), so a new metric is stored and rolled up without a
//! migration. The summary views (`program_summary`, `region_summary`) are
//! the exception: they pick their columns by name, in Postgres and in
//! SQLite alike, and a metric they do not name is silently absent. These
//! tests make that a decision rather than an oversight: every metric of the
//! catalogue is a column of all four views (two views, two databases) or is
//! listed in [`LEFT_OUT_OF_SUMMARIES`], and every name a migration compares
//! `metric` with is a metric of the catalogue.

use std::collections::BTreeSet;

use schemas::Metric;

const MIGRATIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sink/migrations");

/// The metrics the summary views leave out on purpose: they show missions,
/// expert-days and the outcome indicators (README, "Views for reading"),
/// and these are read from `regional_metrics` and `program_metrics`.
const LEFT_OUT_OF_SUMMARIES: [&str; 8] = [
    "complex_case_consultations",
    "teaching_rounds",
    "lectures",
    "papers_published",
    "research_projects_funded",
    "departments_established",
    "telemedicine_sessions",
    "medicines_donated_value",
];

const BACKENDS: [&str; 2] = ["postgres", "sqlite"];
const SUMMARIES: [&str; 2] = ["program_summary", "region_summary"];

/// One backend's migration files, in the order they apply: (file name, SQL
/// with `--` comments removed).
fn migrations(backend: &str) -> Vec<(String, String)> {
    let dir = format!("{MIGRATIONS}/{backend}");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no migrations in {dir}");
    files
        .into_iter()
        .map(|p| {
            let sql = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, without_comments(&sql))
        })
        .collect()
}

fn without_comments(sql: &str) -> String {
    sql.lines()
        .map(|l| l.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The latest `CREATE [OR REPLACE] VIEW` of `view` (schema-qualified or
/// not), up to its closing `;`, with the file it is in.
fn latest_view(backend: &str, view: &str) -> (String, String) {
    let mut latest = None;
    for (file, sql) in migrations(backend) {
        let mut rest = sql.as_str();
        while let Some(i) = rest.find("CREATE ") {
            let stmt = &rest[i..];
            let end = stmt.find(';').unwrap_or(stmt.len());
            let words: Vec<&str> = stmt[..end].split_whitespace().take(5).collect();
            let name = match words.as_slice() {
                ["CREATE", "VIEW", name, ..] | ["CREATE", "OR", "REPLACE", "VIEW", name] => *name,
                _ => "",
            };
            if name.rsplit('.').next() == Some(view) {
                latest = Some((file.clone(), stmt[..end].to_owned()));
            }
            rest = &stmt[end..];
        }
    }
    latest.unwrap_or_else(|| panic!("sink/migrations/{backend}: no CREATE VIEW {view}"))
}

/// Every name compared with a `metric` column: `metric = 'name'`, with or
/// without a table prefix and spaces.
fn metric_names(sql: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = sql;
    while let Some(i) = rest.find("metric") {
        let word = |c: char| c.is_alphanumeric() || c == '_';
        let after = rest[i + "metric".len()..].trim_start();
        let ends_word = !rest[..i].ends_with(word) && !after.starts_with(word);
        if let Some(value) = after.strip_prefix('=').map(str::trim_start)
            && ends_word
            && let Some(quoted) = value.strip_prefix('\'')
            && let Some(end) = quoted.find('\'')
        {
            names.insert(quoted[..end].to_owned());
        }
        rest = &rest[i + "metric".len()..];
    }
    names
}

#[test]
fn every_metric_is_a_summary_column_or_left_out_on_purpose() {
    let views: Vec<(String, BTreeSet<String>)> = BACKENDS
        .into_iter()
        .flat_map(|backend| SUMMARIES.map(|view| (backend, view)))
        .map(|(backend, view)| {
            let (file, sql) = latest_view(backend, view);
            let at = format!("{view} (sink/migrations/{backend}/{file})");
            (at, metric_names(&sql))
        })
        .collect();
    let mut problems = Vec::new();
    for m in Metric::ALL.map(Metric::as_str) {
        let (with, without): (Vec<_>, Vec<_>) =
            views.iter().partition(|(_, names)| names.contains(m));
        let missing: Vec<&str> = without.iter().map(|(at, _)| at.as_str()).collect();
        let left_out = LEFT_OUT_OF_SUMMARIES.contains(&m);
        if !left_out && !missing.is_empty() {
            problems.push(format!(
                "`{m}` is not a column of {}: either add \
                 `sum(m.value) FILTER (WHERE m.metric = '{m}') AS {m}` to program_summary and \
                 region_summary in a new migration under sink/migrations/postgres and one under \
                 sink/migrations/sqlite, or add `{m}` to LEFT_OUT_OF_SUMMARIES in \
                 schemas/tests/metric_list.rs",
                missing.join(", ")
            ));
        }
        if left_out && !with.is_empty() {
            problems.push(format!(
                "`{m}` is listed in LEFT_OUT_OF_SUMMARIES (schemas/tests/metric_list.rs) but \
                 is a column of {}: remove it from that list",
                with.iter()
                    .map(|(at, _)| at.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    for m in LEFT_OUT_OF_SUMMARIES {
        if Metric::parse(m).is_none() {
            problems.push(format!(
                "LEFT_OUT_OF_SUMMARIES names `{m}`, which is not in the catalogue \
                 (schemas/src/metric.rs): remove it from schemas/tests/metric_list.rs"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn the_migrations_name_only_catalogue_metrics() {
    let mut problems = Vec::new();
    for backend in BACKENDS {
        for (file, sql) in migrations(backend) {
            for name in metric_names(&sql) {
                if Metric::parse(&name).is_none() {
                    problems.push(format!(
                        "sink/migrations/{backend}/{file} compares `metric` with `{name}`, \
                         which is not in the catalogue (schemas/src/metric.rs): a typo, or a \
                         metric renamed or removed without a migration that follows it"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn the_reader_finds_the_views_and_their_metrics() {
    // Guards the guard: a reader that found nothing would pass the tests
    // above vacuously for every metric left out.
    let (_, sql) = latest_view("postgres", "program_summary");
    assert!(sql.contains("surgeries_per_completed_mission"));
    let names = metric_names(&sql);
    assert!(names.contains("expert_days") && names.contains("surgeries"));
    assert_eq!(
        metric_names(
            "WHERE metric = 'a' AND m.metric='b' AND metrics = 'c' AND metric_x = 'd' AND xmetric = 'e'"
        ),
        BTreeSet::from(["a".to_owned(), "b".to_owned()])
    );
}
