//! The modes with a broker: `throughput` (a backlog published, read raw,
//! then drained by the pipeline's processes) and `freshness` (a steady
//! offered load while `run` follows the topics).

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

pub(super) async fn freshness(
    args: &BenchArgs,
    kafka: &ingest::KafkaSettings,
    target: &Target,
    generator: &mut Generator,
    publisher: &ingest::Publisher,
    rate: u64,
    db: &sink::Settings,
) -> anyhow::Result<Value> {
    let history = if args.history > 0 {
        while generator.activities < args.history {
            publish(publisher, kafka, generator.next_batch(10_000)).await?;
        }
        let runs = watch(
            vec![spawn(kafka, target, &["run", "--until-caught-up"])?],
            None,
        )?;
        let seconds = runs[0].figures.settled_ms as f64 / 1000.0;
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
    let children: Vec<Process> = (0..args.processes)
        .map(|_| spawn(kafka, target, &["run"]))
        .collect::<anyhow::Result<_>>()?;
    let pids: Vec<u32> = children.iter().map(Process::id).collect();
    let watcher = std::thread::spawn(move || watch(children, Some(Duration::from_secs(600))));
    // Let the group form before offering load.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (stop_readers, readers_stop) = tokio::sync::watch::channel(false);
    let reading = if args.readers {
        let sink = sink::Sink::connect(db).await?;
        let params = readers::Params::read(&sink).await?;
        Some((
            sink.clone(),
            tokio::spawn(readers::during(sink, params, readers_stop)),
        ))
    } else {
        None
    };
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
    let _ = stop_readers.send(true);
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
    let (readers_during, readers_idle) = match reading {
        Some((sink, during)) => {
            let during = during.await??;
            // Nothing pending: the same queries as analysts see them idle.
            sink.compact(sink::Share::Alone).await?;
            let params = readers::Params::read(&sink).await?;
            let idle = readers::measure(&sink, &params, None).await?;
            sink.close().await;
            (during, idle)
        }
        None => (Value::Null, Value::Null),
    };
    Ok(json!({
        "mode": "freshness",
        "readers_during": readers_during,
        "readers_idle": readers_idle,
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
