//! The rules of [`Partitions`](super::Partitions), one behaviour per test:
//! where an assignment places each partition, what each offset after it
//! does, and when a drain is done.

use super::*;

fn key(p: i32) -> Key {
    Key::new(Arc::from("t"), p)
}

/// Read in the rebalance callback: stored at `next`.
fn at(next: i64) -> Resume {
    Resume::Stored(Stored::At(next))
}

/// Read in the rebalance callback: no row.
const NEVER: Resume = Resume::Stored(Stored::Never);

fn assigned(resume: Resume) -> Partitions {
    let mut parts = Partitions::default();
    parts.assign([(key(0), resume)]);
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
    parts.assign([(key(0), at(5)), (key(1), NEVER), (key(2), Resume::Unknown)]);
    let placed = |at| Cursor::Placed {
        at,
        seek_asked: false,
    };
    assert_eq!(parts.cursor(&key(0)), Some(placed(Stored::At(5))));
    assert_eq!(parts.cursor(&key(1)), Some(placed(Stored::Never)));
    assert_eq!(parts.cursor(&key(2)), Some(Cursor::Unresolved));
    assert_eq!(
        (parts.stored(&key(0)), parts.stored(&key(1))),
        (Some(Stored::At(5)), Some(Stored::Never))
    );
    // The next assignment replaces this one.
    parts.assign([(key(3), at(1))]);
    assert_eq!(parts.keys(), [key(3)]);
    assert_eq!(parts.on_message(&key(0), 5), Step::NotAssigned);
}

#[test]
fn reading_takes_each_offset_once_from_the_stored_one() {
    let mut parts = assigned(at(5));
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
    let mut parts = assigned(NEVER);
    assert_eq!(steps(&mut parts, &[42, 43]), [Step::Take, Step::Take]);
}

#[test]
fn a_consumer_ahead_of_the_database_seeks_back_once_then_reports_a_gap() {
    let mut parts = assigned(at(5));
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
    let mut parts = assigned(at(5));
    assert_eq!(parts.on_message(&key(0), 9), Step::SeekBack { to: 5 });
    parts.seek_asked(&key(0));
    assert_eq!(steps(&mut parts, &[5, 6]), [Step::Take, Step::Take]);
}

#[test]
fn a_partition_assigned_without_the_database_resumes_from_it() {
    let mut parts = assigned(Resume::Unknown);
    assert_eq!(parts.on_message(&key(0), 3), Step::Resolve);
    assert_eq!(parts.on_message(&key(0), 3), Step::Resolve, "nothing moved");
    parts.place(&key(0), Stored::At(3));
    assert_eq!(parts.stored(&key(0)), Some(Stored::At(3)));
    assert_eq!(steps(&mut parts, &[3, 4]), [Step::Take, Step::Take]);
    // No row: the loop seeks to the beginning; the first message is taken.
    let mut parts = assigned(Resume::Unknown);
    parts.place(&key(0), Stored::Never);
    parts.seek_asked(&key(0));
    assert_eq!(steps(&mut parts, &[0, 1]), [Step::Take, Step::Take]);
}

#[test]
fn a_fence_moves_reading_back_to_the_stored_offset() {
    let mut parts = assigned(at(0));
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
        Some(Stored::At(4)),
        "the next batch moves from 4"
    );
    // Fenced: another worker moved the stored offset to 2; the loop
    // reads it and seeks there.
    parts.place(&key(0), Stored::At(2));
    parts.seek_asked(&key(0));
    assert_eq!(parts.stored(&key(0)), Some(Stored::At(2)));
    // What was read past it is read again (a seek drops what librdkafka
    // had fetched before it).
    assert_eq!(
        steps(&mut parts, &[1, 2, 3, 4]),
        [Step::Skip, Step::Take, Step::Take, Step::Take]
    );
}

#[test]
fn a_revoke_drops_every_partition() {
    let mut parts = assigned(at(0));
    parts.revoke();
    assert_eq!(parts.len(), 0);
    assert_eq!(parts.on_message(&key(0), 0), Step::NotAssigned);
    assert!(parts.drained(), "no partition: nothing left to drain");
}

#[test]
fn drained_means_every_partition_read_to_its_end_offset() {
    let mut parts = Partitions::default();
    parts.assign([(key(0), at(5)), (key(1), NEVER)]);
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
    parts.assign([(key(0), at(5)), (key(1), NEVER)]);
    assert_eq!(parts.left(), None, "no end offsets yet");
    parts.set_watermarks(&key(0), 0, 9);
    assert_eq!(parts.left(), None, "one end not known");
    parts.set_watermarks(&key(1), 2, 6);
    assert_eq!(parts.left(), Some(4 + 4), "stored 5 of 9; low 2 of 6");
    steps(&mut parts, &[5, 6]);
    assert_eq!(parts.left(), Some(2 + 4));
}
