//! The consumer's start and end, and the metadata probe that runs beside it
//! for as long as the stage does. Apart from the loop because each has an
//! order that matters: the consumer is subscribed with the context that
//! reports its rebalances, and closed (leaving the group) only once the
//! probe has let go of it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::Mode;
use super::context::{Context, Rebalance};
use crate::diagnose::{Doctor, Misconfigured};
use crate::probe::{Findings, Topic};
use crate::{IngestSettings, KafkaSettings, OffsetLookup, Result};

/// The consumer, subscribed, with the context that reports its rebalances.
pub(super) fn subscribe(
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

/// Closes the consumer (leaving the group) once the last reference is
/// released: a metadata call of the stopped probe may still hold one on a
/// blocking thread, for at most its 3 s time-out.
pub(super) async fn close(mut consumer: Arc<StreamConsumer<Context>>) {
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

/// The metadata probe's task ([`crate::probe::run`]) as the loop sees it:
/// what it found that stops the loop, and since when the cluster is silent.
pub(super) struct Probe {
    task: AbortOnDrop,
    /// Subscribed topics the cluster says do not exist.
    pub missing: watch::Receiver<Vec<Topic>>,
    /// A setting that keeps the client from ever talking to the cluster.
    pub misconfigured: watch::Receiver<Option<Misconfigured>>,
    /// Since when no round was answered: a drain gives up after
    /// `kafka.delivery_timeout_ms`.
    pub unanswered_since: Arc<Mutex<Option<Instant>>>,
}

impl Probe {
    /// Starts the probe on `consumer`; it waits for missing topics (and says
    /// so) only in [`Mode::Follow`].
    pub fn start(
        kafka: &KafkaSettings,
        consumer: Arc<StreamConsumer<Context>>,
        findings: Findings,
        mode: Mode,
    ) -> Probe {
        let (missing_tx, missing) = watch::channel(Vec::new());
        let (misconfigured_tx, misconfigured) = watch::channel(None);
        let unanswered_since = findings.unanswered_since.clone();
        let task = AbortOnDrop(tokio::spawn(crate::probe::run(
            consumer,
            kafka.subscribed(),
            findings,
            missing_tx,
            Doctor::new(kafka),
            misconfigured_tx,
            mode == Mode::Follow,
        )));
        Probe {
            task,
            missing,
            misconfigured,
            unanswered_since,
        }
    }

    /// After a change of the missing topics: a backfill cannot drain a
    /// topic that does not exist, so any is an error that says so (rather
    /// than a wait in silence).
    pub fn none_missing(&mut self, brokers: &str) -> Result<()> {
        let topics = self.missing.borrow_and_update().clone();
        if topics.is_empty() {
            return Ok(());
        }
        Err(crate::Error::MissingTopics {
            brokers: brokers.to_owned(),
            topics,
        })
    }

    /// After a change of the verdict: a setting at fault is an error in
    /// every mode, since no wait fixes it.
    pub fn not_misconfigured(&mut self) -> Result<()> {
        match self.misconfigured.borrow_and_update().clone() {
            Some(m) => Err(m.into()),
            None => Ok(()),
        }
    }

    /// Stops the probe and waits until it has let go of the consumer.
    pub async fn stop(self) {
        self.task.stop().await;
    }
}

/// A task that ends with its owner: the probe must not outlive the stage,
/// whichever way the stage returns.
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
