//! The command line: `demo`, `run`, `migrate`, `rebuild`, `report`,
//! `check-config`, `validate`, `publish`, `bench`, `grant-analyst`, `revoke-analyst`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ingest::Mode;

use crate::settings::Settings;

/// Kafka → Postgres pipeline for hospital outreach statistics: validates
/// mission and activity events, rolls them up by region, program and period,
/// and keeps the analyst tables exact whatever is redelivered or corrected.
#[derive(Debug, Parser)]
#[command(name = "outreach", version, about, long_about = None)]
pub struct Cli {
    /// A TOML settings file, layered over the built-in defaults; environment
    /// variables (OUTREACH__SECTION__KEY) override both.
    #[arg(
        long,
        short,
        global = true,
        env = "OUTREACH_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Try it with nothing to install: a broker inside this process, the
    /// bundled sample year of events (with duplicates, corrections and bad
    /// lines), the full pipeline, and a SQLite file as the database; prints
    /// the program and regional roll-ups, then where the file is.
    Demo(crate::demo::DemoArgs),
    /// Consume the topics and keep the analyst tables up to date (applies
    /// migrations first). Stops cleanly on SIGINT/SIGTERM.
    Run {
        /// Exit 0 once the topics are in the database up to the end offsets
        /// seen at assignment: this member's partitions drained (then quiet
        /// for ingest.drain_idle_ms), every other partition committed by
        /// whichever member holds it. For backfills and tests.
        #[arg(long)]
        until_caught_up: bool,
        /// When it stops, write the run's figures (messages, batches, time
        /// per stage, freshness, compactions) to FILE as JSON.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
    /// Create or upgrade the `outreach` schema (and the writer and analyst
    /// roles), then exit.
    Migrate,
    /// Recompute every analyst table from the stored facts (after a region
    /// table change, a fix, or a doubt), in one transaction: readers keep
    /// the old tables until it commits; running pipelines wait meanwhile.
    Rebuild,
    /// Validate the settings and print them as a settings file (TOML),
    /// each value with where it came from, secrets masked: `outreach
    /// check-config > my.toml` gives a file for --config.
    CheckConfig,
    /// Check files of events (JSON Lines, one CloudEvent per line; or `.csv`
    /// files of activity tallies, see the README) with the pipeline's
    /// validator; prints each bad line with its number and reason. Exits 1
    /// if any line is invalid.
    Validate {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Write the programs' figures, monthly charts, regions, outcome
    /// indicators, reporting timeliness and a data-quality panel as one
    /// self-contained HTML file, in English or Chinese (--lang zh-CN; no
    /// network needed to view it; prints to PDF from a browser). Reads the
    /// analyst tables of database.url, Postgres or SQLite.
    Report(crate::report::ReportArgs),
    /// Measure the pipeline: generate events, publish them, run the release
    /// pipeline from an empty database until caught up, verify the tables,
    /// and report events/s, the raw read rate, time per stage, peak memory
    /// and database size (with --rate: freshness at a steady load). Needs a
    /// broker and a database.url: Postgres whose user may create databases
    /// (bench makes one of its own), or SQLite (bench writes a file beside
    /// the one named).
    Bench(crate::bench::BenchArgs),
    /// Validate files of events and produce the valid ones to the contract's
    /// topics (keyed by mission_id / record_id). Invalid lines are reported,
    /// never sent; exits 1 if there were any.
    Publish {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Send invalid lines too, as they are, to the activities topic: for
        /// trying out a pipeline's quarantine, never for real data.
        #[arg(long)]
        include_invalid: bool,
    },
    /// Let a Postgres login read the analyst tables: makes it a member of
    /// the analyst role (database.analyst_role) and adds the institutions
    /// whose rows of daily_metrics and missions it may see. Logins see no
    /// institution's rows until granted; the shared aggregates
    /// (regional_metrics, program_metrics, their views) are every
    /// analyst's. Applies the migrations first; run as the schema owner.
    #[command(group = clap::ArgGroup::new("scope").required(true).args(["institutions", "all"]))]
    GrantAnalyst {
        /// The login role (create it first: CREATE ROLE name LOGIN PASSWORD '…').
        login: String,
        /// An institution whose rows it may see; repeat for more.
        #[arg(
            long = "institution",
            value_name = "ID",
            value_parser = crate::analysts::parse_institution
        )]
        institutions: Vec<schemas::Id>,
        /// Every institution's rows, and the quarantine.
        #[arg(long)]
        all: bool,
    },
    /// Take institutions from an analyst login (--institution), or, with
    /// none named, every one and its membership of the analyst role.
    RevokeAnalyst {
        login: String,
        /// An institution to take away; repeat for more.
        #[arg(long = "institution", value_name = "ID", value_parser = crate::analysts::parse_institution)]
        institutions: Vec<schemas::Id>,
    },
}

pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    let (settings, origins) = match load_settings(&cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init(&settings.log);
    for warning in settings.secret_warnings() {
        tracing::warn!("{warning}");
    }
    match execute(cli.command, &settings, &origins).await {
        Ok(code) => code,
        Err(e) => {
            // Once for people; as a log record too only when the log is for
            // machines (in the pretty format both would show the same line
            // twice).
            if settings.log.format == crate::settings::LogFormat::Json {
                tracing::error!(error = format!("{e:#}"), "outreach failed");
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The layered settings and where each value came from.
fn load_settings(cli: &Cli) -> anyhow::Result<(Settings, crate::settings::Origins)> {
    let (mut settings, origins) = Settings::load_with_origins(cli.config.as_deref())?;
    // The demo prints tables; its per-batch log lines would bury them.
    if matches!(cli.command, Command::Demo(_))
        && std::env::var_os("RUST_LOG").is_none()
        && std::env::var_os("OUTREACH__LOG__LEVEL").is_none()
    {
        settings.log.level = "warn".into();
    }
    Ok((settings, origins))
}

/// Runs one command. `validate` and `publish` exit 1 when lines were bad,
/// though nothing failed.
// Long on purpose: one flat match, so every command's entry point is found here.
async fn execute(
    command: Command,
    settings: &Settings,
    origins: &crate::settings::Origins,
) -> anyhow::Result<ExitCode> {
    match command {
        Command::CheckConfig => {
            print!("{}", crate::check_config::render(settings, origins)?);
            eprintln!("settings are valid");
        }
        Command::Demo(args) => {
            crate::demo::run(settings, &args).await?;
        }
        Command::Migrate => migrate(settings).await?,
        Command::Report(args) => {
            crate::report::run(settings, &args).await?;
        }
        Command::Rebuild => {
            let r = crate::rebuild::rebuild(settings).await?;
            println!(
                "rebuilt from {} activity facts and {} missions, read in {} chunks: {} roll-up rows written",
                r.activities, r.missions, r.chunks, r.rows
            );
        }
        Command::Bench(args) => bench(settings, &args).await?,
        Command::Validate { files } => {
            if crate::files::validate(settings, &files)?.bad > 0 {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Publish {
            files,
            include_invalid,
        } => {
            let tally = crate::files::publish(settings, &files, include_invalid).await?;
            if tally.bad > 0 && !include_invalid {
                return Ok(ExitCode::from(1));
            }
        }
        Command::GrantAnalyst {
            login,
            institutions,
            all,
        } => {
            let scope = if all {
                sink::roles::Scope::All
            } else {
                sink::roles::Scope::Institutions(institutions)
            };
            crate::analysts::grant(settings, &login, &scope).await?
        }
        Command::RevokeAnalyst {
            login,
            institutions,
        } => crate::analysts::revoke(settings, &login, &institutions).await?,
        Command::Run {
            until_caught_up,
            report,
        } => run(settings, until_caught_up, report.as_deref()).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `bench`: the report as one line of JSON (--json) or pretty-printed.
async fn bench(settings: &Settings, args: &crate::bench::BenchArgs) -> anyhow::Result<()> {
    let report = crate::bench::run(settings, args).await?;
    if args.json {
        println!("{report}");
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    }
    Ok(())
}

/// `run`: follows the topics until a signal, or stops once caught up.
async fn run(
    settings: &Settings,
    until_caught_up: bool,
    report: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let mode = if until_caught_up {
        Mode::UntilCaughtUp
    } else {
        Mode::Follow
    };
    let done = crate::pipeline::run(settings, mode, shutdown_signal()).await?;
    match report {
        Some(path) => write_figures(path, &done),
        None => Ok(()),
    }
}

/// `run --report FILE`: the run's figures, as JSON.
fn write_figures(path: &std::path::Path, done: &crate::pipeline::Report) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(&done.figures())?;
    std::fs::write(path, json)
        .map_err(|e| anyhow::anyhow!("writing --report {}: {e}", path.display()))
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let regions = settings.regions()?;
    let sink = crate::pipeline::connect(&settings.database).await?;
    sink.migrate().await?;
    let n = sink.sync_regions(&regions).await?;
    tracing::info!(regions_written = n, "schema outreach is up to date");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
