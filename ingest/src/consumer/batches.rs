//! A batch's way out and its answer's way back: cut and sent to the sink,
//! then committed (Kafka's offset hint follows) or fenced (the loop re-reads
//! from the stored offsets). The count of batches in flight lives here, and
//! it is what the loop waits on before it repositions, settles or stops.

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tracing::debug;

use super::partitions::Key;
use super::{Ack, Ingest, Mode};
use crate::Result;
use crate::batch::{Batch, Builder};

impl Ingest {
    /// Sends the batch in progress, if any; the next batch of each of its
    /// partitions moves from where this one ends.
    pub(super) async fn flush(&mut self, out: &mpsc::Sender<Batch>) -> Result<()> {
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

    /// The sink's answer to a batch: a commit passes Kafka the offset hint
    /// for the partitions still held here; a fence drops the batch in
    /// progress and has the loop re-read from the stored offsets.
    pub(super) fn on_ack(&mut self, ack: Ack) {
        self.in_flight = self.in_flight.saturating_sub(1);
        match ack {
            Ack::Committed(ranges) => {
                let mut tpl = TopicPartitionList::new();
                for r in &ranges {
                    if self.parts.contains(&Key::of(r)) {
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

    /// Once the loop has stopped: the answer to every batch sent, or until
    /// the sink hangs up.
    pub(super) async fn await_answers(&mut self, acks: &mut mpsc::UnboundedReceiver<Ack>) {
        while self.in_flight > 0 {
            match acks.recv().await {
                Some(ack) => self.on_ack(ack),
                None => break,
            }
        }
    }

    /// What is left of a drain, after an assignment and after each batch.
    pub(super) fn publish_left(&self) {
        if self.mode == Mode::UntilCaughtUp {
            self.backlog.set(self.summary.messages, self.parts.left());
        }
    }
}
