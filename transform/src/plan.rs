//! Ledger decisions: which version of each fact wins once this batch is
//! added to what the ledger holds, and the signed cells that change makes.
//!
//! Winners are chosen by a total order on versions (activity: revision, then
//! event id; mission dispatch and completion: event time, then event id), so
//! the result never depends on the order or batching in which events arrive.

use std::borrow::{Borrow, Cow};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;

/// The per-batch maps: foldhash, several times cheaper than SipHash here.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

use chrono::{DateTime, Utc};
use schemas::{
    Activity, ActivityFact, Body, Changes, CompletionFact, Dispatch, DispatchFact, ErrorCode,
    Event, Id, MissionFact, Rejection,
};

use crate::contribution::{Contribution, activity_cells, mission_cells};

/// `(institution, record_id)` or `(institution, mission_id)`.
pub type FactKey = (Id, Id);

/// The ledger rows of the keys a batch touches, as locked by the sink.
#[derive(Debug, Default, Clone)]
pub struct Prior {
    pub activities: HashMap<FactKey, ActivityFact<'static>>,
    pub missions: HashMap<FactKey, MissionFact>,
}

impl Prior {
    /// The keys of `events`, sorted, as the sink must lock them.
    pub fn keys<E: Borrow<Event>>(events: &[E]) -> (Vec<FactKey>, Vec<FactKey>) {
        let mut activities = Vec::new();
        let mut missions = Vec::new();
        for e in events.iter().map(Borrow::borrow) {
            let inst = e.institution.clone();
            match &e.body {
                Body::Activity(a) => activities.push((inst, a.record_id.clone())),
                Body::Dispatched(d) => missions.push((inst, d.mission_id.clone())),
                Body::Completed(c) => missions.push((inst, c.mission_id.clone())),
            }
        }
        for v in [&mut activities, &mut missions] {
            v.sort_unstable();
            v.dedup();
        }
        (activities, missions)
    }
}

/// The facts that change (their text borrowed from the batch's events,
/// `'e`), and the old versions they replace (borrowed from the [`Prior`],
/// `'p`, index for index with `changes.*_replaced`).
#[derive(Debug, Default)]
pub struct Plan<'e, 'p> {
    pub changes: Changes<'e>,
    pub old_activities: Vec<&'p ActivityFact<'static>>,
    pub old_missions: Vec<&'p MissionFact>,
    pub rejected: Vec<(usize, Rejection)>,
    pub unchanged: usize,
}

impl Plan<'_, '_> {
    /// Every signed cell the plan makes: each changed fact's contribution
    /// minus its old version's.
    pub fn contributions(&self) -> Vec<Contribution<'_>> {
        let c = &self.changes;
        let mut out = Vec::with_capacity(
            c.activities_new.len() + 2 * c.activities_replaced.len() + 8 * c.missions_new.len(),
        );
        for f in &c.activities_new {
            activity_cells(f, 1, &mut out);
        }
        for (old, new) in self.old_activities.iter().zip(&c.activities_replaced) {
            activity_cells(old, -1, &mut out);
            activity_cells(new, 1, &mut out);
        }
        for m in &c.missions_new {
            mission_cells(m, 1, &mut out);
        }
        for (old, new) in self.old_missions.iter().zip(&c.missions_replaced) {
            mission_cells(old, -1, &mut out);
            mission_cells(new, 1, &mut out);
        }
        out
    }
}

pub fn plan<'e, 'p, E: Borrow<Event>>(events: &'e [E], prior: &'p Prior) -> Plan<'e, 'p> {
    let mut p = Plan::default();
    // The batch's winner per key, borrowed from its event: an owned fact
    // is built only for a winner.
    let mut activities: Map<(&Id, &Id), Deliveries<'_>> = Map::default();
    let mut dispatches: Map<(&Id, &Id), (&Event, &Dispatch)> = Map::default();
    let mut completions: Map<(&Id, &Id), Vec<(usize, CompletionFact)>> = Map::default();
    let mut programs: Map<&Id, Option<(DispatchVersion<'_>, &str)>> = Map::default();

    for (i, e) in events.iter().map(Borrow::borrow).enumerate() {
        let inst = &e.institution;
        match &e.body {
            Body::Activity(a) => {
                programs.entry(&a.program_id).or_default();
                match activities.entry((inst, &a.record_id)) {
                    Entry::Occupied(mut o) => o.get_mut().add(e, a),
                    Entry::Vacant(v) => {
                        v.insert(Deliveries::new(e, a));
                    }
                }
            }
            Body::Dispatched(d) => {
                let entry = programs.entry(&d.program_id).or_default();
                if let Some(name) = &d.program_name {
                    let v = (e.time, e.id.as_str());
                    if entry.as_ref().is_none_or(|(old, _)| *old < v) {
                        *entry = Some((v, name));
                    }
                }
                let key = (inst, &d.mission_id);
                keep_newest(&mut dispatches, key, (e, d), |(e, _)| (e.time, &e.id));
            }
            Body::Completed(c) => {
                let f = CompletionFact {
                    time: e.time,
                    event_id: e.id.clone(),
                    end_date: c.end_date,
                };
                completions
                    .entry((inst, &c.mission_id))
                    .or_default()
                    .push((i, f));
            }
        }
    }

    let mut changed = 0;
    let winners = in_key_order(activities.into_iter().collect());
    // The prior rows by borrowed key, so that a winner is looked up
    // without building an owned key.
    let prior_activities: Map<(&Id, &Id), &ActivityFact<'static>> = prior
        .activities
        .values()
        .map(|f| ((&*f.institution, &*f.record_id), f))
        .collect();
    // Most winners are new facts: room for them up front, instead of
    // growing a vector of facts by copies.
    p.changes.activities_new.reserve(winners.len());
    for (key, d) in winners {
        let mut new = activity_fact(d.event, d.activity);
        new.first_arrived = d.first;
        new.revision_arrived = d.winner_first;
        match prior_activities.get(&key).copied() {
            Some(old) if old.version() >= new.version() => {
                // The figures stay; an earlier delivery only moves arrivals.
                let first = old.first_arrived.min(d.first);
                let revision = if old.version() == new.version() {
                    old.revision_arrived.min(d.winner_first)
                } else {
                    old.revision_arrived
                };
                if (first, revision) != (old.first_arrived, old.revision_arrived) {
                    let mut f = old.clone();
                    f.first_arrived = first;
                    f.revision_arrived = revision;
                    p.changes.activities_restamped.push(f);
                }
            }
            Some(old) => {
                new.first_arrived = old.first_arrived.min(d.first);
                p.old_activities.push(old);
                p.changes.activities_replaced.push(new);
                changed += 1;
            }
            None => {
                p.changes.activities_new.push(new);
                changed += 1;
            }
        }
    }

    let mut mission_keys: Vec<(&Id, &Id)> = dispatches
        .keys()
        .chain(completions.keys())
        .copied()
        .collect();
    mission_keys.sort_unstable();
    mission_keys.dedup();
    for key in mission_keys {
        let key_owned = (key.0.clone(), key.1.clone());
        let old = prior.missions.get(&key_owned);
        let mut dispatch = old.and_then(|m| m.dispatch.clone());
        if let Some(d) = dispatches.remove(&key).map(|(e, d)| dispatch_fact(e, d))
            && dispatch.as_ref().is_none_or(|o| o.version() < d.version())
        {
            dispatch = Some(d);
        }
        let mut completion = old.and_then(|m| m.completion.clone());
        for (i, c) in completions.remove(&key).unwrap_or_default() {
            if let Some(r) = dispatch.as_ref().and_then(|d| completion_problem(d, &c)) {
                // Only completions are refused here: ingest keeps the bytes
                // of exactly these (`Body::refusable_late`).
                p.rejected.push((i, r));
                continue;
            }
            if completion
                .as_ref()
                .is_none_or(|o| o.version() < c.version())
            {
                completion = Some(c);
            }
        }
        let (institution, mission_id) = key_owned;
        let new = MissionFact {
            institution,
            mission_id,
            dispatch,
            completion,
        };
        if old == Some(&new)
            || (old.is_none() && new.dispatch.is_none() && new.completion.is_none())
        {
            continue;
        }
        changed += 1;
        match old {
            Some(old) => {
                p.old_missions.push(old);
                p.changes.missions_replaced.push(new);
            }
            None => {
                p.changes.missions_new.push(new);
            }
        }
    }

    let mut programs: Vec<_> = programs
        .into_iter()
        .map(|(id, n)| (id.clone(), n.map(|(_, name)| name.to_owned())))
        .collect();
    programs.sort_unstable();
    p.changes.programs = programs;
    p.unchanged = events.len().saturating_sub(p.rejected.len() + changed);
    p
}

/// `items` sorted by key, as the `(&Id, &Id)` keys compare, mostly on
/// integers: each string's first 16 bytes, big-endian and zero-padded,
/// order like the string (an identifier holds no NUL, so a string that
/// ends compares lower, as it does in full); the strings themselves are
/// compared only where those tie and one is longer. Sorting a batch's
/// winners on the strings was a third of the plan's time.
fn in_key_order<'k, V>(items: Vec<((&'k Id, &'k Id), V)>) -> Vec<((&'k Id, &'k Id), V)> {
    fn prefix(s: &str) -> u128 {
        let mut b = [0u8; 16];
        let n = s.len().min(16);
        b[..n].copy_from_slice(&s.as_bytes()[..n]);
        u128::from_be_bytes(b)
    }
    fn rest(a: &str, b: &str) -> std::cmp::Ordering {
        if a.len() <= 16 && b.len() <= 16 {
            std::cmp::Ordering::Equal
        } else {
            a.cmp(b)
        }
    }
    let mut keyed: Vec<_> = items
        .into_iter()
        .map(|(k, v)| ((prefix(k.0), prefix(k.1)), k, v))
        .collect();
    keyed.sort_unstable_by(|(pa, a, _), (pb, b, _)| {
        (pa.0.cmp(&pb.0))
            .then_with(|| rest(a.0, b.0))
            .then(pa.1.cmp(&pb.1))
            .then_with(|| rest(a.1, b.1))
    });
    keyed.into_iter().map(|(_, k, v)| (k, v)).collect()
}

/// A batch's deliveries of one activity fact: the winner (highest
/// version), the earliest arrival of any of them, and of the winner's.
/// `None` is the smallest arrival (unknown stays unknown).
struct Deliveries<'e> {
    event: &'e Event,
    activity: &'e Activity,
    first: Option<DateTime<Utc>>,
    winner_first: Option<DateTime<Utc>>,
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

/// The fact an event makes, its text borrowed from the event: no copy.
fn activity_fact<'e>(e: &'e Event, a: &'e Activity) -> ActivityFact<'e> {
    ActivityFact {
        institution: Cow::Borrowed(&e.institution),
        record_id: Cow::Borrowed(&a.record_id),
        revision: a.revision,
        event_id: e.id.as_str().into(),
        program_id: Cow::Borrowed(&a.program_id),
        mission_id: a.mission_id.as_ref().map(Cow::Borrowed),
        facility_id: Cow::Borrowed(&a.facility_id),
        region_code: a.region_code.as_str().into(),
        day: a.occurred_on,
        metric: a.metric,
        dims: Cow::Borrowed(&a.dims),
        value: a.value,
        first_arrived: e.arrived,
        revision_arrived: e.arrived,
    }
}

fn dispatch_fact(e: &Event, d: &Dispatch) -> DispatchFact {
    DispatchFact {
        time: e.time,
        event_id: e.id.clone(),
        program_id: d.program_id.clone(),
        program_name: d.program_name.clone(),
        host_facility_id: d.host_facility_id.clone(),
        host_facility_name: d.host_facility_name.clone(),
        region_code: d.region_code.clone(),
        team_size: d.team_size,
        specialties: d.specialties.clone(),
        start_date: d.start_date,
        planned_end_date: d.planned_end_date,
    }
}

type DispatchVersion<'e> = (chrono::DateTime<chrono::Utc>, &'e str);

/// A completion that cannot belong to its (known) dispatch.
fn completion_problem(d: &DispatchFact, c: &CompletionFact) -> Option<Rejection> {
    let span = (c.end_date - d.start_date).num_days();
    if span < 0 {
        Some(Rejection::new(
            ErrorCode::EndBeforeStart,
            format!(
                "data.end_date {} is before the mission's start_date {}",
                c.end_date, d.start_date
            ),
        ))
    } else if span >= schemas::ledger::MAX_MISSION_DAYS {
        Some(Rejection::new(
            ErrorCode::MissionTooLong,
            format!(
                "data.end_date {} is {} days after the mission's start_date {} (at most {})",
                c.end_date,
                span,
                d.start_date,
                schemas::ledger::MAX_MISSION_DAYS - 1
            ),
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::in_key_order;
    use schemas::Id;

    /// The integer-prefix order equals the strings' own order, for
    /// identifiers of every length around the 16-byte prefix.
    #[test]
    fn key_order_is_the_strings_order() {
        let alphabet = b"abz09.-_:";
        let mut x: u64 = 7;
        let mut next = |n: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % n
        };
        let strings: Vec<Id> = (0..400)
            .map(|_| {
                let len = 1 + next(40) as usize;
                let common = next(3) as usize * 8; // shared prefixes of 0, 8 or 16 bytes
                let s: String = (0..len)
                    .map(|i| {
                        if i < common {
                            'a'
                        } else {
                            alphabet[next(9) as usize] as char
                        }
                    })
                    .collect();
                Id::parse(&s).unwrap()
            })
            .collect();
        let keys: Vec<(&Id, &Id)> = (0..2000)
            .map(|_| (&strings[next(20) as usize], &strings[next(400) as usize]))
            .collect();
        let mut expected = keys.clone();
        expected.sort();
        let got: Vec<_> = in_key_order(keys.into_iter().map(|k| (k, ())).collect())
            .into_iter()
            .map(|(k, ())| k)
            .collect();
        assert_eq!(got, expected);
    }
}
