//! The ingest stage's consumer: a member of the group that reads its
//! partitions from where the database says, cuts batches, and waits for the
//! sink's answers. This file is the stage's face (how long it runs, its
//! channels, its counts), the loop's state, and [`run`] from
//! start to end. Beside it, each concern of the loop in its own file:
//! `lifecycle.rs` (the consumer subscribed and closed, the metadata probe
//! beside it), `reading.rs` (the loop and its turns), `message.rs` (one
//! message: positioned, decoded, batched), `batches.rs` (a batch's way out
//! and its answer's way back), `rebalance.rs` (partitions assigned and
//! revoked), `resume.rs` (reading the stored offsets and seeking to them),
//! `drain.rs` (`--until-caught-up`), `context.rs` (librdkafka's callbacks:
//! logs, lag, rebalances) and `partitions.rs` (where each partition stands:
//! pure, unit-tested).

mod batches;
mod context;
mod drain;
mod lifecycle;
mod message;
mod partitions;
mod reading;
mod rebalance;
mod resume;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use rdkafka::consumer::StreamConsumer;
use schemas::Decoder;
use schemas::OffsetRange;
use tokio::sync::mpsc;
use tracing::info;

use crate::batch::{Batch, Builder};
use crate::{IngestSettings, KafkaSettings, OffsetLookup, Result};
use context::{Context, Rebalance};
use lifecycle::{Probe, close, subscribe};
use partitions::Partitions;

/// How long to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Until the shutdown future resolves.
    Follow,
    /// Until every assigned partition is drained to the end offsets seen when
    /// it was assigned, and then quiet for `ingest.drain_idle_ms`.
    UntilCaughtUp,
}

/// What the sink says about a batch it was sent.
#[derive(Debug, Clone)]
pub enum Ack {
    /// Committed: the database now resumes these partitions at `next`.
    Committed(Vec<OffsetRange>),
    /// Refused by the compare-and-set on a stored offset: another worker
    /// wrote one of its partitions. Everything not committed is re-read from
    /// the stored offsets.
    Fenced,
}

/// The channels between ingest and the sink: batches go out (bounded: a
/// full channel stops the reading), answers come back.
pub struct Links {
    pub batches: mpsc::Sender<Batch>,
    pub acks: mpsc::UnboundedReceiver<Ack>,
    /// Partitions currently assigned to this member, for readiness.
    pub assigned: Arc<std::sync::atomic::AtomicUsize>,
    /// Whether the cluster answered the last metadata probe, and which
    /// subscribed topics it says do not exist, for readiness.
    pub probe: crate::probe::Findings,
    /// [`Mode::UntilCaughtUp`]: how far along the drain is.
    pub backlog: Arc<Backlog>,
}

/// How far a drain ([`Mode::UntilCaughtUp`]) is, as of the last batch cut:
/// messages read, and messages between the read positions and the end
/// offsets this member drains to. For the progress of a backfill.
#[derive(Debug, Default)]
pub struct Backlog(std::sync::Mutex<Option<(u64, u64)>>);

impl Backlog {
    /// (read, left), once the end offsets are known: both of one batch cut.
    pub fn get(&self) -> Option<(u64, u64)> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set(&self, read: u64, left: Option<u64>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = left.map(|left| (read, left));
    }
}

/// Counts for the final log line and for tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub messages: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub batches: u64,
    pub fenced: u64,
    pub rebalances: u64,
    /// Time spent decoding and validating, in nanoseconds.
    pub decode_ns: u64,
}

/// The loop's state: the consumer, where each partition stands, the batch
/// in progress, and what keeps the loop from reading.
struct Ingest {
    consumer: Arc<StreamConsumer<Context>>,
    decoder: Decoder,
    lookup: OffsetLookup,
    settings: IngestSettings,
    mode: Mode,
    parts: Partitions,
    topics: HashMap<String, Arc<str>>,
    builder: Builder,
    in_flight: usize,
    /// A batch was fenced: stop reading until every batch in flight is
    /// answered, then reposition every partition at its stored offset.
    resync: bool,
    /// Partitions were revoked: stop reading until every batch in flight is
    /// answered, so the next assignment reads offsets that include them.
    settling: bool,
    /// The group has given this member its partitions (possibly none) and
    /// not taken them back since.
    assigned: bool,
    /// `--until-caught-up`: (low, high) watermarks of partitions other
    /// members hold, as first seen since the last assignment.
    others_end: HashMap<(String, i32), (i64, i64)>,
    /// `--until-caught-up`: when to look again at the partitions other
    /// members hold.
    next_group_check: Instant,
    last_message: Instant,
    events: mpsc::UnboundedReceiver<Rebalance>,
    summary: Summary,
    assigned_gauge: Arc<std::sync::atomic::AtomicUsize>,
    backlog: Arc<Backlog>,
}

/// Runs the stage until `shutdown` resolves (or, in [`Mode::UntilCaughtUp`],
/// until drained), then sends the batch in progress, waits for the answers
/// to every batch sent, and leaves the group. An error stops it at once,
/// without the batch in progress.
pub async fn run(
    kafka: &KafkaSettings,
    settings: &IngestSettings,
    decoder: Decoder,
    lookup: OffsetLookup,
    links: Links,
    mode: Mode,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary> {
    let Links {
        batches: out,
        mut acks,
        assigned,
        probe: findings,
        backlog,
    } = links;
    let (consumer, events) = subscribe(kafka, settings, &lookup, mode)?;
    let mut probe = Probe::start(kafka, consumer.clone(), findings, mode);
    let mut s = Ingest::new(
        kafka,
        settings,
        consumer.clone(),
        decoder,
        lookup,
        mode,
        events,
        assigned,
        backlog,
    );
    s.read(kafka, &mut probe, &out, &mut acks, shutdown).await?;
    s.flush(&out).await?;
    s.await_answers(&mut acks).await;
    drop(out);
    let summary = std::mem::take(&mut s.summary);
    // Leave the group before returning, so that a caller that goes on (the
    // demo, tests) or exits has no consumer still closing in the
    // background. The probe holds a reference: stop it first.
    probe.stop().await;
    drop(s);
    close(consumer).await;
    info!(summary = ?summary, "ingest stopped");
    Ok(summary)
}

impl Ingest {
    #[allow(clippy::too_many_arguments)] // the loop's parts, each once
    fn new(
        kafka: &KafkaSettings,
        settings: &IngestSettings,
        consumer: Arc<StreamConsumer<Context>>,
        decoder: Decoder,
        lookup: OffsetLookup,
        mode: Mode,
        events: mpsc::UnboundedReceiver<Rebalance>,
        assigned_gauge: Arc<std::sync::atomic::AtomicUsize>,
        backlog: Arc<Backlog>,
    ) -> Ingest {
        Ingest {
            consumer,
            decoder,
            lookup,
            settings: settings.clone(),
            mode,
            parts: Partitions::default(),
            topics: kafka
                .topics()
                .iter()
                .map(|t| (t.to_string(), Arc::from(*t)))
                .collect(),
            builder: Builder::default(),
            in_flight: 0,
            resync: false,
            settling: false,
            assigned: false,
            next_group_check: Instant::now(),
            others_end: HashMap::new(),
            last_message: Instant::now(),
            events,
            summary: Summary::default(),
            assigned_gauge,
            backlog,
        }
    }

    /// The shared name of a topic, so a message costs no allocation for it.
    fn topic(&mut self, name: &str) -> Arc<str> {
        self.topics
            .entry(name.to_owned())
            .or_insert_with(|| Arc::from(name))
            .clone()
    }
}
