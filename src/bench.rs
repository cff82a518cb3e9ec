//! `outreach bench`: generates a realistic stream, publishes it, runs the
//! real pipeline (the release binary, as a child process) from an empty
//! database until caught up, verifies the tables against an independent
//! fold of what was generated, and reports throughput next to the raw read
//! rate of the same topics, the time per stage, peak memory, database size,
//! and (with `--rate`) freshness at a steady offered load.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::settings::Settings;

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
    let mut kafka = settings.kafka.clone();
    kafka.missions_topic = format!("{tag}.missions");
    kafka.activities_topic = format!("{tag}.activities");
    kafka.deadletter_topic = format!("{tag}.deadletter");
    kafka.group_id = format!("{tag}.pipeline");
    // An unreachable broker: one error within kafka.delivery_timeout_ms.
    let publisher = ingest::Publisher::new(&kafka)?;
    publisher.connect().await?;
    ingest::tools::create_topics(&kafka, args.partitions)
        .await
        .context("creating the benchmark topics")?;
    let db = sink::inspect::create_database(&settings.database, &tag)
        .await
        .context("creating the benchmark database")?;
    let db_url = db.url.clone();
    progress(args, format!("topics {tag}.*, database {tag}"));

    let mut generator = generator(settings, args)?;

    let report = if let Some(rate) = args.rate {
        freshness(args, &kafka, &db_url, &mut generator, &publisher, rate).await?
    } else {
        throughput(args, &kafka, &db_url, &mut generator, &publisher).await?
    };
    let mut report = report;
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
    report["generated"] = json!({
        "messages": generator.sent, "activity_events": args.events, "missions": generator.missions,
        "duplicates": generator.duplicates, "corrections": generator.corrections, "bad": generator.bad,
        "partitions": args.partitions, "counties": generator.counties.len(), "programs": args.programs,
        "years": args.years, "late_percent": args.late, "recent_days": args.recent_days,
    });
    if !args.keep {
        sink::inspect::drop_database(&settings.database, &tag).await?;
    }
    Ok(report)
}

/// The floor: Postgres COPYing the rows the run left into empty tables with
/// the same keys and indexes, and the pipeline's time as a multiple of it.
async fn floor(
    args: &BenchArgs,
    sink: &sink::Sink,
    tag: &str,
    report: &mut Value,
) -> anyhow::Result<()> {
    let scratch = std::env::temp_dir().join(format!("{tag}.copy"));
    let Some(floor) = sink.copy_floor(&scratch).await? else {
        return Ok(());
    };
    let total = floor.total().as_secs_f64();
    let settled = report["settled_seconds"].as_f64().unwrap_or(0.0);
    let visible = report["pipeline_seconds"].as_f64().unwrap_or(0.0);
    progress(
        args,
        format!(
            "COPY floor: {} rows in {total:.2} s; pipeline {:.2}x the floor to visible, {:.2}x to compacted",
            floor.tables.iter().map(|t| t.1).sum::<u64>(),
            visible / total,
            settled / total
        ),
    );
    report["copy_floor"] = json!({
        "seconds": total,
        "tables": floor.tables.iter().map(|(t, rows, d)| json!({"table": t, "rows": rows, "seconds": d.as_secs_f64()})).collect::<Vec<_>>(),
        "pipeline_visible_to_floor": (visible / total * 100.0).round() / 100.0,
        "pipeline_compacted_to_floor": (settled / total * 100.0).round() / 100.0,
    });
    Ok(())
}

/// The batch SQL alternative on the same topics: read and validate every
/// message with the pipeline's decoder, COPY the accepted events raw in
/// chunks of `ingest.batch_max_messages`, then rebuild the roll-ups in SQL.
async fn sql_alternative(
    args: &BenchArgs,
    settings: &Settings,
    kafka: &ingest::KafkaSettings,
    sink: &sink::Sink,
    expected: u64,
    report: &mut Value,
) -> anyhow::Result<()> {
    let mut alt = sink.alternative().await?;
    let decoder = schemas::Decoder::new(
        std::sync::Arc::new(settings.regions()?),
        settings.ingest.max_message_bytes,
    );
    let headers = [schemas::Header {
        key: "content-type",
        value: Some(b"application/cloudevents+json"),
    }];
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(20_000);
    let reader = {
        let kafka = kafka.clone();
        let group = format!("{}.alternative", kafka.group_id);
        tokio::spawn(async move {
            ingest::tools::read_into(
                &kafka,
                &group,
                expected,
                Duration::from_secs(3600),
                Some(tx),
            )
            .await
        })
    };
    let chunk = settings.ingest.batch_max_messages.max(1);
    let mut events = Vec::with_capacity(chunk);
    let mut started = None;
    let mut received = 0u64;
    loop {
        let value = rx.recv().await;
        if let Some(v) = &value {
            started.get_or_insert_with(Instant::now);
            received += 1;
            if let Ok(e) = decoder.decode(&schemas::Message {
                headers: &headers,
                value: Some(v),
            }) {
                events.push(e);
            }
        }
        if events.len() >= chunk || (value.is_none() && !events.is_empty()) {
            alt.load(&events).await?;
            events.clear();
        }
        if value.is_none() {
            break;
        }
    }
    reader.await??;
    if received != expected {
        bail!("the SQL alternative read {received} of {expected} messages");
    }
    let started = started.unwrap_or_else(Instant::now);
    let loaded = started.elapsed();
    let rebuild = alt.rebuild().await?;
    let total = started.elapsed().as_secs_f64();
    let mismatches = alt.mismatches().await?;
    alt.drop().await?;
    if mismatches != 0 {
        bail!("the SQL alternative's tables differ from the pipeline's in {mismatches} cells");
    }
    let alt_rate = expected as f64 / total;
    let ours = report["events_per_second"].as_f64().unwrap_or(0.0);
    let ours_compacted = report["events_per_second_compacted"]
        .as_f64()
        .unwrap_or(0.0);
    progress(
        args,
        format!(
            "batch SQL alternative: {total:.2} s = {alt_rate:.0}/s (load {:.2} s, rebuild {:.2} s); \
             pipeline {:.2}x it to visible, {:.2}x to compacted",
            loaded.as_secs_f64(),
            rebuild.as_secs_f64(),
            ours / alt_rate,
            ours_compacted / alt_rate
        ),
    );
    report["sql_alternative"] = json!({
        "seconds": total,
        "events_per_second": alt_rate.round(),
        "load_seconds": loaded.as_secs_f64(),
        "rebuild_seconds": rebuild.as_secs_f64(),
        "same_tables_as_pipeline": true,
        "pipeline_visible_ratio": (ours / alt_rate * 100.0).round() / 100.0,
        "pipeline_compacted_ratio": (ours_compacted / alt_rate * 100.0).round() / 100.0,
    });
    Ok(())
}

/// Generator of the benchmark's events over the shipped (or configured) counties.
fn generator(settings: &Settings, args: &BenchArgs) -> anyhow::Result<Generator> {
    let regions = settings.regions()?;
    let mut counties: Vec<String> = regions
        .iter()
        .filter(|r| r.level == schemas::Level::County)
        .map(|r| r.code.clone())
        .collect();
    counties.sort();
    counties.truncate(args.counties.max(1));
    Ok(Generator::new(args, counties))
}

/// `--stages`: the same events through each stage apart, in this process,
/// so the bottleneck shows. Decode all, then per batch: load the ledger,
/// transform (plan + polars roll-up), write and commit.
async fn stages(settings: &Settings, args: &BenchArgs, tag: &str) -> anyhow::Result<Value> {
    let db = sink::inspect::create_database(&settings.database, tag)
        .await
        .context("creating the benchmark database")?;
    let mut generator = generator(settings, args)?;
    let mut messages = Vec::new();
    while generator.activities < args.events {
        messages.extend(generator.next_batch(10_000));
    }
    generator.sent = messages.len() as u64;
    progress(args, format!("generated {} messages", messages.len()));

    let regions = std::sync::Arc::new(settings.regions()?);
    let decoder = schemas::Decoder::new(regions.clone(), settings.ingest.max_message_bytes);
    let headers = [schemas::Header {
        key: "content-type",
        value: Some(b"application/cloudevents+json"),
    }];
    let t = Instant::now();
    let decoded: Vec<Result<schemas::Event, schemas::Rejection>> = messages
        .iter()
        .map(|(_, _, v)| {
            decoder.decode(&schemas::Message {
                headers: &headers,
                value: Some(v),
            })
        })
        .collect();
    let decode = t.elapsed();
    progress(args, format!("decoded in {:.2} s", decode.as_secs_f64()));

    let sink = sink::Sink::connect(&db).await?;
    sink.migrate().await?;
    sink.sync_regions(&regions).await?;
    let transform = transform::Transform::for_periods(&regions, sink.periods())?;
    let (mut load, mut plan_rollup, mut write) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let (mut rows, mut next) = (0usize, None);
    let size = settings.ingest.batch_max_messages.max(1);
    let mut decoded = decoded.into_iter().enumerate().peekable();
    while decoded.peek().is_some() {
        let batch = stage_batch(&mut decoded, &messages, size, &mut next);
        let done = crate::batch::apply(&sink, &transform, None, &batch).await?;
        let t = done.timings;
        load += t.begin + t.load;
        plan_rollup += t.transform;
        write += t.database - t.begin - t.load;
        rows += done.cells;
    }
    // The fold the deltas wait for (Postgres), measured apart: a running
    // pipeline does it beside the batches, on the database's other core.
    let t = Instant::now();
    let folded = sink.compact(sink::Share::Alone).await?.unwrap_or_default();
    let compaction = t.elapsed();
    let n = messages.len() as f64;
    let per_s = |d: Duration| (n / d.as_secs_f64()).round();
    let total = decode + load + plan_rollup + write;
    let share = |d: Duration| (d.as_secs_f64() / total.as_secs_f64() * 1000.0).round() / 10.0;
    progress(
        args,
        format!(
            "decode {:.0}/s, transform {:.0}/s, database {:.0} events/s ({:.0} aggregate rows/s)",
            per_s(decode),
            per_s(plan_rollup),
            per_s(load + write),
            rows as f64 / (load + write).as_secs_f64()
        ),
    );
    let mut report = json!({
        "mode": "stages",
        "messages": messages.len(),
        "batch_max_messages": settings.ingest.batch_max_messages.max(1),
        "decode": { "seconds": decode.as_secs_f64(), "messages_per_second": per_s(decode), "share_percent": share(decode) },
        "transform": { "seconds": plan_rollup.as_secs_f64(), "messages_per_second": per_s(plan_rollup), "share_percent": share(plan_rollup) },
        "database": {
            "seconds": (load + write).as_secs_f64(),
            "messages_per_second": per_s(load + write),
            "aggregate_rows": rows,
            "aggregate_rows_per_second": (rows as f64 / (load + write).as_secs_f64()).round(),
            "share_percent": share(load + write),
        },
        "compaction": { "seconds": compaction.as_secs_f64(), "deltas": folded.deltas, "cells": folded.cells },
        "end_to_end_in_process_messages_per_second": per_s(total),
    });
    verify(&sink, &generator).await?;
    report["verified"] = json!(true);
    report["database_bytes"] = json!(sink.database_bytes().await?);
    sink.close().await;
    if !args.keep {
        sink::inspect::drop_database(&settings.database, tag).await?;
    }
    Ok(report)
}

/// The next `size` decoded messages as the batch the consumer would cut
/// from one partition (`bench.stages`/0) whose stored offset is `next`.
fn stage_batch(
    decoded: &mut impl Iterator<Item = (usize, Result<schemas::Event, schemas::Rejection>)>,
    messages: &[(bool, Vec<u8>, Vec<u8>)],
    size: usize,
    next: &mut Option<i64>,
) -> ingest::Batch {
    let topic: std::sync::Arc<str> = std::sync::Arc::from("bench.stages");
    let (mut accepted, mut rejected, mut last) = (Vec::new(), Vec::new(), 0);
    for (offset, d) in decoded.take(size) {
        let (_, key, payload) = &messages[offset];
        let position = ingest::Position {
            topic: topic.clone(),
            partition: 0,
            offset: offset as i64,
            timestamp_ms: None,
        };
        let raw = || ingest::Raw {
            key: Some(key.clone()),
            payload: payload.clone(),
            headers: Vec::new(),
        };
        match d {
            Ok(event) => accepted.push(ingest::Accepted {
                raw: matches!(event.body, schemas::Body::Completed(_)).then(raw),
                event,
                position,
            }),
            Err(rejection) => rejected.push(ingest::Rejected::later(position, raw(), rejection)),
        }
        last = offset as i64;
    }
    let range = schemas::OffsetRange {
        topic,
        partition: 0,
        expected: *next,
        next: last + 1,
    };
    *next = Some(last + 1);
    ingest::Batch {
        accepted,
        rejected,
        ranges: vec![range],
        started: Instant::now(),
    }
}

async fn throughput(
    args: &BenchArgs,
    kafka: &ingest::KafkaSettings,
    db_url: &str,
    generator: &mut Generator,
    publisher: &ingest::Publisher,
) -> anyhow::Result<Value> {
    let t = Instant::now();
    while generator.activities < args.events {
        publish(publisher, kafka, generator.next_batch(10_000)).await?;
    }
    let produce = t.elapsed();
    progress(
        args,
        format!(
            "published {} messages in {:.1} s",
            generator.sent,
            produce.as_secs_f64()
        ),
    );

    let (read, read_time) = ingest::tools::read_all(
        kafka,
        &format!("{}.raw", kafka.group_id),
        generator.sent,
        Duration::from_secs(600),
    )
    .await?;
    if read != generator.sent {
        bail!("the raw read got {read} of {} messages", generator.sent);
    }
    let raw_rate = read as f64 / read_time.as_secs_f64();
    progress(
        args,
        format!(
            "raw read: {read} messages in {:.2} s = {raw_rate:.0}/s",
            read_time.as_secs_f64()
        ),
    );

    let children: Vec<Child> = (0..args.processes)
        .map(|_| spawn(kafka, db_url, &["run", "--until-caught-up"]))
        .collect::<anyhow::Result<_>>()?;
    let runs = watch(children, None)?;
    let busy = runs.iter().map(|r| r.busy_ms).max().unwrap_or(0) as f64 / 1000.0;
    let settled = runs
        .iter()
        .map(|r| r.last["settled_ms"].as_u64().unwrap_or(r.busy_ms))
        .max()
        .unwrap_or(0) as f64
        / 1000.0;
    let e2e = generator.sent as f64 / busy;
    progress(
        args,
        format!(
            "pipeline: {} messages in {busy:.2} s = {e2e:.0}/s (every commit visible); \
             compacted {settled:.2} s = {:.0}/s",
            generator.sent,
            generator.sent as f64 / settled
        ),
    );
    Ok(json!({
        "mode": "throughput",
        "events_per_second": e2e.round(),
        "raw_read_per_second": raw_rate.round(),
        "ratio_to_raw_read": (e2e / raw_rate * 1000.0).round() / 1000.0,
        "pipeline_seconds": busy,
        "settled_seconds": settled,
        "events_per_second_compacted": (generator.sent as f64 / settled).round(),
        "produce_seconds": produce.as_secs_f64(),
        "processes": runs.iter().map(Run::to_json).collect::<Vec<_>>(),
    }))
}

async fn freshness(
    args: &BenchArgs,
    kafka: &ingest::KafkaSettings,
    db_url: &str,
    generator: &mut Generator,
    publisher: &ingest::Publisher,
    rate: u64,
) -> anyhow::Result<Value> {
    let history = if args.history > 0 {
        while generator.activities < args.history {
            publish(publisher, kafka, generator.next_batch(10_000)).await?;
        }
        let runs = watch(
            vec![spawn(kafka, db_url, &["run", "--until-caught-up"])?],
            None,
        )?;
        let seconds = runs[0].last["settled_ms"].as_u64().unwrap_or_default() as f64 / 1000.0;
        progress(
            args,
            format!(
                "history: {} messages applied and folded in {seconds:.1} s",
                generator.sent
            ),
        );
        json!({ "messages": generator.sent, "seconds": seconds, "process": runs[0].to_json() })
    } else {
        Value::Null
    };
    let before = generator.sent;
    let children: Vec<Child> = (0..args.processes)
        .map(|_| spawn(kafka, db_url, &["run"]))
        .collect::<anyhow::Result<_>>()?;
    let pids: Vec<u32> = children.iter().map(Child::id).collect();
    let watcher = std::thread::spawn(move || watch(children, Some(Duration::from_secs(600))));
    // Let the group form before offering load.
    tokio::time::sleep(Duration::from_secs(8)).await;
    progress(
        args,
        format!("offering {rate} events/s for {} s", args.seconds),
    );
    let tick = Duration::from_millis(10);
    let per_tick = (rate as f64 * tick.as_secs_f64()).max(1.0);
    let start = Instant::now();
    let mut due = 0.0;
    // Deliveries are awaited at the end, so the offered rate is not held back.
    let mut pending = Vec::new();
    while start.elapsed() < Duration::from_secs(args.seconds) {
        due += per_tick;
        let n = due as usize;
        due -= n as f64;
        for (mission, key, value) in generator.next_batch(n) {
            let topic = if mission {
                &kafka.missions_topic
            } else {
                &kafka.activities_topic
            };
            pending.push(publisher.send_to(topic, &key, &value).await?);
        }
        let next = start + tick * ((start.elapsed().as_millis() / tick.as_millis()) as u32 + 1);
        tokio::time::sleep_until(tokio::time::Instant::from_std(next)).await;
    }
    let offered = (generator.sent - before) as f64 / start.elapsed().as_secs_f64();
    for d in pending {
        publisher.delivered(d).await?;
    }
    // Let the last batches commit, then stop the pipeline cleanly.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for pid in pids {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    let runs = watcher
        .join()
        .map_err(|_| anyhow::anyhow!("watcher panicked"))??;
    Ok(json!({
        "mode": "freshness",
        "offered_per_second": offered.round(),
        "seconds": args.seconds,
        "history": history,
        "processes": runs.iter().map(Run::to_json).collect::<Vec<_>>(),
    }))
}

async fn publish(
    publisher: &ingest::Publisher,
    kafka: &ingest::KafkaSettings,
    batch: Vec<(bool, Vec<u8>, Vec<u8>)>,
) -> anyhow::Result<()> {
    let mut pending = Vec::with_capacity(batch.len());
    for (mission, key, value) in &batch {
        let topic = if *mission {
            &kafka.missions_topic
        } else {
            &kafka.activities_topic
        };
        pending.push(publisher.send_to(topic, key, value).await?);
    }
    for d in pending {
        publisher.delivered(d).await?;
    }
    Ok(())
}

fn spawn(kafka: &ingest::KafkaSettings, db_url: &str, args: &[&str]) -> anyhow::Result<Child> {
    let exe = std::env::current_exe()?;
    Command::new(exe)
        .args(args)
        .env("OUTREACH__KAFKA__BROKERS", &kafka.brokers)
        .env("OUTREACH__KAFKA__GROUP_ID", &kafka.group_id)
        .env("OUTREACH__KAFKA__MISSIONS_TOPIC", &kafka.missions_topic)
        .env("OUTREACH__KAFKA__ACTIVITIES_TOPIC", &kafka.activities_topic)
        .env("OUTREACH__KAFKA__DEADLETTER_TOPIC", &kafka.deadletter_topic)
        .env("OUTREACH__DATABASE__URL", db_url)
        .env("OUTREACH__LOG__FORMAT", "json")
        .env("OUTREACH__HTTP__ADDRESS", "127.0.0.1:0")
        .env("OUTREACH__LOG__LEVEL", "warn,outreach::pipeline=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the pipeline")
}

/// One pipeline process's final figures.
#[derive(Debug, Default)]
struct Run {
    peak_rss_bytes: u64,
    busy_ms: u64,
    last: Value,
}

impl Run {
    fn to_json(&self) -> Value {
        let f = |k: &str| self.last.get(k).cloned().unwrap_or(Value::Null);
        json!({
            "peak_rss_mib": (self.peak_rss_bytes as f64 / 1048576.0 * 10.0).round() / 10.0,
            "messages": f("messages"), "batches": f("batches"), "quarantined": f("quarantined"),
            "busy_ms": f("busy_ms"), "decode_ms": f("decode_ms"), "transform_ms": f("transform_ms"),
            "database_ms": f("database_ms"),
            "database_split_ms": {"begin": f("begin_ms"), "load": f("load_ms"), "ledger": f("ledger_ms"), "daily": f("daily_ms"), "regional": f("regional_ms"), "program_and_quarantine": f("program_ms")},
            "compactions": f("compactions"), "compacted_deltas": f("compacted_deltas"),
            "compaction_ms": f("compaction_ms"), "settled_ms": f("settled_ms"),
            "freshness_p50_ms": f("freshness_p50_ms"),
            "freshness_p99_ms": f("freshness_p99_ms"), "freshness_max_ms": f("freshness_max_ms"),
        })
    }
}

/// Waits for the processes, sampling each one's peak RSS (VmHWM) while it
/// runs and reading its final log line.
fn watch(children: Vec<Child>, limit: Option<Duration>) -> anyhow::Result<Vec<Run>> {
    let deadline = Instant::now() + limit.unwrap_or(Duration::from_secs(3600));
    let mut runs = Vec::new();
    let mut handles = Vec::new();
    for mut child in children {
        let stderr = child.stderr.take().expect("piped");
        let reader = std::thread::spawn(move || {
            let mut last = Value::Null;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v["message"] == "pipeline stopped" {
                        last = v;
                    } else if v["level"] == "ERROR" {
                        eprintln!("{line}");
                    }
                }
            }
            last
        });
        handles.push((child, reader));
    }
    let mut peaks = vec![0u64; handles.len()];
    let mut done = vec![None; handles.len()];
    while done.iter().any(Option::is_none) {
        for (i, (child, _)) in handles.iter_mut().enumerate() {
            if done[i].is_some() {
                continue;
            }
            peaks[i] = peaks[i].max(vm_hwm(child.id()).unwrap_or(0));
            if let Some(status) = child.try_wait()? {
                done[i] = Some(status);
            }
        }
        if Instant::now() > deadline {
            bail!("the pipeline did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for (i, (_, reader)) in handles.into_iter().enumerate() {
        let status = done[i].expect("all done");
        let last = reader
            .join()
            .map_err(|_| anyhow::anyhow!("log reader panicked"))?;
        if !status.success() {
            bail!("a pipeline process failed: {status}");
        }
        let busy_ms = last["busy_ms"].as_u64().unwrap_or(0);
        runs.push(Run {
            peak_rss_bytes: peaks[i],
            busy_ms,
            last,
        });
    }
    Ok(runs)
}

fn vm_hwm(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Leaf totals per (region, metric) in the tables against the generator's fold.
async fn verify(sink: &sink::Sink, g: &Generator) -> anyhow::Result<()> {
    let mut got = sink.leaf_totals().await?;
    got.retain(|_, v| *v != 0);
    let want = g.expected();
    if got != want {
        let wrong = want.iter().filter(|(k, v)| got.get(*k) != Some(v)).count()
            + got.keys().filter(|k| !want.contains_key(*k)).count();
        bail!(
            "verification failed: {wrong} (region, metric) totals differ from the independent fold"
        );
    }
    let quarantined = sink.quarantined().await?;
    if quarantined as u64 != g.bad {
        bail!(
            "verification failed: {quarantined} quarantined, {} bad messages sent",
            g.bad
        );
    }
    if sink.country_total().await? != want.values().sum::<i64>() {
        bail!(
            "verification failed: the country-level yearly totals do not add up to the leaf totals"
        );
    }
    Ok(())
}

fn progress(args: &BenchArgs, msg: String) {
    if !args.json {
        eprintln!("bench: {msg}");
    }
}

const METRICS: [&str; 13] = [
    "outpatient_visits",
    "surgeries",
    "complex_case_consultations",
    "teaching_rounds",
    "lectures",
    "staff_trained",
    "techniques_introduced",
    "techniques_localized",
    "papers_published",
    "research_projects_funded",
    "departments_established",
    "telemedicine_sessions",
    "medicines_donated_value",
];

/// The winning revision of one (institution, record): (revision, event id,
/// county index, metric index, hundredths).
type Winner = (u32, u64, u32, u8, i64);

/// Generates the stream and keeps the reference fold: the winning revision
/// of every record, and what every mission adds.
struct Generator {
    rng: u64,
    args: BenchArgs,
    counties: Vec<String>,
    winners: HashMap<(u32, u64), Winner>,
    records: Vec<(u32, u64, u32, u8)>,
    recent: Vec<(bool, Vec<u8>, Vec<u8>)>,
    missions_total: HashMap<(String, String), i64>,
    activities: u64,
    next_id: u64,
    sent: u64,
    missions: u64,
    duplicates: u64,
    corrections: u64,
    bad: u64,
}

impl Generator {
    fn new(args: &BenchArgs, counties: Vec<String>) -> Generator {
        Generator {
            rng: args.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            args: args.clone(),
            counties,
            winners: HashMap::new(),
            records: Vec::new(),
            recent: Vec::new(),
            missions_total: HashMap::new(),
            activities: 0,
            next_id: 0,
            sent: 0,
            missions: 0,
            duplicates: 0,
            corrections: 0,
            bad: 0,
        }
    }

    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn percent(&mut self) -> f64 {
        self.below(1_000_000) as f64 / 10_000.0
    }

    fn day(&mut self) -> chrono::NaiveDate {
        let today = chrono::Utc::now().date_naive();
        let span = if self.percent() < self.args.late {
            365 * self.args.years.max(1) as u64
        } else {
            self.args.recent_days.max(1)
        };
        today - chrono::Days::new(self.below(span))
    }

    /// Up to `n` messages: (is a mission, key, value).
    fn next_batch(&mut self, n: usize) -> Vec<(bool, Vec<u8>, Vec<u8>)> {
        let mut out = Vec::with_capacity(n + 2);
        while out.len() < n {
            let p = self.percent();
            if p < self.args.bad {
                self.bad += 1;
                let v = format!("{{\"specversion\":\"1.0\",\"id\":\"bad-{}\"", self.next_id);
                self.next_id += 1;
                out.push((false, b"bad".to_vec(), v.into_bytes()));
                continue;
            }
            if p < self.args.bad + self.args.duplicates && !self.recent.is_empty() {
                self.duplicates += 1;
                let i = self.below(self.recent.len() as u64) as usize;
                out.push(self.recent[i].clone());
                continue;
            }
            if self.below(100) == 0 {
                out.extend(self.mission());
                continue;
            }
            let correction = p < self.args.bad + self.args.duplicates + self.args.corrections
                && !self.records.is_empty();
            let (inst, record, region, metric) = if correction {
                self.corrections += 1;
                let i = self.below(self.records.len() as u64) as usize;
                self.records[i]
            } else {
                let r = (
                    self.below(40) as u32,
                    self.activities,
                    self.below(self.counties.len() as u64) as u32,
                    self.below(13) as u8,
                );
                self.records.push(r);
                r
            };
            self.activities += 1;
            let revision = if correction {
                1 + self.below(5) as u32
            } else {
                1
            };
            let metric_name = METRICS[metric as usize];
            let units = if self.below(20) == 0 {
                0
            } else {
                1 + self.below(60) as i64
            };
            let cents = if metric_name == "medicines_donated_value" {
                self.below(100) as i64
            } else {
                0
            };
            let id = self.next_id;
            self.next_id += 1;
            let day = self.day();
            let program = self.below(self.args.programs as u64);
            let dims = self.dims(metric_name);
            let value: Value =
                serde_json::from_str(&format!("{units}.{cents:02}")).expect("a decimal");
            let event = json!({
                "specversion": "1.0", "id": format!("ev-{id}"), "source": format!("urn:outreach:institution:inst-{inst}"),
                "type": "org.outreach.activity.recorded.v1", "time": "2025-01-01T00:00:00Z",
                "data": {
                    "record_id": format!("rec-{record}"), "revision": revision, "program_id": format!("program-{program}"),
                    "facility_id": format!("facility-{region}"), "region_code": self.counties[region as usize],
                    "occurred_on": day.to_string(), "metric": metric_name, "value": value, "dims": dims,
                }
            });
            let key = (inst, record);
            let version = (revision, format!("ev-{id}"));
            let wins = self
                .winners
                .get(&key)
                .is_none_or(|w| version > (w.0, format!("ev-{}", w.1)));
            if wins {
                self.winners
                    .insert(key, (revision, id, region, metric, units * 100 + cents));
            }
            let m = (
                false,
                format!("rec-{record}").into_bytes(),
                serde_json::to_vec(&event).expect("json"),
            );
            self.remember(&m);
            out.push(m);
        }
        self.sent += out.len() as u64;
        out
    }

    fn dims(&mut self, metric: &str) -> Value {
        let m = schemas::Metric::parse(metric).expect("catalogue metric");
        let mut d = serde_json::Map::new();
        for (key, values) in m.dims() {
            if self.below(3) == 0 {
                continue;
            }
            let v = match values {
                Some(list) => list[self.below(list.len() as u64) as usize],
                None => schemas::Specialty::ALL[self.below(30) as usize],
            };
            d.insert((*key).to_owned(), json!(v));
        }
        Value::Object(d)
    }

    fn mission(&mut self) -> Vec<(bool, Vec<u8>, Vec<u8>)> {
        let n = self.missions;
        self.missions += 1;
        let i = self.below(self.counties.len() as u64) as usize;
        let region = self.counties[i].clone();
        let team = 1 + self.below(15) as i64;
        let days = 1 + self.below(14) as i64;
        let start = self.day();
        let end = start + chrono::Days::new(days as u64 - 1);
        let program = self.below(self.args.programs as u64);
        let src = format!("urn:outreach:institution:inst-{}", self.below(40));
        let dispatch = json!({
            "specversion": "1.0", "id": format!("d-{n}"), "source": src, "type": "org.outreach.mission.dispatched.v1",
            "time": "2025-01-01T00:00:00Z",
            "data": {"mission_id": format!("m-{n}"), "program_id": format!("program-{program}"), "host_facility_id": "host",
                     "region_code": region, "team_size": team, "start_date": start.to_string()}
        });
        let completion = json!({
            "specversion": "1.0", "id": format!("c-{n}"), "source": src, "type": "org.outreach.mission.completed.v1",
            "time": "2025-01-02T00:00:00Z", "data": {"mission_id": format!("m-{n}"), "end_date": end.to_string()}
        });
        for (metric, v) in [
            ("missions_dispatched", 1),
            ("experts_dispatched", team),
            ("missions_completed", 1),
            ("expert_days", team * days),
        ] {
            *self
                .missions_total
                .entry((region.clone(), metric.to_owned()))
                .or_default() += v * 100;
        }
        let key = format!("m-{n}").into_bytes();
        // Completions go first half the time: they must wait for their dispatch.
        let mut pair = vec![
            (
                true,
                key.clone(),
                serde_json::to_vec(&dispatch).expect("json"),
            ),
            (true, key, serde_json::to_vec(&completion).expect("json")),
        ];
        if self.below(2) == 0 {
            pair.reverse();
        }
        pair
    }

    fn remember(&mut self, m: &(bool, Vec<u8>, Vec<u8>)) {
        if self.recent.len() < 4096 {
            self.recent.push(m.clone());
        } else {
            let i = self.below(4096) as usize;
            self.recent[i] = m.clone();
        }
    }

    fn expected(&self) -> HashMap<(String, String), i64> {
        let mut t = self.missions_total.clone();
        for (_, region, metric, v) in self.winners.values().map(|w| (w.0, w.2, w.3, w.4)) {
            *t.entry((
                self.counties[region as usize].clone(),
                METRICS[metric as usize].to_owned(),
            ))
            .or_default() += v;
        }
        t.retain(|_, v| *v != 0);
        t
    }
}
