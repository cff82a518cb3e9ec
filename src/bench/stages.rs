//! `--stages`: the same events through each stage apart, in this process
//! and without a broker, so the bottleneck shows: decode all, then each
//! batch through `crate::batch::apply` as `run`'s worker applies it.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use super::generator::{generator, verify};
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
                timestamp_ms: None,
            })
        })
        .collect();
    let decode = t.elapsed();
    progress(args, format!("decoded in {:.2} s", decode.as_secs_f64()));

    let sink = sink::Sink::connect(&db).await?;
    sink.migrate().await?;
    sink.sync_regions(&regions).await?;
    let transform = transform::Transform::new(&regions)?;
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
