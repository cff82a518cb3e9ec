//! The first pass over a batch: its candidates per key, borrowed from its
//! events, so that an owned fact is built only for a winner. Nothing here
//! looks at the ledger.

use std::borrow::Borrow;
use std::collections::hash_map::Entry;
use std::hash::Hash;

use chrono::{DateTime, Utc};
use schemas::{Activity, Body, Completion, CompletionFact, Dispatch, Event, Id};

use super::Map;

/// A key borrowed from an event: `(institution, record_id)` or
/// `(institution, mission_id)`.
pub(super) type Key<'e> = (&'e Id, &'e Id);

/// The version a dispatch's program name carries: the latest dispatch
/// names the program.
type DispatchVersion<'e> = (DateTime<Utc>, &'e str);

/// What a batch brings, per key, before the ledger is consulted.
#[derive(Default)]
pub(super) struct Candidates<'e> {
    /// Every delivery of an activity fact, folded as they come.
    pub activities: Map<Key<'e>, Deliveries<'e>>,
    /// The batch's newest dispatch of a mission.
    pub dispatches: Map<Key<'e>, (&'e Event, &'e Dispatch)>,
    /// Every completion of a mission, with its event's index in the batch:
    /// each is checked against the winning dispatch, and may be rejected.
    pub completions: Map<Key<'e>, Vec<(usize, CompletionFact)>>,
    /// Every program mentioned, with the newest name a dispatch gave it.
    pub programs: Map<&'e Id, Option<(DispatchVersion<'e>, &'e str)>>,
}

impl<'e> Candidates<'e> {
    /// One pass over the batch, in its order: `i` is an event's index,
    /// by which a rejection names it.
    pub fn gather<E: Borrow<Event>>(events: &'e [E]) -> Self {
        let mut c = Candidates::default();
        for (i, e) in events.iter().map(Borrow::borrow).enumerate() {
            match &e.body {
                Body::Activity(a) => c.add_activity(e, a),
                Body::Dispatched(d) => c.add_dispatch(e, d),
                Body::Completed(m) => c.add_completion(i, e, m),
            }
        }
        c
    }

    fn add_activity(&mut self, e: &'e Event, a: &'e Activity) {
        self.programs.entry(&a.program_id).or_default();
        match self.activities.entry((&e.institution, &a.record_id)) {
            Entry::Occupied(mut o) => o.get_mut().add(e, a),
            Entry::Vacant(v) => {
                v.insert(Deliveries::new(e, a));
            }
        }
    }

    fn add_dispatch(&mut self, e: &'e Event, d: &'e Dispatch) {
        let entry = self.programs.entry(&d.program_id).or_default();
        if let Some(name) = &d.program_name {
            let v = (e.time, e.id.as_str());
            if entry.as_ref().is_none_or(|(old, _)| *old < v) {
                *entry = Some((v, name));
            }
        }
        let key = (&e.institution, &d.mission_id);
        keep_newest(&mut self.dispatches, key, (e, d), |(e, _)| (e.time, &e.id));
    }

    fn add_completion(&mut self, i: usize, e: &'e Event, c: &'e Completion) {
        let f = CompletionFact {
            time: e.time,
            event_id: e.id.clone(),
            end_date: c.end_date,
        };
        self.completions
            .entry((&e.institution, &c.mission_id))
            .or_default()
            .push((i, f));
    }
}

/// Every program the batch mentions, sorted, with the name its newest
/// dispatch gave (if any).
pub(super) fn program_names(
    programs: Map<&Id, Option<(DispatchVersion<'_>, &str)>>,
) -> Vec<(Id, Option<String>)> {
    let mut programs: Vec<_> = programs
        .into_iter()
        .map(|(id, n)| (id.clone(), n.map(|(_, name)| name.to_owned())))
        .collect();
    programs.sort_unstable();
    programs
}

/// A batch's deliveries of one activity fact: the winner (highest
/// version), the earliest arrival of any of them, and of the winner's.
/// `None` is the smallest arrival (unknown stays unknown).
pub(super) struct Deliveries<'e> {
    pub event: &'e Event,
    pub activity: &'e Activity,
    pub first: Option<DateTime<Utc>>,
    pub winner_first: Option<DateTime<Utc>>,
}

impl<'e> Deliveries<'e> {
    fn new(event: &'e Event, activity: &'e Activity) -> Self {
        Deliveries {
            event,
            activity,
            first: event.arrived,
            winner_first: event.arrived,
        }
    }

    fn add(&mut self, e: &'e Event, a: &'e Activity) {
        self.first = self.first.min(e.arrived);
        let version = (a.revision, e.id.as_str());
        match version.cmp(&(self.activity.revision, self.event.id.as_str())) {
            std::cmp::Ordering::Greater => {
                (self.event, self.activity) = (e, a);
                self.winner_first = e.arrived;
            }
            std::cmp::Ordering::Equal => self.winner_first = self.winner_first.min(e.arrived),
            std::cmp::Ordering::Less => {}
        }
    }
}

/// Keeps the candidate with the highest version per key (the first of
/// equal ones, so a redelivery changes nothing).
fn keep_newest<K: Hash + Eq, C: Copy, V: Ord>(
    map: &mut Map<K, C>,
    key: K,
    new: C,
    version: impl Fn(C) -> V,
) {
    match map.entry(key) {
        Entry::Occupied(mut o) => {
            if version(new) > version(*o.get()) {
                o.insert(new);
            }
        }
        Entry::Vacant(v) => {
            v.insert(new);
        }
    }
}
