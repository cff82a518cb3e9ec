//! The life of one batch, whoever applies it (`run`'s worker, `bench
//! --stages`): one transaction that claims the batch's offsets
//! (compare-and-set: a fenced worker stops here), loads the ledger rows the
//! batch touches, computes the changes (the transform stage), sends every
//! refused message to the dead-letter topic, writes the changes and the
//! quarantine, and commits.

use std::time::{Duration, Instant};

use ingest::{Batch, DeadLetters, Rejected};
use schemas::{ErrorCode, Event};
use sink::{QuarantineRow, Sink};
use transform::{Prior, Transform};

/// Where one batch's time went.
#[derive(Debug, Default, Clone, Copy)]
pub struct Timings {
    /// Opening the transaction: on SQLite, waiting for the write lock.
    pub begin: Duration,
    /// Claiming the offsets and loading the ledger rows.
    pub load: Duration,
    /// The transform stage (plan and polars roll-up).
    pub transform: Duration,
    /// The writes, per table group.
    pub writes: sink::WriteTimings,
    /// In the database: everything but the transform (and the dead
    /// letters' send, which precedes the writes).
    pub database: Duration,
}

impl Timings {
    /// The whole transaction: the database's part and the transform's.
    pub fn transaction(&self) -> Duration {
        self.database + self.transform
    }
}

/// What a committed batch did.
#[derive(Debug)]
pub struct Applied {
    pub accepted: u64,
    pub unchanged: u64,
    pub quarantined: u64,
    /// Roll-up rows written (deltas).
    pub cells: usize,
    /// Quarantined messages' error codes, for the metrics.
    pub codes: Vec<ErrorCode>,
    pub timings: Timings,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Sink(#[from] sink::Error),
    #[error(transparent)]
    Transform(#[from] transform::Error),
    #[error(transparent)]
    DeadLetter(#[from] ingest::Error),
}

impl ApplyError {
    /// Worth applying the same batch again (a fence is not: the partition
    /// is re-read from the stored offset).
    pub fn is_retryable(&self) -> bool {
        match self {
            ApplyError::Sink(e) => e.is_retryable(),
            ApplyError::DeadLetter(_) => true,
            ApplyError::Transform(_) => false,
        }
    }
}

/// Applies `batch` in one transaction. `dead_letters`: where refused
/// messages go before the commit (`None` for the benchmark's stages, which
/// have no broker).
pub async fn apply(
    sink: &Sink,
    transform: &Transform,
    dead_letters: Option<&mut DeadLetters>,
    batch: &Batch,
) -> Result<Applied, ApplyError> {
    let mut t = Timings::default();
    let started = Instant::now();
    let mut tx = sink.begin().await?;
    t.begin = started.elapsed();
    let loading = Instant::now();
    tx.claim(&batch.ranges).await?;
    let events: Vec<&Event> = batch.accepted.iter().map(|a| &a.event).collect();
    let (activity_keys, mission_keys) = Prior::keys(&events);
    let (activities, missions) = tx.load(&activity_keys, &mission_keys).await?;
    t.load = loading.elapsed();
    let transforming = Instant::now();
    let outcome = transform.apply(
        &events,
        &Prior {
            activities,
            missions,
        },
    )?;
    t.transform = transforming.elapsed();

    let late = refused_late(batch, outcome.rejected);
    let refused: Vec<&Rejected> = batch.rejected.iter().chain(&late).collect();
    if let Some(dead_letters) = dead_letters
        && !refused.is_empty()
    {
        dead_letters.send_all(&refused).await?;
    }
    let quarantine: Vec<QuarantineRow> = refused.iter().map(|r| quarantine_row(r)).collect();
    let c = &outcome.changes;
    let cells = c.daily.len() + c.regional.len() + c.program.len();
    t.writes = tx.write(c, &quarantine).await?;
    tx.commit().await?;
    t.database = started.elapsed() - t.transform;
    Ok(Applied {
        codes: quarantine.iter().map(|q| q.error_code).collect(),
        accepted: (batch.accepted.len() - late.len()) as u64,
        unchanged: outcome.unchanged as u64,
        quarantined: quarantine.len() as u64,
        cells,
        timings: t,
    })
}

/// The accepted events the transform refused once it saw the ledger
/// (completions that do not fit their mission), whole, with the reason.
fn refused_late(batch: &Batch, refused: Vec<(usize, schemas::Rejection)>) -> Vec<Rejected> {
    refused
        .into_iter()
        .map(|(i, rejection)| {
            let a = &batch.accepted[i];
            let raw = a
                .raw
                .clone()
                .expect("only completions are refused late, and they keep their bytes");
            Rejected::later(a.position.clone(), raw, rejection)
        })
        .collect()
}

/// A refused message as the quarantine keeps it.
fn quarantine_row(r: &Rejected) -> QuarantineRow<'_> {
    QuarantineRow {
        received_at: r.received_at,
        topic: &r.position.topic,
        partition: r.position.partition,
        offset: r.position.offset,
        key: r.key.as_deref(),
        payload: &r.payload,
        error_code: r.rejection.code,
        error_detail: &r.rejection.detail,
    }
}
