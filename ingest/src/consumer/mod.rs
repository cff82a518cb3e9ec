//! The ingest stage's consumer: a member of the group that reads its
//! partitions from where the database says, cuts batches, and waits for the
//! sink's answers. This file is the loop and the batch's way out and back;
//! beside it, `context.rs` (librdkafka's callbacks: logs, lag, rebalances),
//! `partitions.rs` (where each partition stands: pure, unit-tested),
//! `message.rs` (one message: positioned, decoded, batched) and `drain.rs`
//! (`--until-caught-up`).

mod context;
mod drain;
mod message;
mod partitions;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use schemas::Decoder;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::batch::{Batch, Builder};
use crate::{IngestSettings, KafkaSettings, OffsetLookup, Result};
use context::{Context, Rebalance};
use partitions::{Key, Partitions};
use schemas::OffsetRange;

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

/// A subscribed topic the cluster does not know: reported once, with the
/// setting that names it, by the probe (`probe.rs`), not by each client call.
fn unknown_topic(error: &KafkaError) -> bool {
    error.rdkafka_error_code() == Some(rdkafka::error::RDKafkaErrorCode::UnknownTopicOrPartition)
}

/// Closes the consumer (leaving the group) once the last reference is
/// released: a metadata call of the stopped probe may still hold one on a
/// blocking thread, for at most its 3 s time-out.
async fn close(mut consumer: Arc<StreamConsumer<Context>>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Arc::try_unwrap(consumer) {
            Ok(c) => {
                let _ = tokio::task::spawn_blocking(move || drop(c)).await;
                return;
            }
            Err(_) if Instant::now() > deadline => {
                warn!("the consumer is still in use; it closes when released");
                return;
            }
            Err(c) => {
                consumer = c;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl AbortOnDrop {
    /// Aborts the task and waits until it is gone (with what it held).
    async fn stop(mut self) {
        self.0.abort();
        let _ = (&mut self.0).await;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

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
/// to every batch sent, and leaves the group.
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
    let (missing_tx, mut missing) = watch::channel(Vec::new());
    let (misconfigured_tx, mut misconfigured) = watch::channel(None);
    let unanswered_since = findings.unanswered_since.clone();
    let probe = AbortOnDrop(tokio::spawn(crate::probe::run(
        consumer.clone(),
        kafka.subscribed(),
        findings,
        missing_tx,
        crate::diagnose::Doctor::new(kafka),
        misconfigured_tx,
        mode == Mode::Follow,
    )));
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
    let linger = Duration::from_millis(settings.batch_linger_ms);
    tokio::pin!(shutdown);
    loop {
        if s.before_reading(kafka, &unanswered_since).await? {
            break;
        }
        let deadline = s
            .builder
            .started()
            .map(|t| tokio::time::Instant::from_std(t + linger));
        let reading = !s.resync && !s.settling;
        tokio::select! {
            biased;
            _ = &mut shutdown => {
                info!("shutdown requested: finishing the batch in flight");
                break;
            }
            Some(ack) = acks.recv() => s.on_ack(ack),
            // A backfill cannot drain a topic that does not exist: say so
            // and stop, rather than wait for it in silence.
            Ok(()) = missing.changed(), if s.mode == Mode::UntilCaughtUp => {
                let topics = missing.borrow_and_update().clone();
                if !topics.is_empty() {
                    return Err(crate::Error::MissingTopics {
                        brokers: kafka.brokers.clone(),
                        topics,
                    });
                }
            }
            Ok(()) = misconfigured.changed() => {
                if let Some(m) = misconfigured.borrow_and_update().clone() {
                    return Err(m.into());
                }
            }
            Some(ev) = s.events.recv() => s.on_rebalance(ev, &out).await?,
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                s.flush(&out).await?;
            }
            m = consumer.recv(), if reading => match m {
                Ok(m) => {
                    s.on_message(&m).await?;
                    if s.builder.len() >= s.settings.batch_max_messages
                        || s.builder.bytes() >= s.settings.batch_max_bytes
                    {
                        s.flush(&out).await?;
                    }
                }
                Err(error) => {
                    // A missing topic: the probe says it. A broker out of
                    // reach: `logs` says it, once.
                    if unknown_topic(&error) || crate::logs::is_connection_error(&error) {
                        debug!(%error, "kafka consumer error");
                    } else {
                        warn!(%error, "kafka consumer error");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            // Nothing more to read right now and the database is idle: send
            // what there is. Under a backlog the database is busy and the
            // batch fills up to its limits; caught up, each batch holds what
            // arrived during the last transaction, so it is fresh.
            _ = std::future::ready(()), if reading && s.in_flight == 0 && !s.builder.is_empty() => {
                s.flush(&out).await?;
            }
            _ = tokio::time::sleep(Duration::from_millis(100)), if s.mode == Mode::UntilCaughtUp => {}
        }
    }
    s.flush(&out).await?;
    while s.in_flight > 0 {
        match acks.recv().await {
            Some(ack) => s.on_ack(ack),
            None => break,
        }
    }
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

/// The consumer, subscribed, with the context that reports its rebalances.
fn subscribe(
    kafka: &KafkaSettings,
    settings: &IngestSettings,
    lookup: &OffsetLookup,
    mode: Mode,
) -> Result<(
    Arc<StreamConsumer<Context>>,
    mpsc::UnboundedReceiver<Rebalance>,
)> {
    let (tx, events) = mpsc::unbounded_channel();
    let context = Context {
        lookup: lookup.clone(),
        events: tx,
    };
    let consumer: StreamConsumer<Context> = kafka
        .consumer_config(settings.max_message_bytes)
        // Per-partition lag for the metrics (`Context::stats`).
        .set("statistics.interval.ms", "1000")
        .create_with_context(context)?;
    consumer.subscribe(&kafka.topics())?;
    info!(brokers = %kafka.brokers, group = %kafka.group_id, topics = ?kafka.topics(), ?mode, "consuming");
    Ok((Arc::new(consumer), events))
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

    /// Before each turn of the loop: repositions after a fence once every
    /// batch in flight is answered; says whether a drain is done; gives up a
    /// drain on a cluster that has not answered for
    /// `kafka.delivery_timeout_ms` (`run` keeps waiting, and /readyz says
    /// why).
    async fn before_reading(
        &mut self,
        kafka: &KafkaSettings,
        unanswered_since: &std::sync::Mutex<Option<Instant>>,
    ) -> Result<bool> {
        if (self.resync || self.settling) && self.in_flight == 0 {
            if self.resync {
                self.reposition().await?;
            }
            self.resync = false;
            self.settling = false;
        }
        if self.mode != Mode::UntilCaughtUp {
            return Ok(false);
        }
        if self.caught_up() && self.group_caught_up().await {
            info!("caught up with the end offsets seen at assignment");
            return Ok(true);
        }
        let give_up = Duration::from_millis(kafka.delivery_timeout_ms.into());
        let unanswered = *unanswered_since.lock().expect("not poisoned");
        if let Some(since) = unanswered.filter(|t| t.elapsed() >= give_up) {
            return Err(crate::Error::Unreachable {
                brokers: kafka.brokers.clone(),
                // librdkafka backs off between attempts: the last refusal
                // may be older than the wait.
                failure: crate::logs::last_failure(since.elapsed() + Duration::from_secs(10)),
                waited: give_up,
            });
        }
        Ok(false)
    }

    fn topic(&mut self, name: &str) -> Arc<str> {
        self.topics
            .entry(name.to_owned())
            .or_insert_with(|| Arc::from(name))
            .clone()
    }

    async fn on_rebalance(&mut self, ev: Rebalance, out: &mpsc::Sender<Batch>) -> Result<()> {
        self.summary.rebalances += 1;
        metrics::counter!("outreach_rebalances_total").increment(1);
        match ev {
            Rebalance::Revoked => {
                self.flush(out).await?;
                self.parts.revoke();
                // An empty assignment is not a drained one: wait for the next.
                self.assigned = false;
                self.publish_assignment();
                self.settling = true;
            }
            Rebalance::Assigned(list) => {
                self.assigned = true;
                self.others_end.clear();
                // The drain's quiet period counts from here: the end offsets
                // some brokers report are too low, so only silence after the
                // assignment says the partitions are empty.
                self.last_message = Instant::now();
                let list: Vec<(Key, Option<Option<i64>>)> = list
                    .into_iter()
                    .map(|(topic, partition, stored)| ((self.topic(&topic), partition), stored))
                    .collect();
                self.parts.assign(list);
                if self.mode == Mode::UntilCaughtUp {
                    self.fetch_ends().await;
                    self.publish_left();
                }
                self.publish_assignment();
            }
        }
        Ok(())
    }

    /// What is left of a drain, after an assignment and after each batch.
    fn publish_left(&self) {
        if self.mode == Mode::UntilCaughtUp {
            self.backlog.set(self.summary.messages, self.parts.left());
        }
    }

    fn publish_assignment(&self) {
        let n = if self.assigned { self.parts.len() } else { 0 };
        self.assigned_gauge
            .store(n, std::sync::atomic::Ordering::Relaxed);
        metrics::gauge!("outreach_assigned_partitions").set(n as f64);
    }

    async fn stored(&self, keys: &[Key]) -> Result<Vec<Option<i64>>> {
        let parts: Vec<(String, i32)> = keys.iter().map(|(t, p)| (t.to_string(), *p)).collect();
        let lookup = self.lookup.clone();
        let mut delay = Duration::from_millis(200);
        loop {
            let parts = parts.clone();
            let lookup = lookup.clone();
            match tokio::task::spawn_blocking(move || lookup(&parts))
                .await
                .expect("look-up does not panic")
            {
                Ok(v) => return Ok(v),
                Err(error) => {
                    warn!(%error, retry_in = ?delay, "reading stored offsets failed");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// A partition assigned while the database could not be read.
    /// Returns whether the consumer was moved (the current message is then stale).
    async fn resolve(&mut self, key: &Key) -> Result<bool> {
        let stored = self.stored(std::slice::from_ref(key)).await?[0];
        self.parts.place(key, stored);
        if stored.is_some() {
            // The check on the first message seeks if the consumer is elsewhere.
            return Ok(false);
        }
        // Kafka's committed offset may be ahead of a database that never
        // applied anything here: start from the beginning.
        match self
            .consumer
            .seek(&key.0, key.1, Offset::Beginning, Duration::from_secs(10))
        {
            Ok(()) => {
                self.parts.seek_asked(key);
                Ok(true)
            }
            Err(error) => {
                warn!(%error, topic = %key.0, partition = key.1, "seek to the beginning failed; starting where the consumer is");
                Ok(false)
            }
        }
    }

    /// After a fence: every partition back to its stored offset.
    async fn reposition(&mut self) -> Result<()> {
        let keys = self.parts.keys();
        let stored = self.stored(&keys).await?;
        for (key, stored) in keys.into_iter().zip(stored) {
            self.parts.place(&key, stored);
            let at = stored.map_or(Offset::Beginning, Offset::Offset);
            match self
                .consumer
                .seek(&key.0, key.1, at, Duration::from_secs(10))
            {
                Ok(()) => self.parts.seek_asked(&key),
                Err(error) => {
                    warn!(%error, topic = %key.0, partition = key.1, "seek failed; will seek on the next message")
                }
            }
        }
        info!(
            partitions = self.parts.len(),
            "repositioned at the stored offsets after a fenced batch"
        );
        Ok(())
    }

    async fn flush(&mut self, out: &mpsc::Sender<Batch>) -> Result<()> {
        let Some(batch) = self.builder.take() else {
            return Ok(());
        };
        self.parts.cut(&batch.ranges);
        self.publish_left();
        self.in_flight += 1;
        self.summary.batches += 1;
        debug!(
            messages = batch.len(),
            partitions = batch.ranges.len(),
            "batch cut"
        );
        if out.send(batch).await.is_err() {
            // The sink is gone; its own error says why.
            self.in_flight -= 1;
        }
        Ok(())
    }

    fn on_ack(&mut self, ack: Ack) {
        self.in_flight = self.in_flight.saturating_sub(1);
        match ack {
            Ack::Committed(ranges) => {
                let mut tpl = TopicPartitionList::new();
                for r in &ranges {
                    if self.parts.contains(&(r.topic.clone(), r.partition)) {
                        let _ =
                            tpl.add_partition_offset(&r.topic, r.partition, Offset::Offset(r.next));
                    }
                }
                if tpl.count() > 0
                    && let Err(error) = self.consumer.commit(&tpl, CommitMode::Async)
                {
                    debug!(%error, "committing the offset hint to kafka failed (harmless)");
                }
            }
            Ack::Fenced => {
                self.summary.fenced += 1;
                self.builder = Builder::default();
                self.resync = true;
            }
        }
    }
}
