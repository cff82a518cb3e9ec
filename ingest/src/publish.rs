//! Producing contract events (`outreach publish`): each to its topic, keyed
//! as the contract recommends (`mission_id`, `record_id`), in structured
//! mode, through an idempotent producer so retries never duplicate.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::ToBytes;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use schemas::{Body, Event};

use crate::{Error, KafkaSettings, Result};

pub struct Publisher {
    producer: FutureProducer,
    missions_topic: String,
    activities_topic: String,
}

impl Publisher {
    pub fn new(settings: &KafkaSettings) -> Result<Publisher> {
        Ok(Publisher {
            producer: settings
                .producer_config()
                .set("compression.type", "lz4")
                .create()?,
            missions_topic: settings.missions_topic.clone(),
            activities_topic: settings.activities_topic.clone(),
        })
    }

    /// Hands a validated event (and the exact bytes it was read from) to the
    /// producer; the returned future resolves once the broker has it.
    pub async fn send(&self, event: &Event, json: &[u8]) -> Result<DeliveryFuture> {
        let (topic, key) = match &event.body {
            Body::Dispatched(d) => (&self.missions_topic, d.mission_id.as_str()),
            Body::Completed(c) => (&self.missions_topic, c.mission_id.as_str()),
            Body::Activity(a) => (&self.activities_topic, a.record_id.as_str()),
        };
        self.send_to(topic, key.as_bytes(), json).await
    }

    /// Sends prepared bytes to a topic, in structured mode.
    pub async fn send_to(&self, topic: &str, key: &[u8], value: &[u8]) -> Result<DeliveryFuture> {
        let headers = OwnedHeaders::new().insert(Header {
            key: "content-type",
            value: Some("application/cloudevents+json"),
        });
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(value)
            .headers(headers);
        Ok(enqueue(&self.producer, record).await?)
    }

    /// Sends bytes that are not a valid event, as they are, to the
    /// activities topic (to try out a pipeline's quarantine).
    pub async fn send_raw(&self, bytes: &[u8]) -> Result<DeliveryFuture> {
        let record = FutureRecord::to(&self.activities_topic)
            .key("invalid")
            .payload(bytes);
        Ok(enqueue(&self.producer, record).await?)
    }

    pub fn flush(&self, timeout: Duration) -> Result<()> {
        Ok(self.producer.flush(timeout)?)
    }
}

/// Waits for a delivery; an error says why the broker refused it.
pub async fn delivered(d: DeliveryFuture) -> Result<()> {
    match d.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(Error::Kafka(e)),
        Err(_) => Err(Error::Kafka(KafkaError::Canceled)),
    }
}

/// Hands a record to the producer, waiting while its queue is full.
pub(crate) async fn enqueue<K: ToBytes + ?Sized>(
    producer: &FutureProducer,
    mut record: FutureRecord<'_, K, [u8]>,
) -> std::result::Result<DeliveryFuture, KafkaError> {
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((e, _)) => return Err(e),
        }
    }
}
