//! A batch: the accepted events and refused messages of a stretch of the
//! stream, and per partition the offsets it moves the database from and to.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use schemas::{Event, OffsetRange, Rejection};

/// Where a message came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    /// The Kafka message timestamp (ms since the epoch): freshness is
    /// measured from it.
    pub timestamp_ms: Option<i64>,
}

/// A message's original bytes, kept where a later check may still refuse it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw {
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

#[derive(Debug, Clone)]
pub struct Accepted {
    pub event: Event,
    pub position: Position,
    /// Kept for the events that can still be refused once the ledger is
    /// read ([`schemas::Body::refusable_late`]), and for no other.
    pub raw: Option<Raw>,
}

impl Accepted {
    /// An accepted message, its bytes (`raw`, made only when needed) kept
    /// if the event can still be refused late.
    pub fn new(event: Event, position: Position, raw: impl FnOnce() -> Raw) -> Accepted {
        let raw = event.body.refusable_late().then(raw);
        Accepted {
            event,
            position,
            raw,
        }
    }
}

/// A refused message, whole, with the reason.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub position: Position,
    pub received_at: DateTime<Utc>,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub rejection: Rejection,
}

impl Rejected {
    pub fn later(position: Position, raw: Raw, rejection: Rejection) -> Rejected {
        Rejected {
            position,
            received_at: Utc::now(),
            key: raw.key,
            payload: raw.payload,
            headers: raw.headers,
            rejection,
        }
    }
}

#[derive(Debug)]
pub struct Batch {
    pub accepted: Vec<Accepted>,
    pub rejected: Vec<Rejected>,
    pub ranges: Vec<OffsetRange>,
    /// When the first message of the batch was read.
    pub started: Instant,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.accepted.len() + self.rejected.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A batch being filled.
#[derive(Default)]
pub(crate) struct Builder {
    accepted: Vec<Accepted>,
    rejected: Vec<Rejected>,
    ranges: BTreeMap<(Arc<str>, i32), OffsetRange>,
    started: Option<Instant>,
    /// The messages' size as they came from the broker.
    bytes: usize,
}

impl Builder {
    pub fn len(&self) -> usize {
        self.accepted.len() + self.rejected.len()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Counts a message's size towards the batch's byte limit.
    pub fn weigh(&mut self, bytes: usize) {
        self.bytes += bytes;
    }

    pub fn started(&self) -> Option<Instant> {
        self.started
    }

    /// Notes that the message at `offset` is part of the batch.
    pub fn cover(&mut self, topic: &Arc<str>, partition: i32, expected: Option<i64>, offset: i64) {
        self.started.get_or_insert_with(Instant::now);
        self.ranges
            .entry((topic.clone(), partition))
            .or_insert_with(|| OffsetRange {
                topic: topic.clone(),
                partition,
                expected,
                next: offset + 1,
            })
            .next = offset + 1;
    }

    pub fn accept(&mut self, a: Accepted) {
        self.accepted.push(a);
    }

    pub fn reject(&mut self, r: Rejected) {
        self.rejected.push(r);
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn take(&mut self) -> Option<Batch> {
        if self.ranges.is_empty() {
            return None;
        }
        let b = std::mem::take(self);
        Some(Batch {
            accepted: b.accepted,
            rejected: b.rejected,
            ranges: b.ranges.into_values().collect(),
            started: b.started.unwrap_or_else(Instant::now),
        })
    }
}
