//! The batch worker: one transaction per batch, retried while the failure
//! is transient, each commit acknowledged to ingest and counted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ingest::{Ack, Batch, DeadLetters};
use sink::Sink;
use sink::fold::Pressure;
use tokio::sync::mpsc;
use tracing::{info, warn};
use transform::Transform;

use crate::batch::{Applied, ApplyError, apply};

use super::Report;

/// The worker: one transaction per batch, retried while the failure is
/// transient; a fenced batch is dropped and reported.
pub(super) async fn apply_all(
    sink: Sink,
    transform: Arc<Transform>,
    mut dead_letters: DeadLetters,
    mut batches: mpsc::Receiver<Batch>,
    acks: mpsc::UnboundedSender<Ack>,
    health: Arc<crate::http::Health>,
    mut pressure: Pressure,
) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let mut first: Option<Instant> = None;
    while let Some(batch) = batches.recv().await {
        report.backpressure += pressure.wait().await;
        let first = *first.get_or_insert(batch.started);
        report.first = Some(first);
        let mut delay = Duration::from_millis(100);
        loop {
            match apply(&sink, &transform, Some(&mut dead_letters), &batch).await {
                Ok(done) => {
                    report.batches += 1;
                    report.busy = first.elapsed();
                    pressure.appended(done.cells as u64);
                    health.database(true);
                    committed(&mut report, &batch, &done);
                    let _ = acks.send(Ack::Committed(batch.ranges.clone()));
                    break;
                }
                Err(ApplyError::Sink(e @ sink::Error::Fenced { .. })) => {
                    warn!(error = %e, "batch fenced");
                    metrics::counter!("outreach_batches_fenced_total").increment(1);
                    let _ = acks.send(Ack::Fenced);
                    break;
                }
                Err(e) if e.is_retryable() => {
                    warn!(error = %e, retry_in = ?delay, "batch failed; retrying");
                    metrics::counter!("outreach_batch_retries_total").increment(1);
                    if matches!(e, ApplyError::Sink(_)) {
                        health.database(false);
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                Err(e) => return Err(anyhow::Error::new(e).context("applying a batch")),
            }
        }
    }
    Ok(report)
}

/// Adds up a committed batch: its timings and counts, each message's
/// freshness (commit time minus its Kafka timestamp), the metrics and the
/// log line.
fn committed(report: &mut Report, batch: &Batch, done: &Applied) {
    report.add(&done.timings);
    record_metrics(batch, done);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let freshness = metrics::histogram!("outreach_freshness_seconds");
    let stamps = batch
        .accepted
        .iter()
        .map(|a| &a.position)
        .chain(batch.rejected.iter().map(|r| &r.position));
    for ts in stamps.filter_map(|p| p.timestamp_ms) {
        let ms = now_ms.saturating_sub(ts).max(0) as u64;
        report.freshness.record(ms);
        freshness.record(ms as f64 / 1000.0);
    }
    report.accepted += done.accepted;
    report.unchanged += done.unchanged;
    report.quarantined += done.quarantined;
    info!(
        messages = batch.len(),
        accepted = done.accepted,
        unchanged = done.unchanged,
        quarantined = done.quarantined,
        cells = done.cells,
        ms = batch.started.elapsed().as_millis() as u64,
        "batch committed"
    );
}

/// Counters and latencies of one committed batch.
fn record_metrics(batch: &Batch, done: &Applied) {
    metrics::counter!("outreach_batches_total").increment(1);
    metrics::counter!("outreach_events_accepted_total").increment(done.accepted);
    metrics::counter!("outreach_events_unchanged_total").increment(done.unchanged);
    for code in &done.codes {
        metrics::counter!("outreach_quarantined_total", "error_code" => code.as_str()).increment(1);
    }
    metrics::histogram!("outreach_batch_seconds").record(batch.started.elapsed().as_secs_f64());
    metrics::histogram!("outreach_transaction_seconds")
        .record(done.timings.transaction().as_secs_f64());
    metrics::histogram!("outreach_batch_messages").record(batch.len() as f64);
}
