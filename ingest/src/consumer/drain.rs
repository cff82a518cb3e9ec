//! `--until-caught-up`: when this member, and the group, have drained the
//! topics to the end offsets seen at assignment.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use tracing::{debug, warn};

use super::Ingest;
use super::context::Context;
use super::partitions::Key;
use crate::OffsetLookup;

impl Ingest {
    /// Reads each partition's watermarks: the end to drain to.
    pub(super) async fn fetch_ends(&mut self) {
        let keys = self.parts.without_end();
        for key in keys {
            let consumer = self.consumer.clone();
            let k = key.clone();
            let marks = tokio::task::spawn_blocking(move || {
                consumer.fetch_watermarks(&k.topic, k.partition, Duration::from_secs(5))
            })
            .await
            .expect("watermark task does not panic");
            match marks {
                Ok((low, high)) => {
                    self.parts.set_watermarks(&key, low, high);
                    debug!(topic = %key.topic, partition = key.partition, low, high, "end offset to drain to");
                }
                Err(error) => {
                    warn!(%error, topic = %key.topic, partition = key.partition, "could not read watermarks; will retry")
                }
            }
        }
    }

    /// `--until-caught-up` is about the topics, not this member's share: a
    /// member that has drained its partitions also waits until every other
    /// partition is in the database up to its end. Otherwise a drain that
    /// starts beside a dead member (still in the group until its session
    /// expires) would stop with that member's partitions never read.
    pub(super) async fn group_caught_up(&mut self) -> bool {
        if Instant::now() < self.next_group_check {
            return false;
        }
        self.next_group_check = Instant::now() + Duration::from_millis(self.settings.drain_idle_ms);
        let consumer = self.consumer.clone();
        let topics: Vec<String> = self.topics.keys().cloned().collect();
        let mine: Vec<Key> = self.parts.keys();
        let lookup = self.lookup.clone();
        let mut ends = std::mem::take(&mut self.others_end);
        let (behind, ends) = tokio::task::spawn_blocking(move || {
            let behind = others_behind(&consumer, &topics, &mine, &lookup, &mut ends);
            (behind, ends)
        })
        .await
        .unwrap_or((None, HashMap::new()));
        self.others_end = ends;
        match behind {
            Some(b) if b.is_empty() => true,
            Some(b) => {
                debug!(partitions = ?b, "drained here; waiting for partitions other members hold");
                false
            }
            None => false,
        }
    }

    /// This member's part of the drain: every partition read to its end,
    /// nothing pending, and quiet for `ingest.drain_idle_ms`.
    pub(super) fn caught_up(&mut self) -> bool {
        if !self.assigned
            || self.in_flight > 0
            || !self.builder.is_empty()
            || self.resync
            || self.settling
            || self.last_message.elapsed() < Duration::from_millis(self.settings.drain_idle_ms)
        {
            return false;
        }
        self.parts.drained()
    }
}

/// The partitions other members hold that the database does not have up to
/// their end; `None` where the cluster or the database could not say.
/// Blocking. `ends` keeps the (low, high) watermarks first seen of each.
fn others_behind(
    consumer: &StreamConsumer<Context>,
    topics: &[String],
    mine: &[Key],
    lookup: &OffsetLookup,
    ends: &mut HashMap<(String, i32), (i64, i64)>,
) -> Option<Vec<(String, i32)>> {
    let others = others(consumer, topics, mine)?;
    if others.is_empty() {
        return Some(others);
    }
    let stored = lookup(&others).ok()?;
    let mut behind = Vec::new();
    for ((t, p), s) in others.into_iter().zip(stored) {
        // The end seen the first time this partition was looked at since
        // the assignment: producers that go on writing do not keep the
        // drain running.
        let (low, end) = match ends.get(&(t.clone(), p)) {
            Some(e) => *e,
            None => {
                let e = consumer
                    .fetch_watermarks(&t, p, Duration::from_secs(5))
                    .ok()?;
                ends.insert((t.clone(), p), e);
                e
            }
        };
        if s.unwrap_or(low) < end {
            behind.push((t, p));
        }
    }
    Some(behind)
}

/// The partitions of `topics` that are not `mine`, from the cluster's
/// metadata; `None` where it could not describe a topic. Blocking.
fn others(
    consumer: &StreamConsumer<Context>,
    topics: &[String],
    mine: &[Key],
) -> Option<Vec<(String, i32)>> {
    let mut others = Vec::new();
    for t in topics {
        let md = consumer
            .fetch_metadata(Some(t), Duration::from_secs(5))
            .ok()?;
        for mt in md.topics() {
            // A topic the broker could not describe is not a drained one.
            if mt.error().is_some() {
                return None;
            }
            for p in mt.partitions() {
                if !mine
                    .iter()
                    .any(|k| &*k.topic == t.as_str() && k.partition == p.id())
                {
                    others.push((t.clone(), p.id()));
                }
            }
        }
    }
    Some(others)
}
