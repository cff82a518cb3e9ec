//! A Kafka-protocol broker inside this process, for `outreach demo`:
//! librdkafka's mock cluster, listening on a localhost port and speaking the
//! real protocol (the pipeline's consumer group, producer and dead-letter
//! producer connect to it over TCP as to any broker). It keeps everything in
//! memory and lives as long as this value. Not for production: one process,
//! no persistence.

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::{KafkaSettings, Result};

pub struct EmbeddedBroker {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl EmbeddedBroker {
    /// Starts a one-broker cluster with the contract's topics
    /// (`partitions` each; the dead-letter topic one).
    pub fn start(kafka: &KafkaSettings, partitions: i32) -> Result<EmbeddedBroker> {
        let cluster = MockCluster::new(1)?;
        for topic in kafka.topics() {
            cluster.create_topic(topic, partitions, 1)?;
        }
        cluster.create_topic(&kafka.deadletter_topic, 1, 1)?;
        Ok(EmbeddedBroker { cluster })
    }

    /// The `kafka.brokers` value that reaches it.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }
}
