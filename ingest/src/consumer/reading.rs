//! The loop: one `select!` over everything the stage waits for (shutdown,
//! the sink's answers, the probe's findings, rebalances, the batch's linger,
//! the next message), and what happens before each turn. Each arm is one
//! call into the file that owns its concern.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::BorrowedMessage;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::lifecycle::Probe;
use super::{Ack, Ingest, Mode};
use crate::batch::Batch;
use crate::{KafkaSettings, Result};

impl Ingest {
    /// Reads until `shutdown` resolves or, in [`Mode::UntilCaughtUp`], until
    /// drained. `biased`: answers from the sink are handled before new
    /// messages, so offsets move forward before more is read.
    pub(super) async fn read(
        &mut self,
        kafka: &KafkaSettings,
        probe: &mut Probe,
        out: &mpsc::Sender<Batch>,
        acks: &mut mpsc::UnboundedReceiver<Ack>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let consumer = self.consumer.clone();
        let linger = Duration::from_millis(self.settings.batch_linger_ms);
        tokio::pin!(shutdown);
        loop {
            if self.before_reading(kafka, &probe.unanswered_since).await? {
                return Ok(());
            }
            let deadline = self
                .builder
                .started()
                .map(|t| tokio::time::Instant::from_std(t + linger));
            let reading = !self.resync && !self.settling;
            tokio::select! {
                biased;
                _ = &mut shutdown => {
                    info!("shutdown requested: finishing the batch in flight");
                    return Ok(());
                }
                Some(ack) = acks.recv() => self.on_ack(ack),
                // A backfill cannot drain a topic that does not exist: say so
                // and stop, rather than wait for it in silence.
                Ok(()) = probe.missing.changed(), if self.mode == Mode::UntilCaughtUp => {
                    probe.none_missing(&kafka.brokers)?;
                }
                Ok(()) = probe.misconfigured.changed() => probe.not_misconfigured()?,
                Some(ev) = self.events.recv() => self.on_rebalance(ev, out).await?,
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                    self.flush(out).await?;
                }
                m = consumer.recv(), if reading => self.on_received(m, out).await?,
                // Nothing more to read right now and the database is idle: send
                // what there is. Under a backlog the database is busy and the
                // batch fills up to its limits; caught up, each batch holds what
                // arrived during the last transaction, so it is fresh.
                _ = std::future::ready(()), if reading && self.in_flight == 0 && !self.builder.is_empty() => {
                    self.flush(out).await?;
                }
                _ = tokio::time::sleep(Duration::from_millis(100)), if self.mode == Mode::UntilCaughtUp => {}
            }
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
        unanswered_since: &Mutex<Option<Instant>>,
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

    /// What the consumer gave: a message into the batch (sent once full),
    /// or an error, said at the level it deserves, and a short pause.
    async fn on_received(
        &mut self,
        received: KafkaResult<BorrowedMessage<'_>>,
        out: &mpsc::Sender<Batch>,
    ) -> Result<()> {
        match received {
            Ok(m) => {
                self.on_message(&m).await?;
                if self.builder.len() >= self.settings.batch_max_messages
                    || self.builder.bytes() >= self.settings.batch_max_bytes
                {
                    self.flush(out).await?;
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
        }
        Ok(())
    }
}

/// A subscribed topic the cluster does not know: reported once, with the
/// setting that names it, by the probe (`probe.rs`), not by each client call.
fn unknown_topic(error: &KafkaError) -> bool {
    error.rdkafka_error_code() == Some(rdkafka::error::RDKafkaErrorCode::UnknownTopicOrPartition)
}
