//! The consumer loop: rebalances, resume positions, decoding, batching,
//! acknowledgements and the `--until-caught-up` drain.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use schemas::{Body, Decoder, ErrorCode, Rejection};
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

use crate::batch::{Accepted, Batch, Builder, PartitionRange, Position, Raw, Rejected};
use crate::{IngestSettings, KafkaSettings, OffsetLookup, Result};

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
    Committed(Vec<PartitionRange>),
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

enum Rebalance {
    Assigned(Vec<(String, i32, Option<Option<i64>>)>),
    Revoked,
}

/// Routes librdkafka's logs into tracing (through [`crate::logs`]) and
/// places newly assigned partitions at the offsets stored in the database.
struct Context {
    lookup: OffsetLookup,
    events: mpsc::UnboundedSender<Rebalance>,
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        crate::logs::log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        crate::logs::error(&error, reason);
    }

    /// Per-partition lag, from the statistics librdkafka emits every
    /// `statistics.interval.ms` (delivered while the loop polls).
    fn stats(&self, stats: Statistics) {
        for (topic, t) in &stats.topics {
            for p in t.partitions.values().filter(|p| p.partition >= 0) {
                // Messages behind the high watermark, for the partitions this
                // member fetches; 0 for the others, so `max by (partition)`
                // over all members is the group's lag.
                let lag = match p.fetch_state.as_str() {
                    "none" | "stopped" | "stopping" => 0,
                    _ if p.consumer_lag_stored >= 0 => p.consumer_lag_stored,
                    _ => p.consumer_lag.max(0),
                };
                metrics::gauge!(
                    "outreach_consumer_lag",
                    "topic" => topic.clone(),
                    "partition" => p.partition.to_string()
                )
                .set(lag as f64);
            }
        }
    }
}

impl ConsumerContext for Context {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let parts: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let stored = lookup_with_retries(&self.lookup, &parts);
                if let Some(stored) = &stored {
                    for ((topic, partition), s) in parts.iter().zip(stored) {
                        let at = s.map_or(Offset::Beginning, Offset::Offset);
                        if let Err(error) = tpl.set_partition_offset(topic, *partition, at) {
                            warn!(%error, topic, partition, "could not set the resume offset");
                        }
                    }
                }
                info!(partitions = ?parts, resume_at = ?stored, "partitions assigned");
                if let Err(error) = consumer.assign(tpl) {
                    error!(%error, "assign failed");
                }
                let list = match stored {
                    Some(s) => parts
                        .into_iter()
                        .zip(s)
                        .map(|((t, p), s)| (t, p, Some(s)))
                        .collect(),
                    None => parts.into_iter().map(|(t, p)| (t, p, None)).collect(),
                };
                let _ = self.events.send(Rebalance::Assigned(list));
            }
            _ => {
                if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
                    warn!(error = ?err, "rebalance error; dropping the assignment");
                }
                info!(partitions = ?parts, "partitions revoked");
                if let Err(error) = consumer.unassign() {
                    error!(%error, "unassign failed");
                }
                let _ = self.events.send(Rebalance::Revoked);
            }
        }
    }
}

/// The look-up runs inside librdkafka's callback: a few quick retries, then
/// give up and let the loop resolve the partitions on their first message.
fn lookup_with_retries(lookup: &OffsetLookup, parts: &[(String, i32)]) -> Option<Vec<Option<i64>>> {
    if parts.is_empty() {
        return Some(Vec::new());
    }
    for attempt in 0..5u32 {
        match lookup(parts) {
            Ok(v) => return Some(v),
            Err(error) => {
                warn!(%error, attempt, "reading stored offsets failed");
                std::thread::sleep(Duration::from_millis(200 << attempt));
            }
        }
    }
    None
}

/// One assigned partition.
#[derive(Debug)]
struct Part {
    /// The stored offset the next batch moves from; `None`: no row yet.
    stored: Option<i64>,
    /// Whether `stored` was read from the database for this assignment.
    resolved: bool,
    /// The next offset to accept; `None`: the first message that comes (the
    /// consumer was placed at the beginning).
    next: Option<i64>,
    /// The first message since (re)positioning has been checked.
    verified: bool,
    /// A seek to `next` was already asked for.
    seeked: bool,
    /// Low and high watermark when assigned (`--until-caught-up`).
    low: i64,
    end: Option<i64>,
}

impl Part {
    /// Back to a freshly read stored offset, keeping the watermarks.
    fn reposition(&mut self, stored: Option<i64>) {
        *self = Part {
            low: self.low,
            end: self.end,
            ..Part::new(stored, true)
        };
    }

    fn new(stored: Option<i64>, resolved: bool) -> Part {
        Part {
            stored,
            resolved,
            next: stored,
            verified: false,
            seeked: false,
            low: 0,
            end: None,
        }
    }
}

type Key = (Arc<str>, i32);

struct Ingest {
    consumer: Arc<StreamConsumer<Context>>,
    decoder: Decoder,
    lookup: OffsetLookup,
    settings: IngestSettings,
    mode: Mode,
    parts: HashMap<Key, Part>,
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
    } = links;
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
    let consumer = Arc::new(consumer);
    consumer.subscribe(&kafka.topics())?;
    info!(brokers = %kafka.brokers, group = %kafka.group_id, topics = ?kafka.topics(), ?mode, "consuming");
    let (missing_tx, mut missing) = watch::channel(Vec::new());
    let unanswered_since = findings.unanswered_since.clone();
    let give_up = Duration::from_millis(kafka.delivery_timeout_ms.into());
    let probe = tokio::spawn(crate::probe::run(
        consumer.clone(),
        kafka.subscribed(),
        findings,
        missing_tx,
        mode == Mode::Follow,
    ));
    let probe = AbortOnDrop(probe);

    let mut s = Ingest {
        consumer: consumer.clone(),
        decoder,
        lookup,
        settings: settings.clone(),
        mode,
        parts: HashMap::new(),
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
        assigned_gauge: assigned,
    };
    let linger = Duration::from_millis(settings.batch_linger_ms);
    tokio::pin!(shutdown);
    loop {
        if (s.resync || s.settling) && s.in_flight == 0 {
            if s.resync {
                s.reposition().await?;
            }
            s.resync = false;
            s.settling = false;
        }
        if s.mode == Mode::UntilCaughtUp && s.caught_up() && s.group_caught_up().await {
            info!("caught up with the end offsets seen at assignment");
            break;
        }
        // A backfill must not wait for ever on a cluster that does not
        // answer; `run` keeps waiting (and /readyz says why), and never
        // takes the lock here.
        let unanswered = (s.mode == Mode::UntilCaughtUp)
            .then(|| *unanswered_since.lock().expect("not poisoned"))
            .flatten();
        if let Some(since) = unanswered.filter(|t| t.elapsed() >= give_up) {
            return Err(crate::Error::Unreachable {
                brokers: kafka.brokers.clone(),
                // librdkafka backs off between attempts: the last refusal
                // may be older than the wait.
                failure: crate::logs::last_failure(since.elapsed() + Duration::from_secs(10)),
                waited: give_up,
            });
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

impl Ingest {
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
                self.parts.clear();
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
                self.parts.clear();
                for (topic, partition, stored) in list {
                    let key = (self.topic(&topic), partition);
                    self.parts
                        .insert(key, Part::new(stored.flatten(), stored.is_some()));
                }
                if self.mode == Mode::UntilCaughtUp {
                    self.fetch_ends().await;
                }
                self.publish_assignment();
            }
        }
        Ok(())
    }

    fn publish_assignment(&self) {
        let n = if self.assigned { self.parts.len() } else { 0 };
        self.assigned_gauge
            .store(n, std::sync::atomic::Ordering::Relaxed);
        metrics::gauge!("outreach_assigned_partitions").set(n as f64);
    }

    /// Reads each partition's watermarks: the end to drain to.
    async fn fetch_ends(&mut self) {
        let keys: Vec<Key> = self
            .parts
            .iter()
            .filter(|(_, p)| p.end.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            let consumer = self.consumer.clone();
            let k = key.clone();
            let marks = tokio::task::spawn_blocking(move || {
                consumer.fetch_watermarks(&k.0, k.1, Duration::from_secs(5))
            })
            .await
            .expect("watermark task does not panic");
            match marks {
                Ok((low, high)) => {
                    if let Some(p) = self.parts.get_mut(&key) {
                        p.low = low;
                        p.end = Some(high);
                        debug!(topic = %key.0, partition = key.1, low, high, "end offset to drain to");
                    }
                }
                Err(error) => {
                    warn!(%error, topic = %key.0, partition = key.1, "could not read watermarks; will retry")
                }
            }
        }
    }

    /// `--until-caught-up` is about the topics, not this member's share: a
    /// member that has drained its partitions also waits until every other
    /// partition is in the database up to its end. Otherwise a drain that
    /// starts beside a dead member (still in the group until its session
    /// expires) would stop with that member's partitions never read.
    async fn group_caught_up(&mut self) -> bool {
        if Instant::now() < self.next_group_check {
            return false;
        }
        self.next_group_check = Instant::now() + Duration::from_millis(self.settings.drain_idle_ms);
        let consumer = self.consumer.clone();
        let topics: Vec<String> = self.topics.keys().cloned().collect();
        let mine: Vec<Key> = self.parts.keys().cloned().collect();
        let lookup = self.lookup.clone();
        let mut ends = std::mem::take(&mut self.others_end);
        let (behind, ends) = tokio::task::spawn_blocking(move || {
            let behind = (|| -> Option<Vec<(String, i32)>> {
                let mut others = Vec::new();
                for t in &topics {
                    let md = consumer
                        .fetch_metadata(Some(t), Duration::from_secs(5))
                        .ok()?;
                    for mt in md.topics() {
                        // A topic the broker could not describe is not a drained one.
                        if mt.error().is_some() {
                            return None;
                        }
                        for p in mt.partitions() {
                            if !mine
                                .iter()
                                .any(|(k, kp)| &**k == t.as_str() && *kp == p.id())
                            {
                                others.push((t.clone(), p.id()));
                            }
                        }
                    }
                }
                if others.is_empty() {
                    return Some(others);
                }
                let stored = lookup(&others).ok()?;
                let mut behind = Vec::new();
                for ((t, p), s) in others.into_iter().zip(stored) {
                    // The end seen the first time this partition was looked
                    // at since the assignment: producers that go on writing
                    // do not keep the drain running.
                    let (low, end) = match ends.get(&(t.clone(), p)) {
                        Some(e) => *e,
                        None => {
                            let e = consumer
                                .fetch_watermarks(&t, p, Duration::from_secs(5))
                                .ok()?;
                            ends.insert((t.clone(), p), e);
                            e
                        }
                    };
                    if s.unwrap_or(low) < end {
                        behind.push((t, p));
                    }
                }
                Some(behind)
            })();
            (behind, ends)
        })
        .await
        .unwrap_or((None, HashMap::new()));
        self.others_end = ends;
        match behind {
            Some(b) if b.is_empty() => true,
            Some(b) => {
                debug!(partitions = ?b, "drained here; waiting for partitions other members hold");
                false
            }
            None => false,
        }
    }

    fn caught_up(&mut self) -> bool {
        if !self.assigned
            || self.in_flight > 0
            || !self.builder.is_empty()
            || self.resync
            || self.settling
            || self.last_message.elapsed() < Duration::from_millis(self.settings.drain_idle_ms)
        {
            return false;
        }
        self.parts.values().all(|p| match p.end {
            Some(end) => p.next.unwrap_or(p.low) >= end,
            None => false,
        })
    }

    async fn on_message(&mut self, m: &BorrowedMessage<'_>) -> Result<()> {
        self.last_message = Instant::now();
        self.summary.messages += 1;
        metrics::counter!("outreach_messages_total", "topic" => m.topic().to_owned()).increment(1);
        let key = (self.topic(m.topic()), m.partition());
        let offset = m.offset();
        if !self.parts.contains_key(&key) {
            debug!(topic = %key.0, partition = key.1, offset, "message from a partition not assigned here; skipped");
            return Ok(());
        }
        if !self.parts[&key].resolved && self.resolve(&key).await? {
            // Repositioned at the beginning: this message comes again in order.
            return Ok(());
        }
        let part = self.parts.get_mut(&key).expect("checked above");
        if !part.verified {
            match part.next {
                None => {}
                Some(n) if offset == n => {}
                Some(n) if offset < n => {
                    debug!(topic = %key.0, partition = key.1, offset, resume = n, "already applied; skipped");
                    return Ok(());
                }
                Some(n) if !part.seeked => {
                    info!(topic = %key.0, partition = key.1, offset, resume = n, "consumer is ahead of the database; seeking back");
                    part.seeked = true;
                    if let Err(error) = self.consumer.seek(
                        &key.0,
                        key.1,
                        Offset::Offset(n),
                        Duration::from_secs(10),
                    ) {
                        warn!(%error, "seek failed");
                    }
                    return Ok(());
                }
                Some(n) => {
                    warn!(topic = %key.0, partition = key.1, offset, resume = n, "offsets {n}..{offset} are gone from the topic (retention?); continuing");
                }
            }
            part.verified = true;
        } else if part.next.is_some_and(|n| offset < n) {
            return Ok(());
        }
        part.next = Some(offset + 1);
        self.builder.cover(&key.0, key.1, part.stored, offset);

        let position = Position {
            topic: key.0.clone(),
            partition: key.1,
            offset,
            timestamp_ms: m.timestamp().to_millis(),
        };
        let started = Instant::now();
        let (headers, header_problem) = read_headers(m);
        self.builder.weigh(
            m.payload_len()
                + m.key().map_or(0, <[u8]>::len)
                + headers
                    .iter()
                    .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len))
                    .sum::<usize>(),
        );
        let decoded = match header_problem {
            Some(r) => Err(r),
            None => self.decoder.decode(&schemas::Message {
                headers: &headers,
                value: m.payload(),
            }),
        };
        self.summary.decode_ns += started.elapsed().as_nanos() as u64;
        let owned_headers = || {
            headers
                .iter()
                .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                .collect()
        };
        match decoded {
            Ok(event) => {
                self.summary.accepted += 1;
                let raw = matches!(event.body, Body::Completed(_)).then(|| Raw {
                    key: m.key().map(<[u8]>::to_vec),
                    payload: m.payload().unwrap_or_default().to_vec(),
                    headers: owned_headers(),
                });
                self.builder.accept(Accepted {
                    event,
                    position,
                    raw,
                });
            }
            Err(rejection) => {
                self.summary.rejected += 1;
                debug!(topic = %key.0, partition = key.1, offset, code = %rejection.code, detail = %rejection.detail, "message quarantined");
                self.builder.reject(Rejected {
                    position,
                    received_at: Utc::now(),
                    key: m.key().map(<[u8]>::to_vec),
                    payload: m.payload().unwrap_or_default().to_vec(),
                    headers: owned_headers(),
                    rejection,
                });
            }
        }
        Ok(())
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
        let p = self
            .parts
            .get_mut(key)
            .expect("resolving an assigned partition");
        p.reposition(stored);
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
                p.seeked = true;
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
        let mut keys: Vec<Key> = self.parts.keys().cloned().collect();
        keys.sort();
        let stored = self.stored(&keys).await?;
        for (key, stored) in keys.into_iter().zip(stored) {
            let p = self.parts.get_mut(&key).expect("listed above");
            p.reposition(stored);
            p.seeked = true;
            let at = stored.map_or(Offset::Beginning, Offset::Offset);
            if let Err(error) = self
                .consumer
                .seek(&key.0, key.1, at, Duration::from_secs(10))
            {
                warn!(%error, topic = %key.0, partition = key.1, "seek failed; will seek on the next message");
                p.seeked = false;
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
        for r in &batch.ranges {
            if let Some(p) = self.parts.get_mut(&(r.topic.clone(), r.partition)) {
                p.stored = Some(r.next);
            }
        }
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
                    if self.parts.contains_key(&(r.topic.clone(), r.partition)) {
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

/// The message's headers; a header name that is not UTF-8 (which the Kafka
/// client cannot represent) refuses the message instead of crashing.
fn read_headers<'a>(m: &'a BorrowedMessage<'_>) -> (Vec<schemas::Header<'a>>, Option<Rejection>) {
    let Some(h) = m.headers() else {
        return (Vec::new(), None);
    };
    let read = std::panic::catch_unwind(AssertUnwindSafe(|| {
        (0..h.count())
            .filter_map(|i| h.try_get(i))
            .map(|x| schemas::Header {
                key: x.key,
                value: x.value,
            })
            .collect::<Vec<_>>()
    }));
    match read {
        Ok(v) => (v, None),
        Err(_) => (
            Vec::new(),
            Some(Rejection::new(
                ErrorCode::BadHeader,
                "a header name is not valid UTF-8",
            )),
        ),
    }
}
