//! Producing contract events (`outreach publish`): each to its topic, keyed
//! as the contract recommends (`mission_id`, `record_id`), in structured
//! mode, through an idempotent producer so retries never duplicate.
//!
//! A broker that cannot be reached is one error naming its address and
//! setting, within `kafka.delivery_timeout_ms`: before anything is sent
//! ([`Publisher::connect`]), or when deliveries time out
//! ([`Publisher::delivered`]).

use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::ToBytes;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use schemas::{Body, Event};

use crate::diagnose::Doctor;
use crate::logs::Logs;
use crate::{Error, KafkaSettings, Result};

/// One metadata request of [`Publisher::connect`]: short, so that the
/// cluster's silence can be looked into early.
const ATTEMPT: Duration = Duration::from_secs(1);

pub struct Publisher {
    producer: FutureProducer<Logs>,
    /// `kafka.delivery_timeout_ms`.
    timeout: Duration,
    /// The topics, the brokers (for errors), and what [`Doctor`] looks at
    /// if the cluster stays silent.
    settings: KafkaSettings,
}

impl Publisher {
    pub fn new(settings: &KafkaSettings) -> Result<Publisher> {
        Ok(Publisher {
            producer: settings
                .producer_config()
                .set("compression.type", "lz4")
                .create_with_context(Logs)?,
            timeout: Duration::from_millis(settings.delivery_timeout_ms.into()),
            settings: settings.clone(),
        })
    }

    /// Waits until a broker answers a metadata request, for at most
    /// `kafka.delivery_timeout_ms`: [`Error::Unreachable`] otherwise, or
    /// sooner [`Error::Misconfigured`] if a setting is why it is silent.
    pub async fn connect(&self) -> Result<()> {
        let started = Instant::now();
        let mut doctor = Doctor::new(&self.settings);
        loop {
            let producer = self.producer.clone();
            // Asks for no topic in particular: nothing is created, whatever
            // the broker's `auto.create.topics.enable`.
            let answer = tokio::task::spawn_blocking(move || {
                producer.client().fetch_metadata(None, ATTEMPT).map(drop)
            })
            .await;
            match answer {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) if is_unreachable(&e) => {}
                Ok(Err(e)) => return Err(Error::Kafka(e)),
                Err(_) => return Err(Error::Kafka(KafkaError::Canceled)),
            }
            if let Some(m) = doctor.verdict(started.elapsed()).await {
                return Err(m.into());
            }
            if started.elapsed() >= self.timeout {
                return Err(self.unreachable());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for a delivery. A message that timed out while the broker was
    /// out of reach is [`Error::Unreachable`]; any other failure, the
    /// broker's refusal ([`Error::Refused`]).
    pub async fn delivered(&self, d: DeliveryFuture) -> Result<()> {
        match d.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) if is_unreachable(&e) && self.failure().is_some() => {
                Err(self.unreachable())
            }
            Ok(Err((e, _))) => Err(Error::Refused(e)),
            Err(_) => Err(Error::Refused(KafkaError::Canceled)),
        }
    }

    /// The latest failure to reach a broker, if recent.
    fn failure(&self) -> Option<(String, crate::logs::Failure)> {
        crate::logs::last_failure(self.timeout + Duration::from_secs(5))
    }

    fn unreachable(&self) -> Error {
        Error::Unreachable {
            brokers: self.settings.brokers.clone(),
            failure: self.failure(),
            waited: self.timeout,
        }
    }

    /// Hands a validated event (and the exact bytes it was read from) to the
    /// producer; the returned future resolves once the broker has it.
    pub async fn send(&self, event: &Event, json: &[u8]) -> Result<DeliveryFuture> {
        let (topic, key) = match &event.body {
            Body::Dispatched(d) => (&self.settings.missions_topic, d.mission_id.as_str()),
            Body::Completed(c) => (&self.settings.missions_topic, c.mission_id.as_str()),
            Body::Activity(a) => (&self.settings.activities_topic, a.record_id.as_str()),
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
        let record = FutureRecord::to(&self.settings.activities_topic)
            .key("invalid")
            .payload(bytes);
        Ok(enqueue(&self.producer, record).await?)
    }

    pub fn flush(&self, timeout: Duration) -> Result<()> {
        Ok(self.producer.flush(timeout)?)
    }
}

/// Errors that mean no broker answered in time.
fn is_unreachable(e: &KafkaError) -> bool {
    crate::logs::is_connection_error(e)
        || matches!(
            e.rdkafka_error_code(),
            Some(RDKafkaErrorCode::MessageTimedOut | RDKafkaErrorCode::OperationTimedOut)
        )
}

/// One line for a broker that could not be reached: which address, which
/// setting, what happened, and what to check.
pub(crate) fn unreachable_message(
    brokers: &str,
    failure: &Option<(String, crate::logs::Failure)>,
    waited: &Duration,
) -> String {
    let setting = crate::logs::SETTING;
    let waited = format!(
        "within {} s (kafka.delivery_timeout_ms)",
        waited.as_secs_f64()
    );
    match failure {
        Some((address, failure)) if brokers.split(',').any(|b| b.trim() == address) => format!(
            "the broker at {address} ({setting}) could not be reached {waited}: {failure}; {}",
            failure.advice()
        ),
        // Reached at the configured address, then sent elsewhere: the
        // address the cluster advertises is wrong from here.
        Some((address, failure)) => format!(
            "the broker at {address}, an address the cluster at {brokers} ({setting}) advertises, could not be reached {waited}: {failure}; check the brokers' advertised.listeners"
        ),
        None => format!("no broker at {brokers} ({setting}) answered {waited}"),
    }
}

/// Hands a record to the producer, waiting while its queue is full. The
/// publisher, the dead-letter sender and the tests' producer all send
/// through it.
pub async fn enqueue<K: ToBytes + ?Sized, C: rdkafka::ClientContext + 'static>(
    producer: &FutureProducer<C>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::Failure;

    #[test]
    fn an_unreachable_broker_is_one_line_with_its_address_and_setting() {
        let waited = Duration::from_secs(30);
        assert_eq!(
            unreachable_message(
                "a:9092, b:9092",
                &Some(("b:9092".into(), Failure::Refused)),
                &waited
            ),
            "the broker at b:9092 (kafka.brokers / OUTREACH__KAFKA__BROKERS) could not be reached within 30 s (kafka.delivery_timeout_ms): connection refused; check that a broker listens at that address"
        );
        let advertised = unreachable_message(
            "a:9092",
            &Some(("kafka-1:9092".into(), Failure::NameNotFound)),
            &waited,
        );
        assert!(
            advertised.starts_with("the broker at kafka-1:9092, an address the cluster at a:9092")
                && advertised.ends_with("name not found; check the brokers' advertised.listeners"),
            "{advertised}"
        );
        assert_eq!(
            unreachable_message("a:9092", &None, &Duration::from_millis(2500)),
            "no broker at a:9092 (kafka.brokers / OUTREACH__KAFKA__BROKERS) answered within 2.5 s (kafka.delivery_timeout_ms)"
        );
    }
}
