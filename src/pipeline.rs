//! The pipeline: ingest feeds batches through a bounded channel to the
//! worker, which applies each one in a single database transaction and
//! answers with an [`Ack`] that moves Kafka's offset hint forward.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ingest::{Ack, Batch, DeadLetters, Mode, OffsetLookup, Rejected};
use schemas::{Decoder, Event};
use sink::{OffsetRange, QuarantineRow, Sink};
use tokio::sync::mpsc;
use tracing::{info, warn};
use transform::{Prior, Transform};

use crate::settings::Settings;

/// What a run did, for the last log line and for tests.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub ingest: ingest::Summary,
    pub batches: u64,
    pub accepted: u64,
    pub unchanged: u64,
    pub quarantined: u64,
}

/// Connects, migrates, and runs until `shutdown` (or drained, per `mode`).
pub async fn run(
    settings: &Settings,
    mode: Mode,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<Report> {
    let regions = Arc::new(settings.regions()?);
    let sink = connect(&settings.database).await?;
    sink.migrate().await.context("applying migrations")?;
    sink.sync_regions(&regions)
        .await
        .context("writing the region table")?;
    let transform = Arc::new(Transform::new(&regions).context("building the region closure")?);
    let decoder = Decoder::new(regions, settings.ingest.max_message_bytes);
    let dead_letters =
        DeadLetters::new(&settings.kafka).context("creating the dead-letter producer")?;

    let (batches_tx, batches_rx) = mpsc::channel(settings.ingest.channel_capacity);
    let (acks_tx, acks_rx) = mpsc::unbounded_channel();
    let worker = tokio::spawn(apply_all(
        sink,
        transform,
        dead_letters,
        batches_rx,
        acks_tx,
    ));
    let ingested = ingest::run(
        &settings.kafka,
        &settings.ingest,
        decoder,
        offset_lookup(settings.database.clone()),
        ingest::Links {
            batches: batches_tx,
            acks: acks_rx,
        },
        mode,
        shutdown,
    )
    .await;
    let mut report = worker.await.context("the batch worker panicked")??;
    report.ingest = ingested.context("ingest stopped")?;
    info!(?report, "pipeline stopped");
    Ok(report)
}

/// Connects to the database, waiting for it while it starts.
pub async fn connect(settings: &sink::Settings) -> anyhow::Result<Sink> {
    let mut delay = Duration::from_millis(500);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Sink::connect(settings).await {
            Ok(s) => return Ok(s),
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                warn!(error = %e, url = %settings.redacted_url(), retry_in = ?delay, "database not reachable yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("connecting to the database at {}", settings.redacted_url())
                });
            }
        }
    }
}

/// Reads stored offsets on a thread and runtime of its own: the rebalance
/// callback that calls it runs inside the Kafka client's poll.
fn offset_lookup(settings: sink::Settings) -> OffsetLookup {
    Arc::new(move |parts: &[(String, i32)]| {
        let (settings, parts) = (settings.clone(), parts.to_vec());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            Ok(rt.block_on(Sink::read_offsets(&settings, &parts))?)
        })
        .join()
        .unwrap_or_else(|_| Err("offset look-up thread panicked".into()))
    })
}

/// The worker: one transaction per batch, retried while the failure is
/// transient; a fenced batch is dropped and reported.
async fn apply_all(
    sink: Sink,
    transform: Arc<Transform>,
    dead_letters: DeadLetters,
    mut batches: mpsc::Receiver<Batch>,
    acks: mpsc::UnboundedSender<Ack>,
) -> anyhow::Result<Report> {
    let mut report = Report::default();
    while let Some(batch) = batches.recv().await {
        let mut delay = Duration::from_millis(100);
        loop {
            match apply(&sink, &transform, &dead_letters, &batch).await {
                Ok(done) => {
                    report.batches += 1;
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
                    let _ = acks.send(Ack::Committed(batch.ranges.clone()));
                    break;
                }
                Err(ApplyError::Sink(e @ sink::Error::Fenced { .. })) => {
                    warn!(error = %e, "batch fenced");
                    let _ = acks.send(Ack::Fenced);
                    break;
                }
                Err(e) if e.is_retryable() => {
                    warn!(error = %e, retry_in = ?delay, "batch failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                Err(e) => return Err(anyhow::Error::new(e).context("applying a batch")),
            }
        }
    }
    Ok(report)
}

#[derive(Debug, thiserror::Error)]
enum ApplyError {
    #[error(transparent)]
    Sink(#[from] sink::Error),
    #[error(transparent)]
    Transform(#[from] transform::Error),
    #[error(transparent)]
    DeadLetter(#[from] ingest::Error),
}

impl ApplyError {
    fn is_retryable(&self) -> bool {
        match self {
            ApplyError::Sink(e) => e.is_retryable(),
            ApplyError::DeadLetter(_) => true,
            ApplyError::Transform(_) => false,
        }
    }
}

struct Applied {
    accepted: u64,
    unchanged: u64,
    quarantined: u64,
    cells: usize,
}

async fn apply(
    sink: &Sink,
    transform: &Transform,
    dead_letters: &DeadLetters,
    batch: &Batch,
) -> Result<Applied, ApplyError> {
    let mut tx = sink.begin().await?;
    let ranges: Vec<OffsetRange> = batch
        .ranges
        .iter()
        .map(|r| OffsetRange {
            topic: r.topic.to_string(),
            partition: r.partition,
            expected: r.expected,
            next: r.next,
        })
        .collect();
    tx.claim(&ranges).await?;
    let events: Vec<&Event> = batch.accepted.iter().map(|a| &a.event).collect();
    let (activity_keys, mission_keys) = Prior::keys(&events);
    let (activities, missions) = tx.load(&activity_keys, &mission_keys).await?;
    let outcome = transform.apply(
        &events,
        &Prior {
            activities,
            missions,
        },
    )?;

    let late: Vec<Rejected> = outcome
        .rejected
        .into_iter()
        .map(|(i, rejection)| {
            let a = &batch.accepted[i];
            let raw = a
                .raw
                .clone()
                .expect("only completions are refused late, and they keep their bytes");
            Rejected::later(a.position.clone(), raw, rejection)
        })
        .collect();
    let refused: Vec<&Rejected> = batch.rejected.iter().chain(&late).collect();
    if !refused.is_empty() {
        let owned: Vec<Rejected> = refused.iter().map(|r| (*r).clone()).collect();
        dead_letters.send_all(&owned).await?;
    }
    let quarantine: Vec<QuarantineRow> = refused
        .iter()
        .map(|r| QuarantineRow {
            received_at: r.received_at,
            topic: r.position.topic.to_string(),
            partition: r.position.partition,
            offset: r.position.offset,
            key: r.key.clone(),
            payload: r.payload.clone(),
            error_code: r.rejection.code.as_str(),
            error_detail: r.rejection.detail.clone(),
        })
        .collect();
    let c = &outcome.changes;
    let cells = c.daily.len() + c.regional.len() + c.program.len();
    tx.write(c, &quarantine).await?;
    tx.commit().await?;
    Ok(Applied {
        accepted: (batch.accepted.len() - late.len()) as u64,
        unchanged: outcome.unchanged as u64,
        quarantined: quarantine.len() as u64,
        cells,
    })
}
