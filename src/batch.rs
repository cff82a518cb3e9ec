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
    /// The transform refused, once it read the ledger, an event that
    /// cannot be refused then, so ingest did not keep its bytes. The batch
    /// is not committed: the message is not lost, and the run stops.
    #[error(
        "the transform refused the {event_type} event at {topic}/{partition}@{offset} after reading the ledger, which only mission completions can be, so its bytes were not kept for the quarantine; this is a bug in outreach: please report it with this line"
    )]
    RefusedUnkept {
        event_type: &'static str,
        topic: String,
        partition: i32,
        offset: i64,
    },
}

impl ApplyError {
    /// Worth applying the same batch again (a fence is not: the partition
    /// is re-read from the stored offset).
    pub fn is_retryable(&self) -> bool {
        match self {
            ApplyError::Sink(e) => e.is_retryable(),
            ApplyError::DeadLetter(_) => true,
            ApplyError::Transform(_) | ApplyError::RefusedUnkept { .. } => false,
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

    let late = refused_late(batch, outcome.rejected)?;
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
fn refused_late(
    batch: &Batch,
    refused: Vec<(usize, schemas::Rejection)>,
) -> Result<Vec<Rejected>, ApplyError> {
    refused
        .into_iter()
        .map(|(i, rejection)| {
            let a = &batch.accepted[i];
            match &a.raw {
                Some(raw) => Ok(Rejected::later(a.position.clone(), raw.clone(), rejection)),
                None => Err(ApplyError::RefusedUnkept {
                    event_type: a.event.body.type_name(),
                    topic: a.position.topic.to_string(),
                    partition: a.position.partition,
                    offset: a.position.offset,
                }),
            }
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use chrono::{NaiveDate, Utc};
    use ingest::{Accepted, Position, Raw};
    use schemas::{Activity, Amount, Body, Completion, Dims, Id, Metric, Rejection};

    use super::*;

    fn accepted(body: Body, offset: i64) -> Accepted {
        let id = |s: &str| Id::parse(s).unwrap();
        let event = Event {
            id: format!("e{offset}"),
            institution: id("h1"),
            time: Utc::now(),
            arrived: None,
            body,
        };
        let position = Position {
            topic: "t".into(),
            partition: 0,
            offset,
            timestamp_ms: None,
        };
        Accepted::new(event, position, || Raw {
            key: Some(b"k".to_vec()),
            payload: format!("bytes of {offset}").into_bytes(),
            headers: Vec::new(),
        })
    }

    /// A completion keeps its bytes and is quarantined with them; an event
    /// that cannot be refused late keeps none, and refusing it anyway is
    /// an error that names it, not a panic or a lost message.
    #[test]
    fn late_refusals_are_kept_whole_or_reported() {
        let day = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        let id = |s: &str| Id::parse(s).unwrap();
        let completion = accepted(
            Body::Completed(Completion {
                mission_id: id("m1"),
                end_date: day,
            }),
            7,
        );
        let activity = accepted(
            Body::Activity(Activity {
                record_id: id("r1"),
                revision: 1,
                program_id: id("p"),
                mission_id: None,
                facility_id: id("f"),
                region_code: "620921".into(),
                occurred_on: day,
                metric: Metric::Lectures,
                value: Amount::from_units(1),
                dims: Dims::default(),
            }),
            8,
        );
        assert!(completion.raw.is_some() && activity.raw.is_none());
        let batch = Batch {
            accepted: vec![completion, activity],
            rejected: Vec::new(),
            ranges: Vec::new(),
            started: Instant::now(),
        };
        let refusal = || Rejection::new(ErrorCode::EndBeforeStart, "ends before it starts");
        let kept = refused_late(&batch, vec![(0, refusal())]).unwrap();
        assert_eq!(kept[0].payload, b"bytes of 7");
        assert_eq!(kept[0].position.offset, 7);
        let err = refused_late(&batch, vec![(0, refusal()), (1, refusal())]).unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("t/0@8"), "{err}");
    }
}
