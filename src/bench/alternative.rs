//! What the pipeline's time is measured against: the COPY floor (the rows
//! it left, COPYed into empty tables with the same keys) and the batch SQL
//! way of doing the same job on the same topics.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Value, json};

use anyhow::Context;

use super::{BenchArgs, progress, readers};
use crate::settings::Settings;

/// The floor: Postgres COPYing the rows the run left into empty tables with
/// the same keys and indexes, and the pipeline's time as a multiple of it.
pub(super) async fn floor(
    args: &BenchArgs,
    sink: &sink::Sink,
    tag: &str,
    report: &mut Value,
) -> anyhow::Result<()> {
    let scratch = tempfile::Builder::new()
        .prefix(&format!("{tag}."))
        .tempdir()
        .context("creating a scratch directory")?;
    let Some(floor) = sink.copy_floor(&scratch.path().join("rows.copy")).await? else {
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
pub(super) async fn sql_alternative(
    args: &BenchArgs,
    settings: &Settings,
    kafka: &ingest::KafkaSettings,
    sink: &sink::Sink,
    expected: u64,
    report: &mut Value,
) -> anyhow::Result<()> {
    let mut alt = sink.alternative().await?;
    let (started, received) = load_raw(settings, kafka, &mut alt, expected).await?;
    if received != expected {
        bail!("the SQL alternative read {received} of {expected} messages");
    }
    let started = started.unwrap_or_else(Instant::now);
    let loaded = started.elapsed();
    let rebuild = alt.rebuild().await?;
    let total = started.elapsed().as_secs_f64();
    let mismatches = alt.mismatches().await?;
    if mismatches != 0 {
        alt.drop().await?;
        bail!("the SQL alternative's tables differ from the pipeline's in {mismatches} cells");
    }
    readers_idle(args, sink, alt, report).await?;
    let timings = Timings {
        total,
        loaded,
        rebuild,
    };
    record(args, expected, &timings, report);
    Ok(())
}

/// Reads the topics from the start under a group of its own, decodes each
/// message as the pipeline would and COPYs the accepted events raw in
/// chunks. Returns when the first message arrived (the clock starts there,
/// as the pipeline's does) and how many were read.
async fn load_raw(
    settings: &Settings,
    kafka: &ingest::KafkaSettings,
    alt: &mut sink::alternative::Alternative,
    expected: u64,
) -> anyhow::Result<(Option<Instant>, u64)> {
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
                timestamp_ms: None,
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
    Ok((started, received))
}

/// With the same rows in both: what analysts pay on the views against
/// plain tables, nothing pending (the run ended with a fold). The plain
/// tables are the alternative's, so it is dropped only after this.
async fn readers_idle(
    args: &BenchArgs,
    sink: &sink::Sink,
    alt: sink::alternative::Alternative,
    report: &mut Value,
) -> anyhow::Result<()> {
    progress(
        args,
        "timing the readers' queries: views against plain tables".into(),
    );
    let params = readers::Params::read(sink).await?;
    let readers = readers::measure(sink, &params, Some("outreach_alt")).await;
    alt.drop().await?;
    report["readers_idle"] = readers?;
    for q in report["readers_idle"].as_array().into_iter().flatten() {
        progress(
            args,
            format!(
                "  {}: views p50 {} ms, plain p50 {} ms ({}x)",
                q["query"].as_str().unwrap_or_default(),
                q["views"]["p50_ms"],
                q["plain"]["p50_ms"],
                q["p50_ratio"]
            ),
        );
    }
    Ok(())
}

/// How long the alternative took, end to end and by phase.
struct Timings {
    /// Seconds from the first message read to the rebuilt roll-ups.
    total: f64,
    /// From the first message read to the last chunk COPYed.
    loaded: Duration,
    /// The SQL rebuild of the roll-ups alone.
    rebuild: Duration,
}

/// Prints the alternative's rate beside the pipeline's and records both in
/// the report.
fn record(args: &BenchArgs, expected: u64, t: &Timings, report: &mut Value) {
    let total = t.total;
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
            t.loaded.as_secs_f64(),
            t.rebuild.as_secs_f64(),
            ours / alt_rate,
            ours_compacted / alt_rate
        ),
    );
    report["sql_alternative"] = json!({
        "seconds": total,
        "events_per_second": alt_rate.round(),
        "load_seconds": t.loaded.as_secs_f64(),
        "rebuild_seconds": t.rebuild.as_secs_f64(),
        "same_tables_as_pipeline": true,
        "pipeline_visible_ratio": (ours / alt_rate * 100.0).round() / 100.0,
        "pipeline_compacted_ratio": (ours_compacted / alt_rate * 100.0).round() / 100.0,
    });
}
