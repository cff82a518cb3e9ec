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
use super::partitions::Step;
use crate::Result;
use crate::batch::{Accepted, Position, Raw, Rejected};

impl Ingest {
    pub(super) async fn on_message(&mut self, m: &BorrowedMessage<'_>) -> Result<()> {
        self.last_message = Instant::now();
        self.summary.messages += 1;
        metrics::counter!("outreach_messages_total", "topic" => m.topic().to_owned()).increment(1);
        let key = (self.topic(m.topic()), m.partition());
        let offset = m.offset();
        let mut step = self.parts.on_message(&key, offset);
        if step == Step::Resolve {
            if self.resolve(&key).await? {
                // Repositioned at the beginning: this message comes again in order.
                return Ok(());
            }
            step = self.parts.on_message(&key, offset);
        }
        match step {
            Step::Take => {}
            Step::TakeAfterGap { missing } => {
                warn!(topic = %key.0, partition = key.1, offset, resume = missing, "offsets {missing}..{offset} are gone from the topic (retention?); continuing");
            }
            Step::SeekBack { to } => {
                info!(topic = %key.0, partition = key.1, offset, resume = to, "consumer is ahead of the database; seeking back");
                match self
                    .consumer
                    .seek(&key.0, key.1, Offset::Offset(to), Duration::from_secs(10))
                {
                    Ok(()) => self.parts.seek_asked(&key),
                    Err(error) => warn!(%error, "seek failed; will seek on the next message"),
                }
                return Ok(());
            }
            Step::Skip => {
                debug!(topic = %key.0, partition = key.1, offset, "already applied; skipped");
                return Ok(());
            }
            // `resolve` placed the partition: only a revoke in between
            // (not possible here, the loop is this task) would leave it.
            Step::NotAssigned | Step::Resolve => {
                debug!(topic = %key.0, partition = key.1, offset, "message from a partition not assigned here; skipped");
                return Ok(());
            }
        }
        self.builder
            .cover(&key.0, key.1, self.parts.stored(&key), offset);

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
