//! Where each assigned partition stands: the stored offset its next batch
//! moves from, and where reading resumes. One closed state per partition
//! ([`Cursor`]) and pure transitions: no Kafka, no database. The loop
//! reads the stored offsets and seeks when a [`Step`] asks it to
//! (`message.rs`, `resume.rs`), so the rules that keep the stream exact are
//! unit-tested here (`partitions/tests.rs`). What the database holds for a
//! partition is a [`Stored`]; what the rebalance callback could learn of it,
//! a [`Resume`].

use std::collections::HashMap;
use std::sync::Arc;

use schemas::OffsetRange;

/// One partition of a subscribed topic. The topic name is shared with the
/// loop's table of names, so a key costs no allocation per message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Key {
    pub topic: Arc<str>,
    pub partition: i32,
}

impl Key {
    pub fn new(topic: Arc<str>, partition: i32) -> Key {
        Key { topic, partition }
    }

    /// The partition a batch's range covers.
    pub fn of(range: &OffsetRange) -> Key {
        Key::new(range.topic.clone(), range.partition)
    }
}

/// A partition's stored offset, as the database holds it: where its next
/// batch moves from, and where reading resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stored {
    /// No row: nothing of this partition was ever applied, so reading starts
    /// at the beginning and the next batch expects no row.
    Never,
    /// The next offset to apply; lower ones are applied already.
    At(i64),
}

impl Stored {
    /// The look-up's answer for one partition ([`crate::OffsetLookup`]:
    /// `None` where nothing was ever applied).
    pub fn from_lookup(next: Option<i64>) -> Stored {
        next.map_or(Stored::Never, Stored::At)
    }

    /// The next offset to apply, if any was ever stored: what the next
    /// batch's compare-and-set expects.
    pub fn next(self) -> Option<i64> {
        match self {
            Stored::Never => None,
            Stored::At(next) => Some(next),
        }
    }
}

/// Where a newly assigned partition resumes, as far as the rebalance
/// callback could tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Resume {
    /// The database could not be read in the callback: the stored offset is
    /// unknown, and the partition's first message waits until the loop reads
    /// it.
    Unknown,
    /// At the stored offset read in the callback.
    Stored(Stored),
}

/// Where reading one partition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cursor {
    /// Assigned while the database could not be read: the stored offset is
    /// unknown, and the first message waits for it.
    Unresolved,
    /// Placed at the stored offset (at the beginning where it is
    /// [`Stored::Never`]). The first message shows whether the consumer is
    /// really there; `seek_asked`: a seek to `at` has been made (a message
    /// past `at` after it means the offsets between are gone).
    Placed { at: Stored, seek_asked: bool },
    /// Reading: the next offset to take; lower ones are applied already.
    Reading { next: i64 },
}

impl Cursor {
    /// The next offset to take, where known.
    fn next(self) -> Option<i64> {
        match self {
            Cursor::Unresolved => None,
            Cursor::Placed { at, .. } => at.next(),
            Cursor::Reading { next } => Some(next),
        }
    }
}

/// What to do with a message, as its partition's cursor decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Into the batch.
    Take,
    /// Into the batch, although offsets `missing..` before it are gone from
    /// the topic (retention): say so.
    TakeAfterGap { missing: i64 },
    /// Before the place reading resumes from (applied already): drop it.
    Skip,
    /// The consumer is ahead of the database: seek back to `to`, drop this.
    SeekBack { to: i64 },
    /// The stored offset is unknown: read it ([`Partitions::place`]), then
    /// ask again.
    Resolve,
    /// Not a partition of this member (any more): drop it.
    NotAssigned,
}

#[derive(Debug)]
pub(super) struct Part {
    /// The stored offset the next batch moves from, once the batches cut
    /// before it commit.
    pub stored: Stored,
    pub cursor: Cursor,
    /// Low and high watermark when assigned (`--until-caught-up`).
    pub low: i64,
    pub end: Option<i64>,
}

/// The partitions this member holds.
#[derive(Debug, Default)]
pub(super) struct Partitions {
    parts: HashMap<Key, Part>,
}

impl Partitions {
    /// A new assignment replaces the last: each partition where the
    /// rebalance callback found it resumes.
    pub fn assign(&mut self, list: impl IntoIterator<Item = (Key, Resume)>) {
        self.parts = list
            .into_iter()
            .map(|(key, resume)| {
                let (stored, cursor) = match resume {
                    Resume::Stored(at) => (
                        at,
                        Cursor::Placed {
                            at,
                            seek_asked: false,
                        },
                    ),
                    // Not known until the loop reads it (`place`): nothing
                    // is taken before then, so no batch moves from this.
                    Resume::Unknown => (Stored::Never, Cursor::Unresolved),
                };
                let part = Part {
                    stored,
                    cursor,
                    low: 0,
                    end: None,
                };
                (key, part)
            })
            .collect();
    }

    pub fn revoke(&mut self) {
        self.parts.clear();
    }

    /// Decides about the message at `offset`, and moves the cursor past it
    /// when it is taken.
    pub fn on_message(&mut self, key: &Key, offset: i64) -> Step {
        let Some(p) = self.parts.get_mut(key) else {
            return Step::NotAssigned;
        };
        let step = match p.cursor {
            Cursor::Unresolved => return Step::Resolve,
            Cursor::Placed {
                at: Stored::Never, ..
            } => Step::Take,
            Cursor::Placed {
                at: Stored::At(n), ..
            } if offset == n => Step::Take,
            Cursor::Placed {
                at: Stored::At(n), ..
            } if offset < n => return Step::Skip,
            // The loop marks the seek asked once it succeeded
            // ([`Partitions::seek_asked`]): until then every message past
            // the place asks again, and none is taken over a gap that a
            // failed seek would make.
            Cursor::Placed {
                at: Stored::At(n),
                seek_asked: false,
            } => return Step::SeekBack { to: n },
            Cursor::Placed {
                at: Stored::At(n),
                seek_asked: true,
            } => Step::TakeAfterGap { missing: n },
            Cursor::Reading { next } if offset < next => return Step::Skip,
            Cursor::Reading { .. } => Step::Take,
        };
        p.cursor = Cursor::Reading { next: offset + 1 };
        step
    }

    /// The stored offset, read from the database (for a partition assigned
    /// while it could not be, or after a fence): reading resumes there, and
    /// the next batch moves from it.
    pub fn place(&mut self, key: &Key, stored: Stored) {
        if let Some(p) = self.parts.get_mut(key) {
            p.stored = stored;
            p.cursor = Cursor::Placed {
                at: stored,
                seek_asked: false,
            };
        }
    }

    /// The loop's seek to the place succeeded.
    pub fn seek_asked(&mut self, key: &Key) {
        if let Some(Part {
            cursor: Cursor::Placed { seek_asked, .. },
            ..
        }) = self.parts.get_mut(key)
        {
            *seek_asked = true;
        }
    }

    /// A batch was cut: the next one moves from where it ends.
    pub fn cut(&mut self, ranges: &[OffsetRange]) {
        for r in ranges {
            if let Some(p) = self.parts.get_mut(&Key::of(r)) {
                p.stored = Stored::At(r.next);
            }
        }
    }

    /// The stored offset the next batch of `key` moves from (`None`: not
    /// assigned here).
    pub fn stored(&self, key: &Key) -> Option<Stored> {
        self.parts.get(key).map(|p| p.stored)
    }

    /// The partitions whose end offset is not known yet.
    pub fn without_end(&self) -> Vec<Key> {
        let mut keys: Vec<Key> = self
            .parts
            .iter()
            .filter(|(_, p)| p.end.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        keys
    }

    pub fn set_watermarks(&mut self, key: &Key, low: i64, high: i64) {
        if let Some(p) = self.parts.get_mut(key) {
            p.low = low;
            p.end = Some(high);
        }
    }

    /// Messages from the read positions to the end offsets, `None` while an
    /// end is not known.
    pub fn left(&self) -> Option<u64> {
        self.parts
            .values()
            .map(|p| {
                let at = p.cursor.next().or(p.stored.next()).unwrap_or(p.low);
                p.end.map(|end| (end - at).max(0) as u64)
            })
            .sum()
    }

    /// Every partition read up to the end offset it had when assigned.
    pub fn drained(&self) -> bool {
        self.parts.values().all(|p| match p.end {
            Some(end) => p.cursor.next().unwrap_or(p.low) >= end,
            None => false,
        })
    }

    pub fn contains(&self, key: &Key) -> bool {
        self.parts.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// The partitions, in order.
    pub fn keys(&self) -> Vec<Key> {
        let mut keys: Vec<Key> = self.parts.keys().cloned().collect();
        keys.sort();
        keys
    }

    #[cfg(test)]
    fn cursor(&self, key: &Key) -> Option<Cursor> {
        self.parts.get(key).map(|p| p.cursor)
    }
}

#[cfg(test)]
mod tests;
