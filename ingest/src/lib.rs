//! The ingest stage: a member of a Kafka consumer group that reads the
//! mission and activity topics, decodes and validates every message, and cuts
//! the stream into batches for the sink, each carrying the offsets it covers.
//!
//! Kafka's committed offsets are only a hint. Where each partition resumes is
//! stored in the database with the changes; on assignment the consumer is
//! placed at that stored offset (see [`OffsetLookup`]), and after a fenced
//! batch it seeks back to it. This crate does no database IO itself: the
//! binary hands it the look-up.

mod batch;
mod consumer;
mod deadletter;
pub mod diagnose;
mod embedded;
pub mod logs;
pub mod probe;
mod publish;
mod settings;
pub mod tools;

pub use batch::{Accepted, Batch, Position, Raw, Rejected};
pub use consumer::{Ack, Backlog, Links, Mode, Summary, run};
pub use deadletter::DeadLetters;
pub use embedded::EmbeddedBroker;
pub use publish::{Publisher, enqueue};
pub use schemas::OffsetRange;
pub use settings::{IngestSettings, KafkaSettings, is_secret};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where each partition resumes, read from the database: the next offset to
/// apply, or `None` where nothing was ever applied. Blocking: it is called
/// from librdkafka's rebalance callback.
pub type OffsetLookup =
    std::sync::Arc<dyn Fn(&[(String, i32)]) -> Result<Vec<Option<i64>>, BoxError> + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A message the producer could not deliver, for a reason other than
    /// an unreachable broker.
    #[error("the broker refused an event: {0}")]
    Refused(rdkafka::error::KafkaError),
    /// No broker answered within `kafka.delivery_timeout_ms`: the address
    /// tried, and what happened there when known.
    #[error("{}", publish::unreachable_message(.brokers, .failure, .waited))]
    Unreachable {
        brokers: String,
        failure: Option<(String, logs::Failure)>,
        waited: std::time::Duration,
    },
    /// A setting keeps the client from ever talking to the cluster
    /// (certificates, TLS or not, SASL credentials).
    #[error(transparent)]
    Misconfigured(#[from] diagnose::Misconfigured),
    #[error("dead-letter topic: could not produce a refused message: {0}")]
    DeadLetter(rdkafka::error::KafkaError),
    #[error("topic {0}: {1}")]
    Topic(String, rdkafka::error::KafkaError),
    #[error("stored offsets could not be read: {0}")]
    Lookup(BoxError),
    /// `--until-caught-up` found a subscribed topic missing.
    #[error("{}", probe::missing_message(.brokers, .topics))]
    MissingTopics {
        brokers: String,
        topics: Vec<probe::Topic>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
