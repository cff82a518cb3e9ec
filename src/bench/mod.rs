//! `outreach bench`: generates a realistic stream, publishes it, runs the
//! real pipeline (the release binary, as a child process) from an empty
//! database until caught up, verifies the tables against an independent
//! fold of what was generated, and reports throughput next to the raw read
//! rate of the same topics, the time per stage, peak memory, database size,
//! and (with `--rate`) freshness at a steady offered load.
//!
//! Here the options and the run; beside it the generator and its fold
//! (`generator.rs`), `--stages` (`stages.rs`), the modes with a broker
//! (`live.rs`), the pipeline's child processes (`child.rs`), the COPY
//! floor and the batch SQL alternative (`alternative.rs`), and the
//! analysts' queries (`readers.rs`).

mod alternative;
mod child;
pub mod generator;
mod live;
mod readers;
mod stages;

use anyhow::Context;
use serde_json::{Value, json};

use crate::settings::Settings;
use alternative::{floor, sql_alternative};
use generator::{generator, verify};
use live::{freshness, sustained, throughput};
use stages::stages;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Activity events to generate (missions come on top, about 1 %).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Partitions of each topic.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Percent of messages that are redeliveries of earlier ones.
    #[arg(long, default_value_t = 10.0)]
    pub duplicates: f64,
    /// Percent of events that are corrections (a new revision of an earlier record).
    #[arg(long, default_value_t = 5.0)]
    pub corrections: f64,
    /// Percent of messages that are invalid.
    #[arg(long, default_value_t = 0.1)]
    pub bad: f64,
    /// Programs to spread events over.
    #[arg(long, default_value_t = 7)]
    pub programs: usize,
    /// Counties (from the shipped region table) to spread events over.
    #[arg(long, default_value_t = 3_000)]
    pub counties: usize,
    /// Years of dates, ending today.
    #[arg(long, default_value_t = 10)]
    pub years: i32,
    /// Percent of events dated anywhere in those years (late reports and
    /// corrections of old records); the rest fall in the last `--recent-days`.
    /// 100 spreads every event uniformly: the worst case for the roll-ups.
    #[arg(long, default_value_t = 10.0)]
    pub late: f64,
    #[arg(long, default_value_t = 90)]
    pub recent_days: u64,
    /// `uniform` dates every event anywhere in `--years` (sets `--late 100`:
    /// the worst case for the roll-ups, and the workload of
    /// docs/performance.md's comparison with a batch SQL rebuild);
    /// `realistic` keeps `--late` as given.
    #[arg(long, value_enum, default_value_t = Dates::Realistic)]
    pub dates: Dates,
    /// Freshness mode: offer this many events per second for `--seconds` to
    /// a running pipeline, and report commit time minus message timestamp.
    #[arg(long)]
    pub rate: Option<u64>,
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Freshness mode: first publish this many events and apply them with
    /// `run --until-caught-up`, so that the offered load lands on a
    /// history (as in production) rather than on empty tables.
    #[arg(long, default_value_t = 0, requires = "rate")]
    pub history: u64,
    /// Freshness mode: time the analysts' queries on the views in a loop
    /// while the load runs (`readers_during`), then again after a fold
    /// with nothing pending (`readers_idle`). Postgres only.
    #[arg(long, requires = "rate")]
    pub readers: bool,
    /// Sustained mode: offer `--rate`, then a quarter more at each step,
    /// each for `--seconds` (over `--history`), until the pipeline falls
    /// behind (freshness p99 of a second or more, or more than a second of
    /// load unapplied when the step ends); reports the highest rate it kept up with.
    #[arg(long, requires = "rate", conflicts_with = "readers")]
    pub sustained: bool,
    /// Sustained mode: steps at most (from `--rate`, ×1.25 each: 9 steps
    /// reach about 6× it).
    #[arg(long, default_value_t = 9, requires = "sustained")]
    pub steps: usize,
    /// Processes sharing the consumer group.
    #[arg(long, default_value_t = 1)]
    pub processes: usize,
    /// After the pipeline, do the same job the batch SQL way on the same
    /// topics and database (every event COPYed raw, then one GROUP BY per
    /// roll-up, then keys and indexes), check both give the same tables,
    /// and print the ratio. Postgres only.
    #[arg(long, conflicts_with_all = ["rate", "stages"])]
    pub sql_alternative: bool,
    /// Stage micro-benchmark, no broker: decode, transform and database
    /// write measured apart, in-process, batch by batch (`ingest.batch_max_messages`).
    #[arg(long, conflicts_with = "rate")]
    pub stages: bool,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Keep the benchmark's database (dropped by default).
    #[arg(long)]
    pub keep: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dates {
    Realistic,
    Uniform,
}

pub async fn run(settings: &Settings, args: &BenchArgs) -> anyhow::Result<Value> {
    let mut args = args.clone();
    if args.dates == Dates::Uniform {
        args.late = 100.0;
    }
    let args = &args;
    let tag = format!(
        "bench{}_{}",
        chrono::Utc::now().format("%Y%m%d%H%M%S"),
        std::process::id()
    );
    if args.stages {
        return stages(settings, args, &tag).await;
    }
    let kafka = own_topics(&settings.kafka, &tag);
    let (publisher, db) = prepare(settings, args, &kafka, &tag).await?;
    let target = child::Target {
        db_url: db.url.clone(),
        config: settings.file.clone(),
    };

    let mut generator = generator(settings, args)?;

    let mut report = if let Some(rate) = args.rate {
        if args.sustained {
            sustained(args, &kafka, &target, &mut generator, &publisher, rate, &db).await?
        } else {
            freshness(args, &kafka, &target, &mut generator, &publisher, rate, &db).await?
        }
    } else {
        throughput(args, &kafka, &target, &mut generator, &publisher).await?
    };
    let sink = sink::Sink::connect(&db).await?;
    verify(&sink, &generator).await?;
    let size = sink.database_bytes().await?;
    report["database_bytes"] = json!(size);
    report["verified"] = json!(true);
    if args.rate.is_none() {
        floor(args, &sink, &tag, &mut report).await?;
    }
    if args.sql_alternative {
        sql_alternative(args, settings, &kafka, &sink, generator.sent, &mut report).await?;
    }
    if let Some(server) = sink.server_settings().await? {
        report["postgres_settings"] = server
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    sink.close().await;
    report["generated"] = generated(args, &generator);
    if !args.keep {
        sink::inspect::drop_database(&settings.database, &tag).await?;
    }
    Ok(report)
}

/// The run's topics and database, created empty, and a publisher that
/// reached the broker.
async fn prepare(
    settings: &Settings,
    args: &BenchArgs,
    kafka: &ingest::KafkaSettings,
    tag: &str,
) -> anyhow::Result<(ingest::Publisher, sink::Settings)> {
    // An unreachable broker: one error within kafka.delivery_timeout_ms.
    let publisher = ingest::Publisher::new(kafka)?;
    publisher.connect().await?;
    ingest::tools::create_topics(kafka, args.partitions)
        .await
        .context("creating the benchmark topics")?;
    let db = sink::inspect::create_database(&settings.database, tag)
        .await
        .context("creating the benchmark database")?;
    progress(args, format!("topics {tag}.*, database {tag}"));
    Ok((publisher, db))
}

/// The settings' Kafka, but with topics and a group of the run's own, so
/// that runs never read each other's messages (or production's).
fn own_topics(kafka: &ingest::KafkaSettings, tag: &str) -> ingest::KafkaSettings {
    let mut kafka = kafka.clone();
    kafka.missions_topic = format!("{tag}.missions");
    kafka.activities_topic = format!("{tag}.activities");
    kafka.deadletter_topic = format!("{tag}.deadletter");
    kafka.group_id = format!("{tag}.pipeline");
    kafka
}

/// What was generated, as the report shows it.
fn generated(args: &BenchArgs, generator: &generator::Generator) -> Value {
    json!({
        "messages": generator.sent, "activity_events": args.events, "missions": generator.missions,
        "duplicates": generator.duplicates, "corrections": generator.corrections, "bad": generator.bad,
        "partitions": args.partitions, "counties": generator.counties.len(), "programs": args.programs,
        "years": args.years, "late_percent": args.late, "recent_days": args.recent_days,
    })
}

/// A line on stderr about the run's progress (none with `--json`).
fn progress(args: &BenchArgs, msg: String) {
    if !args.json {
        eprintln!("bench: {msg}");
    }
}
