//! `--stages`: the same events through each stage apart, in this process
//! and without a broker, so the bottleneck shows: decode all, then each
//! batch through `crate::batch::apply` as `run`'s worker applies it.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use super::generator::{Generator, Message, generator, verify};
use super::{BenchArgs, progress};
use crate::settings::Settings;

/// `--stages`: the same events through each stage apart, in this process,
/// so the bottleneck shows. Decode all, then per batch: load the ledger,
/// transform (plan + polars roll-up), write and commit.
pub(super) async fn stages(
    settings: &Settings,
    args: &BenchArgs,
    tag: &str,
) -> anyhow::Result<Value> {
    let db = sink::inspect::create_database(&settings.database, tag)
        .await
        .context("creating the benchmark database")?;
    let (generator, messages) = generate(settings, args)?;
    let regions = std::sync::Arc::new(settings.regions()?);
    let (decoded, decode) = decode_all(settings, &regions, &messages);
    progress(args, format!("decoded in {:.2} s", decode.as_secs_f64()));

    let sink = sink::Sink::connect(&db).await?;
    sink.migrate().await?;
    sink.sync_regions(&regions).await?;
    let transform = transform::Transform::new(&regions)?;
    let size = settings.ingest.batch_max_messages.max(1);
    let mut spent = apply_all(&sink, &transform, decoded, &messages, size).await?;
    spent.decode = decode;
    // The fold the deltas wait for (Postgres), measured apart: a running
    // pipeline does it beside the batches, on the database's other core.
    let t = Instant::now();
    let folded = sink.compact(sink::Share::Alone).await?.unwrap_or_default();
    spent.compaction = t.elapsed();
    let mut report = stages_report(args, settings, messages.len(), &spent, &folded);
    verify(&sink, &generator).await?;
    report["verified"] = json!(true);
    report["database_bytes"] = json!(sink.database_bytes().await?);
    sink.close().await;
    if !args.keep {
        sink::inspect::drop_database(&settings.database, tag).await?;
    }
    Ok(report)
}

/// All of the run's messages, generated up front so that no stage waits
/// for the generator.
fn generate(settings: &Settings, args: &BenchArgs) -> anyhow::Result<(Generator, Vec<Message>)> {
    let mut generator = generator(settings, args)?;
    let mut messages = Vec::new();
    while generator.activities < args.events {
        messages.extend(generator.next_batch(10_000));
    }
    generator.sent = messages.len() as u64;
    progress(args, format!("generated {} messages", messages.len()));
    Ok((generator, messages))
}

type Decoded = Result<schemas::Event, schemas::Rejection>;

/// Every message through the pipeline's decoder, and how long that took.
fn decode_all(
    settings: &Settings,
    regions: &std::sync::Arc<schemas::Regions>,
    messages: &[Message],
) -> (Vec<Decoded>, Duration) {
    let decoder = schemas::Decoder::new(regions.clone(), settings.ingest.max_message_bytes);
    let headers = [schemas::Header {
        key: "content-type",
        value: Some(b"application/cloudevents+json"),
    }];
    let t = Instant::now();
    let decoded = messages
        .iter()
        .map(|(_, _, v)| {
            decoder.decode(&schemas::Message {
                headers: &headers,
                value: Some(v),
                timestamp_ms: None,
            })
        })
        .collect();
    (decoded, t.elapsed())
}

/// Time spent in each stage over the whole run.
#[derive(Default)]
struct Spent {
    decode: Duration,
    /// Beginning each transaction and loading the ledger rows it touches.
    load: Duration,
    /// Planning and the polars roll-up.
    plan_rollup: Duration,
    /// Writing the rows and committing.
    write: Duration,
    /// Aggregate rows written.
    rows: usize,
    /// The fold after the last batch.
    compaction: Duration,
}

/// The decoded messages cut into batches of `size`, each applied as `run`'s
/// worker applies it; the decode and fold times are the caller's to fill in.
async fn apply_all(
    sink: &sink::Sink,
    transform: &transform::Transform,
    decoded: Vec<Decoded>,
    messages: &[Message],
    size: usize,
) -> anyhow::Result<Spent> {
    let mut spent = Spent::default();
    let mut next = None;
    let mut decoded = decoded.into_iter().enumerate().peekable();
    while decoded.peek().is_some() {
        let batch = stage_batch(&mut decoded, messages, size, &mut next);
        let done = crate::batch::apply(sink, transform, None, &batch).await?;
        let t = done.timings;
        spent.load += t.begin + t.load;
        spent.plan_rollup += t.transform;
        spent.write += t.database - t.begin - t.load;
        spent.rows += done.cells;
    }
    Ok(spent)
}

/// Each stage's rate and share of the in-process time, printed and as the
/// report.
fn stages_report(
    args: &BenchArgs,
    settings: &Settings,
    messages: usize,
    s: &Spent,
    folded: &sink::Compacted,
) -> Value {
    let (decode, load, plan_rollup, write, rows) =
        (s.decode, s.load, s.plan_rollup, s.write, s.rows);
    let n = messages as f64;
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
    json!({
        "mode": "stages",
        "messages": messages,
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
        "compaction": { "seconds": s.compaction.as_secs_f64(), "deltas": folded.deltas, "cells": folded.cells },
        "end_to_end_in_process_messages_per_second": per_s(total),
    })
}

/// The next `size` decoded messages as the batch the consumer would cut
/// from one partition (`bench.stages`/0) whose stored offset is `next`.
fn stage_batch(
    decoded: &mut impl Iterator<Item = (usize, Decoded)>,
    messages: &[Message],
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
            Ok(event) => accepted.push(ingest::Accepted::new(event, position, raw)),
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
