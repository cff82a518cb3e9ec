//! The consumer's librdkafka context: its logs routed into tracing, its
//! statistics turned into the lag metric, and the rebalance callback, which
//! places newly assigned partitions at the offsets stored in the database
//! and tells the loop what changed.

use std::time::Duration;

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::partitions::{Resume, Stored};
use crate::OffsetLookup;

/// What a rebalance did, for the loop: partitions assigned, each with where
/// it resumes, or every partition revoked.
pub(super) enum Rebalance {
    Assigned(Vec<Assignment>),
    Revoked,
}

/// One newly assigned partition, and where the callback placed it.
pub(super) struct Assignment {
    pub topic: String,
    pub partition: i32,
    pub resume: Resume,
}

/// Routes librdkafka's logs into tracing (through [`crate::logs`]) and
/// places newly assigned partitions at the offsets stored in the database.
pub(super) struct Context {
    pub lookup: OffsetLookup,
    pub events: mpsc::UnboundedSender<Rebalance>,
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        crate::logs::log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        crate::logs::error(&error, reason);
    }

    /// Per-partition lag, from the statistics librdkafka emits every
    /// `statistics.interval.ms` (delivered while the loop polls).
    fn stats(&self, stats: Statistics) {
        for (topic, t) in &stats.topics {
            for p in t.partitions.values().filter(|p| p.partition >= 0) {
                // Messages behind the high watermark, for the partitions this
                // member fetches; 0 for the others, so `max by (partition)`
                // over all members is the group's lag.
                let lag = match p.fetch_state.as_str() {
                    "none" | "stopped" | "stopping" => 0,
                    _ if p.consumer_lag_stored >= 0 => p.consumer_lag_stored,
                    _ => p.consumer_lag.max(0),
                };
                metrics::gauge!(
                    "outreach_consumer_lag",
                    "topic" => topic.clone(),
                    "partition" => p.partition.to_string()
                )
                .set(lag as f64);
            }
        }
    }
}

impl ConsumerContext for Context {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let parts: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let stored = lookup_with_retries(&self.lookup, &parts);
                if let Some(stored) = &stored {
                    for ((topic, partition), s) in parts.iter().zip(stored) {
                        let at = resume_at(Stored::from_lookup(*s));
                        if let Err(error) = tpl.set_partition_offset(topic, *partition, at) {
                            warn!(%error, topic, partition, "could not set the resume offset");
                        }
                    }
                }
                info!(partitions = ?parts, resume_at = ?stored, "partitions assigned");
                if let Err(error) = consumer.assign(tpl) {
                    error!(%error, "assign failed");
                }
                let _ = self
                    .events
                    .send(Rebalance::Assigned(assignments(parts, stored)));
            }
            _ => {
                if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
                    warn!(error = ?err, "rebalance error; dropping the assignment");
                }
                info!(partitions = ?parts, "partitions revoked");
                if let Err(error) = consumer.unassign() {
                    error!(%error, "unassign failed");
                }
                let _ = self.events.send(Rebalance::Revoked);
            }
        }
    }
}

/// Each partition with where it resumes: at its stored offset, or unknown
/// for all of them where the look-up failed.
fn assignments(parts: Vec<(String, i32)>, stored: Option<Vec<Option<i64>>>) -> Vec<Assignment> {
    let assignment = |(topic, partition), resume| Assignment {
        topic,
        partition,
        resume,
    };
    match stored {
        Some(stored) => parts
            .into_iter()
            .zip(stored)
            .map(|(part, s)| assignment(part, Resume::Stored(Stored::from_lookup(s))))
            .collect(),
        None => parts
            .into_iter()
            .map(|part| assignment(part, Resume::Unknown))
            .collect(),
    }
}

/// Where the consumer reads a partition from: its stored offset, or the
/// beginning where nothing was ever applied (Kafka's committed offset may be
/// ahead of such a database).
pub(super) fn resume_at(stored: Stored) -> Offset {
    match stored {
        Stored::Never => Offset::Beginning,
        Stored::At(next) => Offset::Offset(next),
    }
}

/// The look-up runs inside librdkafka's callback: a few quick retries, then
/// give up and let the loop resolve the partitions on their first message.
fn lookup_with_retries(lookup: &OffsetLookup, parts: &[(String, i32)]) -> Option<Vec<Option<i64>>> {
    if parts.is_empty() {
        return Some(Vec::new());
    }
    for attempt in 0..5u32 {
        match lookup(parts) {
            Ok(v) => return Some(v),
            Err(error) => {
                warn!(%error, attempt, "reading stored offsets failed");
                std::thread::sleep(Duration::from_millis(200 << attempt));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resumes(list: &[Assignment]) -> Vec<(&str, i32, Resume)> {
        list.iter()
            .map(|a| (a.topic.as_str(), a.partition, a.resume))
            .collect()
    }

    #[test]
    fn each_assigned_partition_resumes_where_the_database_says() {
        let parts = vec![("t".to_owned(), 0), ("t".to_owned(), 1)];
        let list = assignments(parts.clone(), Some(vec![Some(5), None]));
        assert_eq!(
            resumes(&list),
            [
                ("t", 0, Resume::Stored(Stored::At(5))),
                ("t", 1, Resume::Stored(Stored::Never))
            ]
        );
        // The database could not be read: no partition's place is known.
        let list = assignments(parts, None);
        assert_eq!(
            resumes(&list),
            [("t", 0, Resume::Unknown), ("t", 1, Resume::Unknown)]
        );
    }

    #[test]
    fn a_partition_never_applied_is_read_from_the_beginning() {
        assert_eq!(resume_at(Stored::Never), Offset::Beginning);
        assert_eq!(resume_at(Stored::At(7)), Offset::Offset(7));
    }
}
