//! The offsets a batch moves the database from and to, per partition: what
//! ingest cuts and the sink claims (compare-and-set), one type for both.

use std::sync::Arc;

/// The offsets a batch covers in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetRange {
    pub topic: Arc<str>,
    pub partition: i32,
    /// The stored offset the batch moves from (`None`: no row yet).
    pub expected: Option<i64>,
    /// The stored offset it moves to: its last message's offset plus one.
    pub next: i64,
}
