//! Reading the stored offsets from the database, and seeking to them, for
//! the two cases the rebalance callback does not cover: a partition assigned
//! while the database could not be read (resolved on its first message), and
//! every partition after a fenced batch (repositioned). The look-up blocks,
//! so it runs on a blocking thread, and it is retried until it answers: no
//! message can be placed without it.

use std::time::Duration;

use rdkafka::Offset;
use rdkafka::consumer::Consumer;
use tracing::{info, warn};

use super::Ingest;
use super::context::resume_at;
use super::partitions::{Key, Stored};
use crate::Result;

impl Ingest {
    /// The stored offsets of `keys`, in order; waits (backing off up to
    /// 30 s) while the database cannot be read.
    async fn stored(&self, keys: &[Key]) -> Result<Vec<Stored>> {
        let parts: Vec<(String, i32)> = keys
            .iter()
            .map(|k| (k.topic.to_string(), k.partition))
            .collect();
        let lookup = self.lookup.clone();
        let mut delay = Duration::from_millis(200);
        loop {
            let parts = parts.clone();
            let lookup = lookup.clone();
            match tokio::task::spawn_blocking(move || lookup(&parts))
                .await
                .expect("look-up does not panic")
            {
                Ok(v) => return Ok(v.into_iter().map(Stored::from_lookup).collect()),
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
    pub(super) async fn resolve(&mut self, key: &Key) -> Result<bool> {
        let stored = self.stored(std::slice::from_ref(key)).await?[0];
        self.parts.place(key, stored);
        if let Stored::At(_) = stored {
            // The check on the first message seeks if the consumer is elsewhere.
            return Ok(false);
        }
        // Kafka's committed offset may be ahead of a database that never
        // applied anything here: start from the beginning.
        match self.consumer.seek(
            &key.topic,
            key.partition,
            Offset::Beginning,
            Duration::from_secs(10),
        ) {
            Ok(()) => {
                self.parts.seek_asked(key);
                Ok(true)
            }
            Err(error) => {
                warn!(%error, topic = %key.topic, partition = key.partition, "seek to the beginning failed; starting where the consumer is");
                Ok(false)
            }
        }
    }

    /// After a fence: every partition back to its stored offset.
    pub(super) async fn reposition(&mut self) -> Result<()> {
        let keys = self.parts.keys();
        let stored = self.stored(&keys).await?;
        for (key, stored) in keys.into_iter().zip(stored) {
            self.parts.place(&key, stored);
            match self.consumer.seek(
                &key.topic,
                key.partition,
                resume_at(stored),
                Duration::from_secs(10),
            ) {
                Ok(()) => self.parts.seek_asked(&key),
                Err(error) => {
                    warn!(%error, topic = %key.topic, partition = key.partition, "seek failed; will seek on the next message")
                }
            }
        }
        info!(
            partitions = self.parts.len(),
            "repositioned at the stored offsets after a fenced batch"
        );
        Ok(())
    }
}
