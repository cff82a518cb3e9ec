//! The dead-letter topic: every refused message is produced there with its
//! original key, value and headers, plus the reason in `outreach.*` headers.
//! Production is awaited before the batch that holds the message commits, so
//! the topic gets each refusal at least once (the quarantine table exactly once).

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use schemas::ErrorCode;

use crate::logs::Logs;
use crate::{Error, Rejected, Result};

pub struct DeadLetters {
    producer: FutureProducer<Logs>,
    config: rdkafka::ClientConfig,
    topic: String,
}

impl DeadLetters {
    pub fn new(settings: &crate::KafkaSettings) -> Result<DeadLetters> {
        let config = settings.producer_config();
        Ok(DeadLetters {
            producer: config.create_with_context(Logs)?,
            config,
            topic: settings.deadletter_topic.clone(),
        })
    }

    /// [`Self::try_send_all`], with a fresh producer after a failure: an
    /// outage can leave the idempotent producer unusable for good (a
    /// message timed out, then the broker answers `ProducerFenced` to every
    /// retry), and the batch's retry must be able to succeed once the
    /// cluster is back. The topic is at-least-once anyway.
    pub async fn send_all(&mut self, rejected: &[&Rejected]) -> Result<()> {
        let result = self.try_send_all(rejected).await;
        if let Err(error) = &result {
            tracing::warn!(%error, "dead-letter producer replaced after a failed send");
            match self.config.create_with_context(Logs) {
                Ok(fresh) => {
                    let old = std::mem::replace(&mut self.producer, fresh);
                    // Dropping a producer flushes and joins its thread: not
                    // on an async worker.
                    tokio::task::spawn_blocking(move || drop(old));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not create a new dead-letter producer; keeping the old one")
                }
            }
        }
        result
    }

    /// Produces every message and waits until the broker has them all.
    /// A value the broker refuses as too large (or one refused as
    /// `too_large` here) goes without its value, marked by an
    /// `outreach.payload_omitted` header giving its size: the quarantine
    /// table keeps the bytes.
    async fn try_send_all(&self, rejected: &[&Rejected]) -> Result<()> {
        let mut pending = Vec::with_capacity(rejected.len());
        for &r in rejected {
            let omit = r.rejection.code == ErrorCode::TooLarge;
            pending.push((r, self.enqueue(r, omit).await?));
        }
        for (r, delivery) in pending {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((
                    KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
                    _,
                ))) => match self.enqueue(r, true).await?.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((e, _))) => return Err(Error::DeadLetter(e)),
                    Err(_) => return Err(Error::DeadLetter(KafkaError::Canceled)),
                },
                Ok(Err((e, _))) => return Err(Error::DeadLetter(e)),
                Err(_) => return Err(Error::DeadLetter(KafkaError::Canceled)),
            }
        }
        Ok(())
    }

    /// Hands one dead letter to the producer (waiting while its queue is full).
    async fn enqueue(&self, r: &Rejected, omit_payload: bool) -> Result<DeliveryFuture> {
        let partition = r.position.partition.to_string();
        let offset = r.position.offset.to_string();
        let size = r.payload.len().to_string();
        let mut headers = OwnedHeaders::new_with_capacity(r.headers.len() + 6);
        for (k, v) in &r.headers {
            headers = headers.insert(Header {
                key: k,
                value: v.as_deref(),
            });
        }
        headers = headers
            .insert(Header {
                key: "outreach.error_code",
                value: Some(r.rejection.code.as_str()),
            })
            .insert(Header {
                key: "outreach.error_detail",
                value: Some(r.rejection.detail.as_str()),
            })
            .insert(Header {
                key: "outreach.source_topic",
                value: Some(&*r.position.topic),
            })
            .insert(Header {
                key: "outreach.source_partition",
                value: Some(&partition),
            })
            .insert(Header {
                key: "outreach.source_offset",
                value: Some(&offset),
            });
        if omit_payload {
            headers = headers.insert(Header {
                key: "outreach.payload_omitted",
                value: Some(&size),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.topic).headers(headers);
        if !omit_payload {
            record = record.payload(r.payload.as_slice());
        }
        if let Some(k) = &r.key {
            record = record.key(k.as_slice());
        }
        crate::publish::enqueue(&self.producer, record)
            .await
            .map_err(Error::DeadLetter)
    }
}
