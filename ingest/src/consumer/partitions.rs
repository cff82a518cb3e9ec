//! Where each assigned partition stands: the stored offset its next batch
//! moves from, and where reading resumes. One closed state per partition
//! ([`Cursor`]) and pure transitions: no Kafka, no database. The loop
//! (`mod.rs`) reads the stored offsets and seeks when a [`Step`] asks it to,
//! so the rules that keep the stream exact are unit-tested here.

use std::collections::HashMap;
use std::sync::Arc;

use schemas::OffsetRange;

pub(super) type Key = (Arc<str>, i32);

/// Where reading one partition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cursor {
    /// Assigned while the database could not be read: the stored offset is
    /// unknown, and the first message waits for it.
    Unresolved,
    /// Placed at the stored offset (`None`: the beginning, the database has
    /// no row yet). The first message shows whether the consumer is really
    /// there; `seek_asked`: a seek to `next` has been made (a message past
    /// `next` after it means the offsets between are gone).
    Placed { next: Option<i64>, seek_asked: bool },
    /// Reading: the next offset to take; lower ones are applied already.
    Reading { next: i64 },
}

impl Cursor {
    /// The next offset to take, where known.
    fn next(self) -> Option<i64> {
        match self {
            Cursor::Unresolved => None,
            Cursor::Placed { next, .. } => next,
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
    /// before it commit; `None`: no row yet.
    pub stored: Option<i64>,
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
    /// A new assignment replaces the last: each partition with its stored
    /// offset as read in the rebalance callback (`Some(None)`: no row yet),
    /// or `None` where the database could not be read then.
    pub fn assign(&mut self, list: impl IntoIterator<Item = (Key, Option<Option<i64>>)>) {
        self.parts = list
            .into_iter()
            .map(|(key, stored)| {
                let cursor = match stored {
                    Some(next) => Cursor::Placed {
                        next,
                        seek_asked: false,
                    },
                    None => Cursor::Unresolved,
                };
                let part = Part {
                    stored: stored.flatten(),
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
            Cursor::Placed { next: None, .. } => Step::Take,
            Cursor::Placed { next: Some(n), .. } if offset == n => Step::Take,
            Cursor::Placed { next: Some(n), .. } if offset < n => return Step::Skip,
            // The loop marks the seek asked once it succeeded
            // ([`Partitions::seek_asked`]): until then every message past
            // the place asks again, and none is taken over a gap that a
            // failed seek would make.
            Cursor::Placed {
                next: Some(n),
                seek_asked: false,
            } => return Step::SeekBack { to: n },
            Cursor::Placed {
                next: Some(n),
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
    pub fn place(&mut self, key: &Key, stored: Option<i64>) {
        if let Some(p) = self.parts.get_mut(key) {
            p.stored = stored;
            p.cursor = Cursor::Placed {
                next: stored,
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
            if let Some(p) = self.parts.get_mut(&(r.topic.clone(), r.partition)) {
                p.stored = Some(r.next);
            }
        }
    }

    /// The stored offset the next batch of `key` moves from.
    pub fn stored(&self, key: &Key) -> Option<i64> {
        self.parts.get(key).and_then(|p| p.stored)
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
                let at = p.cursor.next().or(p.stored).unwrap_or(p.low);
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
mod tests {
    use super::*;

    fn key(p: i32) -> Key {
        (Arc::from("t"), p)
    }

    fn assigned(stored: Option<Option<i64>>) -> Partitions {
        let mut parts = Partitions::default();
        parts.assign([(key(0), stored)]);
        parts
    }

    fn steps(parts: &mut Partitions, offsets: &[i64]) -> Vec<Step> {
        offsets
            .iter()
            .map(|o| parts.on_message(&key(0), *o))
            .collect()
    }

    #[test]
    fn an_assignment_places_each_partition_at_its_stored_offset() {
        let mut parts = Partitions::default();
        parts.assign([
            (key(0), Some(Some(5))),
            (key(1), Some(None)),
            (key(2), None),
        ]);
        let placed = |next| Cursor::Placed {
            next,
            seek_asked: false,
        };
        assert_eq!(parts.cursor(&key(0)), Some(placed(Some(5))));
        assert_eq!(parts.cursor(&key(1)), Some(placed(None)));
        assert_eq!(parts.cursor(&key(2)), Some(Cursor::Unresolved));
        assert_eq!(
            (parts.stored(&key(0)), parts.stored(&key(1))),
            (Some(5), None)
        );
        // The next assignment replaces this one.
        parts.assign([(key(3), Some(Some(1)))]);
        assert_eq!(parts.keys(), [key(3)]);
        assert_eq!(parts.on_message(&key(0), 5), Step::NotAssigned);
    }

    #[test]
    fn reading_takes_each_offset_once_from_the_stored_one() {
        let mut parts = assigned(Some(Some(5)));
        // Redelivered below the place, the place, then a redelivery of it.
        assert_eq!(
            steps(&mut parts, &[3, 5, 6, 6, 4, 7]),
            [
                Step::Skip,
                Step::Take,
                Step::Take,
                Step::Skip,
                Step::Skip,
                Step::Take
            ]
        );
        assert_eq!(parts.cursor(&key(0)), Some(Cursor::Reading { next: 8 }));
    }

    #[test]
    fn a_partition_with_no_row_takes_whatever_comes_first() {
        let mut parts = assigned(Some(None));
        assert_eq!(steps(&mut parts, &[42, 43]), [Step::Take, Step::Take]);
    }

    #[test]
    fn a_consumer_ahead_of_the_database_seeks_back_once_then_reports_a_gap() {
        let mut parts = assigned(Some(Some(5)));
        assert_eq!(parts.on_message(&key(0), 9), Step::SeekBack { to: 5 });
        // The seek failed: the next message asks again, nothing is taken.
        assert_eq!(parts.on_message(&key(0), 10), Step::SeekBack { to: 5 });
        parts.seek_asked(&key(0));
        // The seek landed further on: 5..10 are gone from the topic.
        assert_eq!(
            parts.on_message(&key(0), 10),
            Step::TakeAfterGap { missing: 5 }
        );
        assert_eq!(parts.on_message(&key(0), 11), Step::Take);
        let mut parts = assigned(Some(Some(5)));
        assert_eq!(parts.on_message(&key(0), 9), Step::SeekBack { to: 5 });
        parts.seek_asked(&key(0));
        assert_eq!(steps(&mut parts, &[5, 6]), [Step::Take, Step::Take]);
    }

    #[test]
    fn a_partition_assigned_without_the_database_resumes_from_it() {
        let mut parts = assigned(None);
        assert_eq!(parts.on_message(&key(0), 3), Step::Resolve);
        assert_eq!(parts.on_message(&key(0), 3), Step::Resolve, "nothing moved");
        parts.place(&key(0), Some(3));
        assert_eq!(parts.stored(&key(0)), Some(3));
        assert_eq!(steps(&mut parts, &[3, 4]), [Step::Take, Step::Take]);
        // No row: the loop seeks to the beginning; the first message is taken.
        let mut parts = assigned(None);
        parts.place(&key(0), None);
        parts.seek_asked(&key(0));
        assert_eq!(steps(&mut parts, &[0, 1]), [Step::Take, Step::Take]);
    }

    #[test]
    fn a_fence_moves_reading_back_to_the_stored_offset() {
        let mut parts = assigned(Some(Some(0)));
        steps(&mut parts, &[0, 1, 2, 3]);
        let cut = |next| OffsetRange {
            topic: Arc::from("t"),
            partition: 0,
            expected: None,
            next,
        };
        parts.cut(&[cut(4)]);
        assert_eq!(
            parts.stored(&key(0)),
            Some(4),
            "the next batch moves from 4"
        );
        // Fenced: another worker moved the stored offset to 2; the loop
        // reads it and seeks there.
        parts.place(&key(0), Some(2));
        parts.seek_asked(&key(0));
        assert_eq!(parts.stored(&key(0)), Some(2));
        // What was read past it is read again (a seek drops what librdkafka
        // had fetched before it).
        assert_eq!(
            steps(&mut parts, &[1, 2, 3, 4]),
            [Step::Skip, Step::Take, Step::Take, Step::Take]
        );
    }

    #[test]
    fn a_revoke_drops_every_partition() {
        let mut parts = assigned(Some(Some(0)));
        parts.revoke();
        assert_eq!(parts.len(), 0);
        assert_eq!(parts.on_message(&key(0), 0), Step::NotAssigned);
        assert!(parts.drained(), "no partition: nothing left to drain");
    }

    #[test]
    fn drained_means_every_partition_read_to_its_end_offset() {
        let mut parts = Partitions::default();
        parts.assign([(key(0), Some(Some(5))), (key(1), Some(None))]);
        assert!(!parts.drained(), "no end offsets yet");
        assert_eq!(parts.without_end(), [key(0), key(1)]);
        parts.set_watermarks(&key(0), 0, 5);
        parts.set_watermarks(&key(1), 3, 3);
        assert!(parts.drained(), "stored at the end; an empty partition");
        parts.set_watermarks(&key(0), 0, 7);
        assert!(!parts.drained());
        steps(&mut parts, &[5, 6]);
        assert!(parts.drained());
    }

    #[test]
    fn left_counts_from_the_read_positions_to_the_ends() {
        let mut parts = Partitions::default();
        parts.assign([(key(0), Some(Some(5))), (key(1), Some(None))]);
        assert_eq!(parts.left(), None, "no end offsets yet");
        parts.set_watermarks(&key(0), 0, 9);
        assert_eq!(parts.left(), None, "one end not known");
        parts.set_watermarks(&key(1), 2, 6);
        assert_eq!(parts.left(), Some(4 + 4), "stored 5 of 9; low 2 of 6");
        steps(&mut parts, &[5, 6]);
        assert_eq!(parts.left(), Some(2 + 4));
    }
}
