//! Kafka chores for `outreach bench`: creating topics, and the no-op read
//! that measures how fast this client can read a topic at all, the ceiling
//! the pipeline's own rate is compared with.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message as _;

use crate::logs::Logs;
use crate::{Error, KafkaSettings, Result};

/// Creates the missions, activities and dead-letter topics.
pub async fn create_topics(kafka: &KafkaSettings, partitions: i32) -> Result<()> {
    let admin: AdminClient<Logs> = kafka.producer_config().create_with_context(Logs)?;
    let topics = [
        NewTopic::new(
            &kafka.missions_topic,
            partitions,
            TopicReplication::Fixed(1),
        ),
        NewTopic::new(
            &kafka.activities_topic,
            partitions,
            TopicReplication::Fixed(1),
        ),
        NewTopic::new(&kafka.deadletter_topic, 1, TopicReplication::Fixed(1)),
    ];
    for r in admin.create_topics(&topics, &AdminOptions::new()).await? {
        r.map_err(|(topic, code)| {
            Error::Kafka(rdkafka::error::KafkaError::AdminOp(code)).context_topic(&topic)
        })?;
    }
    Ok(())
}

/// Reads `expected` messages from the two topics with the pipeline's client
/// settings and does nothing with them; the time runs from the first message.
pub async fn read_all(
    kafka: &KafkaSettings,
    group: &str,
    expected: u64,
    limit: Duration,
) -> Result<(u64, Duration)> {
    read_into(kafka, group, expected, limit, None).await
}

/// [`read_all`], sending each message's value to `values` (the
/// benchmark's batch SQL alternative decodes and loads them; the bounded
/// channel holds the read back while they load).
pub async fn read_into(
    kafka: &KafkaSettings,
    group: &str,
    expected: u64,
    limit: Duration,
    values: Option<tokio::sync::mpsc::Sender<Vec<u8>>>,
) -> Result<(u64, Duration)> {
    let mut config = kafka.consumer_config(schemas::decode::DEFAULT_MAX_MESSAGE_BYTES);
    config.set("group.id", group);
    let consumer: StreamConsumer<Logs> = config.create_with_context(Logs)?;
    consumer.subscribe(&kafka.topics())?;
    let deadline = Instant::now() + limit;
    let mut first = None;
    let mut n = 0;
    while n < expected {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(m)) => {
                first.get_or_insert_with(Instant::now);
                if let Some(tx) = &values {
                    let value = m.payload().unwrap_or_default().to_vec();
                    if tx.send(value).await.is_err() {
                        break;
                    }
                }
                n += 1;
            }
            Ok(Err(e)) if crate::logs::is_connection_error(&e) => {
                tracing::debug!(error = %e, "raw read")
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "raw read"),
            Err(_) => break,
        }
    }
    Ok((n, first.map(|t| t.elapsed()).unwrap_or_default()))
}

impl Error {
    fn context_topic(self, topic: &str) -> Error {
        match self {
            Error::Kafka(e) => Error::Topic(topic.to_owned(), e),
            other => other,
        }
    }
}
