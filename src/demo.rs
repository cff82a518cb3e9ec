//! `outreach demo`: the main job with no services to run. A broker inside
//! this process (librdkafka's mock cluster, see [`ingest::EmbeddedBroker`]),
//! the bundled sample year (`examples/sample-events.jsonl`: seven programs,
//! with redelivered duplicates, corrections, a withdrawal and bad lines),
//! the real pipeline until it has caught up, and a SQLite file as the
//! database; then the roll-ups, printed as tables, and the HTML report
//! (`outreach report`) beside the database file, in English and in
//! Chinese.

use std::path::{Path, PathBuf};

use anyhow::Context;
use comfy_table::{CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use ingest::{EmbeddedBroker, Mode};

use crate::settings::Settings;

/// The bundled sample, compiled in so that the demo needs no checkout.
const SAMPLE: &str = include_str!("../examples/sample-events.jsonl");

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The SQLite file to write the analyst tables to. An earlier demo's
    /// (any SQLite database) is replaced; any other existing file stops the
    /// demo.
    #[arg(long, default_value = "outreach-demo.db", value_name = "FILE")]
    pub database: PathBuf,
    /// Files of events to publish instead of the bundled sample (JSON Lines
    /// or CSV tallies, as `outreach publish` takes). Invalid lines are sent
    /// too, to show the quarantine.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// What the demo left behind, for tests.
pub struct Demo {
    pub database: PathBuf,
    pub report: crate::pipeline::Report,
    /// The HTML report written beside the database, in English.
    pub html: PathBuf,
    /// The same report in Simplified Chinese (`--lang zh-CN`).
    pub html_zh: PathBuf,
}

pub async fn run(settings: &Settings, args: &DemoArgs) -> anyhow::Result<Demo> {
    let database = absolute(&args.database)?;
    remove_database(&database)?;
    let broker =
        EmbeddedBroker::start(&settings.kafka, 3).context("starting the embedded broker")?;
    let settings = demo_settings(settings, &broker, &database);
    eprintln!(
        "outreach demo: an embedded broker at {}, the database {}",
        settings.kafka.brokers,
        database.display()
    );
    publish(&settings, args).await?;

    eprintln!("running the pipeline until it has caught up");
    let report = crate::pipeline::run(
        &settings,
        Mode::UntilCaughtUp,
        crate::cli::shutdown_signal(),
    )
    .await?;
    eprintln!(
        "{} messages: {} valid ({} of them redeliveries or stale revisions that changed nothing), {} quarantined; {} batch(es)",
        report.ingest.messages,
        report.accepted,
        report.unchanged,
        report.quarantined,
        report.batches
    );
    let sink = crate::pipeline::connect(&settings.database).await?;
    print_overview(&sink.overview().await?);
    let (html, html_zh) = report_paths(&database);
    let written = ::report::write_all(
        &sink,
        &::report::Filter::default(),
        &[
            (::report::Lang::En, html.as_path()),
            (::report::Lang::ZhCn, html_zh.as_path()),
        ],
        chrono::Utc::now(),
    )
    .await;
    sink.close().await;
    written?;
    print_where(args, &database, &html, &html_zh);
    drop(broker);
    Ok(Demo {
        database,
        report,
        html,
        html_zh,
    })
}

/// The user's settings, but for what the demo must own: its broker (no
/// TLS or SASL there), its file (migrated here), no HTTP port.
fn demo_settings(settings: &Settings, broker: &EmbeddedBroker, database: &Path) -> Settings {
    let mut settings = settings.clone();
    settings.kafka.brokers = broker.bootstrap_servers();
    settings.kafka.clear_security();
    settings.database.url = sqlite_url(database);
    settings.database.migrate = true;
    settings.http.address.clear();
    settings
}

/// Publishes the files named, or the bundled sample, invalid lines too.
async fn publish(settings: &Settings, args: &DemoArgs) -> anyhow::Result<()> {
    // Made exclusively under a random name: nothing planted in /tmp can
    // stand in for it. Removed when it goes out of scope.
    let sample_dir = tempfile::Builder::new()
        .prefix("outreach-demo-")
        .tempdir()
        .context("creating a temporary directory")?;
    let files = if args.files.is_empty() {
        let path = sample_dir.path().join("sample-events.jsonl");
        std::fs::write(&path, SAMPLE).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("publishing the bundled sample year (3 of its lines are bad on purpose)");
        vec![path]
    } else {
        args.files.clone()
    };
    let published = crate::files::publish(settings, &files, true).await;
    drop(sample_dir);
    published?;
    Ok(())
}

/// The English and Chinese reports' files: beside the database, never over
/// it (`--database x.html`).
fn report_paths(database: &Path) -> (PathBuf, PathBuf) {
    if database.extension().is_some_and(|e| e == "html") {
        (
            database.with_extension("report.html"),
            database.with_extension("report.zh-CN.html"),
        )
    } else {
        (
            database.with_extension("html"),
            database.with_extension("zh-CN.html"),
        )
    }
}

/// Where the tables and the reports are, and how to go on from there.
fn print_where(args: &DemoArgs, database: &Path, html: &Path, html_zh: &Path) {
    let shown = args.database.display();
    println!(
        "\nThe analyst tables are in {} (SQLite). Query them, e.g.:\n  \
         sqlite3 {shown} \"SELECT * FROM program_summary WHERE period_type = 'month'\"\n\
         Tables: regional_metrics, program_metrics, daily_metrics, missions, regions, programs, quarantine;\n\
         views: program_summary, region_summary, surgery_roles, reporting_timeliness, reporting_lags (docs: README.md, \"What analysts get\").\n\
         Keep the pipeline on it with OUTREACH__DATABASE__URL=sqlite://{shown} outreach run",
        database.display()
    );
    println!(
        "\nThe report (figures, charts, indicators, reporting timeliness; `outreach report --help` for more):\n  {}\n  {} (简体中文, --lang zh-CN)",
        html.display(),
        html_zh.display()
    );
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    Ok(if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()?.join(path)
    })
}

/// `sqlite://` and the path, percent-encoded where sqlx would read the
/// characters as URL syntax.
fn sqlite_url(path: &Path) -> String {
    let path = path.display().to_string();
    let mut url = String::from("sqlite://");
    for c in path.chars() {
        match c {
            '%' => url.push_str("%25"),
            '?' => url.push_str("%3F"),
            '#' => url.push_str("%23"),
            c => url.push(c),
        }
    }
    url
}

/// A demo starts from an empty database: the file and SQLite's journal
/// files. Only a SQLite database is replaced: any other file at that path
/// stops the demo.
fn remove_database(path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        let mut header = [0u8; 16];
        let is_sqlite = std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
            .is_ok()
            && &header == b"SQLite format 3\0";
        if !is_sqlite {
            anyhow::bail!(
                "{} exists and is not a SQLite database; the demo replaces its database file: choose another with --database",
                path.display()
            );
        }
        eprintln!("replacing {}", path.display());
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("removing {}", Path::new(&p).display()));
            }
        }
    }
    Ok(())
}

/// Each section of the overview as a table.
fn print_overview(sections: &[sink::Section]) {
    for s in sections {
        let mut table = Table::new();
        table
            .load_preset(UTF8_FULL_CONDENSED)
            .set_header(s.header.iter().copied());
        for row in &s.rows {
            table.add_row(row.iter().map(String::as_str));
        }
        for i in s.numeric.clone() {
            if let Some(column) = table.column_mut(i) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        println!("\n{}\n{table}", s.title);
    }
}
