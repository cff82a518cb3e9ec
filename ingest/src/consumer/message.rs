//! One message: where it stands in its partition (`partitions.rs` decides,
//! this file seeks or resolves as told), its headers read without trusting
//! them, decoding and validation, and into the batch as accepted or
//! quarantined.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use chrono::Utc;
use rdkafka::Offset;
use rdkafka::consumer::Consumer;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use schemas::{ErrorCode, Rejection};
use tracing::{debug, info, warn};

use super::Ingest;
use super::partitions::{Key, Step, Stored};
use crate::Result;
use crate::batch::{Accepted, Position, Raw, Rejected};

impl Ingest {
    /// One message from the consumer: counted, then into the batch if its
    /// partition's place says so.
    pub(super) async fn on_message(&mut self, m: &BorrowedMessage<'_>) -> Result<()> {
        self.last_message = Instant::now();
        self.summary.messages += 1;
        metrics::counter!("outreach_messages_total", "topic" => m.topic().to_owned()).increment(1);
        let key = Key::new(self.topic(m.topic()), m.partition());
        let offset = m.offset();
        if !self.admit(&key, offset).await? {
            return Ok(());
        }
        let expected = self.parts.stored(&key).and_then(Stored::next);
        self.builder
            .cover(&key.topic, key.partition, expected, offset);
        self.decode_into_batch(m, &key, offset);
        Ok(())
    }

    /// Whether the message at `offset` goes into the batch, as its
    /// partition's cursor decides; reads the stored offset first where it is
    /// unknown, and seeks where the cursor asks.
    async fn admit(&mut self, key: &Key, offset: i64) -> Result<bool> {
        let mut step = self.parts.on_message(key, offset);
        if step == Step::Resolve {
            if self.resolve(key).await? {
                // Repositioned at the beginning: this message comes again in order.
                return Ok(false);
            }
            step = self.parts.on_message(key, offset);
        }
        let (topic, partition) = (&key.topic, key.partition);
        match step {
            Step::Take => Ok(true),
            Step::TakeAfterGap { missing } => {
                warn!(%topic, partition, offset, resume = missing, "offsets {missing}..{offset} are gone from the topic (retention?); continuing");
                Ok(true)
            }
            Step::SeekBack { to } => {
                info!(%topic, partition, offset, resume = to, "consumer is ahead of the database; seeking back");
                match self.consumer.seek(
                    topic,
                    partition,
                    Offset::Offset(to),
                    Duration::from_secs(10),
                ) {
                    Ok(()) => self.parts.seek_asked(key),
                    Err(error) => warn!(%error, "seek failed; will seek on the next message"),
                }
                Ok(false)
            }
            Step::Skip => {
                debug!(%topic, partition, offset, "already applied; skipped");
                Ok(false)
            }
            // `resolve` placed the partition: only a revoke in between
            // (not possible here, the loop is this task) would leave it.
            Step::NotAssigned | Step::Resolve => {
                debug!(%topic, partition, offset, "message from a partition not assigned here; skipped");
                Ok(false)
            }
        }
    }

    /// Decodes and validates the message, timed, and puts it into the batch:
    /// accepted, or quarantined with its rejection.
    fn decode_into_batch(&mut self, m: &BorrowedMessage<'_>, key: &Key, offset: i64) {
        let position = Position {
            topic: key.topic.clone(),
            partition: key.partition,
            offset,
            timestamp_ms: m.timestamp().to_millis(),
        };
        let started = Instant::now();
        let (headers, header_problem) = read_headers(m);
        self.builder.weigh(weight(m, &headers));
        let decoded = match header_problem {
            Some(r) => Err(r),
            None => self.decoder.decode(&schemas::Message {
                headers: &headers,
                value: m.payload(),
                timestamp_ms: position.timestamp_ms,
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
                self.builder.accept(Accepted::new(event, position, || Raw {
                    key: m.key().map(<[u8]>::to_vec),
                    payload: m.payload().unwrap_or_default().to_vec(),
                    headers: owned_headers(),
                }));
            }
            Err(rejection) => {
                self.summary.rejected += 1;
                debug!(topic = %key.topic, partition = key.partition, offset, code = %rejection.code, detail = %rejection.detail, "message quarantined");
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
    }
}

/// What the message weighs against `ingest.batch_max_bytes`: its payload,
/// key and headers.
fn weight(m: &BorrowedMessage<'_>, headers: &[schemas::Header<'_>]) -> usize {
    m.payload_len()
        + m.key().map_or(0, <[u8]>::len)
        + headers
            .iter()
            .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len))
            .sum::<usize>()
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
