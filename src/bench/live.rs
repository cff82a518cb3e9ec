//! The modes with a broker: `throughput` (a backlog published, read raw,
//! then drained by the pipeline's processes), `freshness` (a steady
//! offered load while `run` follows the topics) and `sustained` (offered
//! loads stepped up until the pipeline falls behind).

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Value, json};

use super::child::{Process, Run, Target, spawn, watch};
use super::generator::Generator;
use super::{BenchArgs, progress, readers};

pub(super) async fn throughput(
    args: &BenchArgs,
    kafka: &ingest::KafkaSettings,
    target: &Target,
    generator: &mut Generator,
    publisher: &ingest::Publisher,
) -> anyhow::Result<Value> {
    let produce = backlog(args, kafka, generator, publisher).await?;
    let raw_rate = raw_read(args, kafka, generator.sent).await?;
    let children: Vec<Process> = (0..args.processes)
        .map(|_| spawn(kafka, target, &["run", "--until-caught-up"]))
        .collect::<anyhow::Result<_>>()?;
    let runs = watch(children, None)?;
    let busy = runs.iter().map(|r| r.figures.busy_ms).max().unwrap_or(0) as f64 / 1000.0;
    let settled = runs.iter().map(|r| r.figures.settled_ms).max().unwrap_or(0) as f64 / 1000.0;
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

/// `--events` published before anything reads them, and how long that took.
async fn backlog(
    args: &BenchArgs,
    kafka: &ingest::KafkaSettings,
    generator: &mut Generator,
    publisher: &ingest::Publisher,
) -> anyhow::Result<Duration> {
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
    Ok(produce)
}

/// The backlog read and nothing done with it, under a group of its own:
/// the rate no consumer of these topics can beat, per second.
async fn raw_read(
    args: &BenchArgs,
    kafka: &ingest::KafkaSettings,
    sent: u64,
) -> anyhow::Result<f64> {
    let (read, read_time) = ingest::tools::read_all(
        kafka,
        &format!("{}.raw", kafka.group_id),
        sent,
        Duration::from_secs(600),
    )
    .await?;
    if read != sent {
        bail!("the raw read got {read} of {sent} messages");
    }
    let raw_rate = read as f64 / read_time.as_secs_f64();
    progress(
        args,
        format!(
            "raw read: {read} messages in {:.2} s = {raw_rate:.0}/s",
            read_time.as_secs_f64()
        ),
    );
    Ok(raw_rate)
}

pub(super) async fn freshness(
    args: &BenchArgs,
    kafka: &ingest::KafkaSettings,
    target: &Target,
    generator: &mut Generator,
    publisher: &ingest::Publisher,
    rate: u64,
    db: &sink::Settings,
) -> anyhow::Result<Value> {
    let history = history(args, kafka, target, generator, publisher).await?;
    let load = Load {
        rate,
        seconds: args.seconds,
        readers: args.readers,
    };
    let mut report = offer(args, kafka, target, generator, publisher, load, db).await?;
    if report["lag_at_stop"].as_u64() != Some(0) {
        progress(
            args,
            format!(
                "{} messages were left unapplied: draining them",
                report["lag_at_stop"]
            ),
        );
        until_caught_up(kafka, target)?;
    }
    report["mode"] = json!("freshness");
    report["history"] = history;
    Ok(report)
}

/// `--sustained`: offered loads from `--rate` up, a quarter more each step,
/// each for `--seconds` on the history; the highest at which the pipeline
/// kept up: freshness p99 under a second, and less than a second of load
/// left unapplied when the step's `run` stopped (the pending deltas are
/// bounded by `database.max_pending_deltas` whatever the load: past it,
/// the lag is what grows, so lag is the test).
pub(super) async fn sustained(
    args: &BenchArgs,
    kafka: &ingest::KafkaSettings,
    target: &Target,
    generator: &mut Generator,
    publisher: &ingest::Publisher,
    rate: u64,
    db: &sink::Settings,
) -> anyhow::Result<Value> {
    let history = history(args, kafka, target, generator, publisher).await?;
    let mut steps = Vec::new();
    let mut highest = None;
    let mut rate = rate;
    for _ in 0..args.steps {
        let load = Load {
            rate,
            seconds: args.seconds,
            readers: false,
        };
        let step = offer(args, kafka, target, generator, publisher, load, db).await?;
        let verdict = judge(args, &step);
        steps.push(verdict.summary);
        if !verdict.kept_up {
            break;
        }
        highest = Some(verdict.offered.round());
        rate = rate * 5 / 4;
    }
    until_caught_up(kafka, target)?;
    Ok(json!({
        "mode": "sustained",
        "highest_sustained_per_second": highest,
        "seconds_per_step": args.seconds,
        "history": history,
        "steps": steps,
    }))
}

/// One `--sustained` step judged.
struct Verdict {
    /// The rate actually offered, per second.
    offered: f64,
    kept_up: bool,
    /// The step as the report shows it.
    summary: Value,
}

/// Whether the pipeline kept up with one offered load: freshness p99 under
/// a second and at most a second of load left unapplied (the slowest
/// process's figures count). Prints the step's line.
fn judge(args: &BenchArgs, step: &Value) -> Verdict {
    let p = |k: &str| {
        step["processes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p[k].as_u64())
            .max()
            .unwrap_or(0)
    };
    let (p50, p99) = (p("freshness_p50_ms"), p("freshness_p99_ms"));
    let lag = step["lag_at_stop"].as_u64().unwrap_or(0);
    let offered = step["offered_per_second"].as_f64().unwrap_or(0.0);
    let kept_up = p99 < 1_000 && (lag as f64) <= offered;
    progress(
        args,
        format!(
            "offered {offered:.0}/s: freshness p50 {p50} ms, p99 {p99} ms, {lag} messages behind at the end, \
             pending deltas at most {}: {}",
            step["pending_max_rows"],
            if kept_up { "kept up" } else { "fell behind" }
        ),
    );
    let summary = json!({
        "offered_per_second": offered.round(), "freshness_p50_ms": p50, "freshness_p99_ms": p99,
        "lag_at_stop": lag, "pending_max_rows": step["pending_max_rows"],
        "backpressure_ms": p("backpressure_ms"), "kept_up": kept_up,
        "peak_rss_mib": step["processes"][0]["peak_rss_mib"],
    });
    Verdict {
        offered,
        kept_up,
        summary,
    }
}

/// `run --until-caught-up` as one child process: the history, or what a
/// stopped `run` left behind (a load it did not keep up with), so that the
/// tables verify.
fn until_caught_up(kafka: &ingest::KafkaSettings, target: &Target) -> anyhow::Result<Run> {
    let mut runs = watch(
        vec![spawn(kafka, target, &["run", "--until-caught-up"])?],
        None,
    )?;
    Ok(runs.remove(0))
}

/// `--history N`: N events published, then applied and folded by `run
/// --until-caught-up`, so that the offered load lands on a history (as in
/// production) rather than on empty tables.
async fn history(
    args: &BenchArgs,
    kafka: &ingest::KafkaSettings,
    target: &Target,
    generator: &mut Generator,
    publisher: &ingest::Publisher,
) -> anyhow::Result<Value> {
    if args.history == 0 {
        return Ok(Value::Null);
    }
    while generator.activities < args.history {
        publish(publisher, kafka, generator.next_batch(10_000)).await?;
    }
    let run = until_caught_up(kafka, target)?;
    let seconds = run.figures.settled_ms as f64 / 1000.0;
    progress(
        args,
        format!(
            "history: {} messages applied and folded in {seconds:.1} s",
            generator.sent
        ),
    );
    Ok(json!({ "messages": generator.sent, "seconds": seconds, "process": run.to_json() }))
}

/// One offered load.
#[derive(Debug, Clone, Copy)]
struct Load {
    rate: u64,
    seconds: u64,
    /// Time the analysts' queries during the load and after it.
    readers: bool,
}

/// Offers `load` to `--processes` `run` processes following the topics,
/// sampling the pending deltas every second; then stops them (SIGTERM) and
/// reports their figures, what they left unapplied, and with
/// `load.readers` the analysts' queries during the load and after a fold.
async fn offer(
    args: &BenchArgs,
    kafka: &ingest::KafkaSettings,
    target: &Target,
    generator: &mut Generator,
    publisher: &ingest::Publisher,
    load: Load,
    db: &sink::Settings,
) -> anyhow::Result<Value> {
    let sink = sink::Sink::connect(db).await?;
    let children: Vec<Process> = (0..args.processes)
        .map(|_| spawn(kafka, target, &["run"]))
        .collect::<anyhow::Result<_>>()?;
    let pids: Vec<u32> = children.iter().map(Process::id).collect();
    let limit = Duration::from_secs(load.seconds + 600);
    let watcher = std::thread::spawn(move || watch(children, Some(limit)));
    // Let the group form before offering load.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let reading = start_readers(&sink, load, &stopped).await?;
    let sampler = tokio::spawn(most_pending(sink.clone(), stopped));
    progress(
        args,
        format!("offering {} events/s for {} s", load.rate, load.seconds),
    );
    let offered = pace(kafka, generator, publisher, load, &stop).await?;
    // Let the last batches commit, then stop the pipeline cleanly.
    tokio::time::sleep(Duration::from_secs(3)).await;
    terminate(&pids);
    let runs = watcher
        .join()
        .map_err(|_| anyhow::anyhow!("watcher panicked"))??;
    let pending_max = sampler.await??;
    let lag = generator
        .sent
        .saturating_sub(sink.applied_messages().await?);
    let (readers_during, readers_idle) = readers_after(&sink, reading).await?;
    sink.close().await;
    Ok(json!({
        "offered_per_second": offered.round(),
        "seconds": load.seconds,
        "pending_max_rows": pending_max,
        "lag_at_stop": lag,
        "readers_during": readers_during,
        "readers_idle": readers_idle,
        "processes": runs.iter().map(Run::to_json).collect::<Vec<_>>(),
    }))
}

/// With `load.readers`, the analysts' queries timed in a loop until the
/// load is over.
async fn start_readers(
    sink: &sink::Sink,
    load: Load,
    stopped: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<anyhow::Result<Value>>>> {
    if !load.readers {
        return Ok(None);
    }
    let params = readers::Params::read(sink).await?;
    Ok(Some(tokio::spawn(readers::during(
        sink.clone(),
        params,
        stopped.clone(),
    ))))
}

/// The readers' figures during the load, then idle after a fold (both
/// null without `load.readers`).
async fn readers_after(
    sink: &sink::Sink,
    reading: Option<tokio::task::JoinHandle<anyhow::Result<Value>>>,
) -> anyhow::Result<(Value, Value)> {
    let Some(during) = reading else {
        return Ok((Value::Null, Value::Null));
    };
    let during = during.await??;
    // Nothing pending: the same queries as analysts see them idle.
    sink.compact(sink::Share::Alone).await?;
    let params = readers::Params::read(sink).await?;
    Ok((during, readers::measure(sink, &params, None).await?))
}

/// SIGTERM to each `run` process, which then stops cleanly.
fn terminate(pids: &[u32]) {
    for pid in pids {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
}

/// Publishes `load.rate` events a second in 10 ms ticks for `load.seconds`,
/// then signals `stop` (the load is over for the samplers) and waits for
/// every delivery. Returns the rate actually offered, per second.
async fn pace(
    kafka: &ingest::KafkaSettings,
    generator: &mut Generator,
    publisher: &ingest::Publisher,
    load: Load,
    stop: &tokio::sync::watch::Sender<bool>,
) -> anyhow::Result<f64> {
    let before = generator.sent;
    let tick = Duration::from_millis(10);
    let per_tick = (load.rate as f64 * tick.as_secs_f64()).max(1.0);
    let start = Instant::now();
    let mut due = 0.0;
    // Deliveries are awaited at the end, so the offered rate is not held back.
    let mut pending = Vec::new();
    while start.elapsed() < Duration::from_secs(load.seconds) {
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
    let _ = stop.send(true);
    for d in pending {
        publisher.delivered(d).await?;
    }
    Ok(offered)
}

/// The most delta rows pending at any one-second sample until `stop`.
async fn most_pending(
    sink: sink::Sink,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<u64> {
    let mut most = 0;
    while !*stop.borrow() {
        most = most.max(sink.pending().await?.rows());
        let _ = tokio::time::timeout(Duration::from_secs(1), stop.changed()).await;
    }
    Ok(most)
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
