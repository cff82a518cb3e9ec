//! Ledger decisions: which version of each fact wins once this batch is
//! added to what the ledger holds, and the signed cells that change makes.
//!
//! Winners are chosen by a total order on versions (activity: revision, then
//! event id; mission dispatch and completion: event time, then event id), so
//! the result never depends on the order or batching in which events arrive.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;

/// The per-batch maps: foldhash, several times cheaper than SipHash here.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

use schemas::{
    Activity, ActivityFact, Body, Changes, CompletionFact, Dispatch, DispatchFact, ErrorCode,
    Event, MissionFact, Rejection,
};

use crate::contribution::{Contribution, activity_cells, mission_cells};

/// `(institution, record_id)` or `(institution, mission_id)`.
pub type FactKey = (String, String);

/// The ledger rows of the keys a batch touches, as locked by the sink.
#[derive(Debug, Default, Clone)]
pub struct Prior {
    pub activities: HashMap<FactKey, ActivityFact>,
    pub missions: HashMap<FactKey, MissionFact>,
}

impl Prior {
    /// The keys of `events`, sorted, as the sink must lock them.
    pub fn keys<E: Borrow<Event>>(events: &[E]) -> (Vec<FactKey>, Vec<FactKey>) {
        let mut activities = Vec::new();
        let mut missions = Vec::new();
        for e in events.iter().map(Borrow::borrow) {
            let inst = e.institution.as_str().to_owned();
            match &e.body {
                Body::Activity(a) => activities.push((inst, a.record_id.as_str().to_owned())),
                Body::Dispatched(d) => missions.push((inst, d.mission_id.as_str().to_owned())),
                Body::Completed(c) => missions.push((inst, c.mission_id.as_str().to_owned())),
            }
        }
        for v in [&mut activities, &mut missions] {
            v.sort_unstable();
            v.dedup();
        }
        (activities, missions)
    }
}

/// The facts that change, and the old versions they replace (borrowed from
/// the [`Prior`], index for index with `changes.*_replaced`).
#[derive(Debug, Default)]
pub struct Plan<'p> {
    pub changes: Changes,
    pub old_activities: Vec<&'p ActivityFact>,
    pub old_missions: Vec<&'p MissionFact>,
    pub rejected: Vec<(usize, Rejection)>,
    pub unchanged: usize,
}

impl Plan<'_> {
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

pub fn plan<'p, E: Borrow<Event>>(events: &[E], prior: &'p Prior) -> Plan<'p> {
    let mut p = Plan::default();
    // The batch's winner per key, borrowed from its event: an owned fact
    // is built only for a winner.
    let mut activities: Map<(&str, &str), (&Event, &Activity)> = Map::default();
    let mut dispatches: Map<(&str, &str), (&Event, &Dispatch)> = Map::default();
    let mut completions: Map<(&str, &str), Vec<(usize, CompletionFact)>> = Map::default();
    let mut programs: Map<&str, Option<(DispatchVersion<'_>, &str)>> = Map::default();

    for (i, e) in events.iter().map(Borrow::borrow).enumerate() {
        let inst = e.institution.as_str();
        match &e.body {
            Body::Activity(a) => {
                programs.entry(a.program_id.as_str()).or_default();
                let key = (inst, a.record_id.as_str());
                keep_newest(&mut activities, key, (e, a), |(e, a)| (a.revision, &e.id));
            }
            Body::Dispatched(d) => {
                let entry = programs.entry(d.program_id.as_str()).or_default();
                if let Some(name) = &d.program_name {
                    let v = (e.time, e.id.as_str());
                    if entry.as_ref().is_none_or(|(old, _)| *old < v) {
                        *entry = Some((v, name));
                    }
                }
                let key = (inst, d.mission_id.as_str());
                keep_newest(&mut dispatches, key, (e, d), |(e, _)| (e.time, &e.id));
            }
            Body::Completed(c) => {
                let f = CompletionFact {
                    time: e.time,
                    event_id: e.id.clone(),
                    end_date: c.end_date,
                };
                completions
                    .entry((inst, c.mission_id.as_str()))
                    .or_default()
                    .push((i, f));
            }
        }
    }

    let mut changed = 0;
    let mut winners: Vec<_> = activities.into_iter().collect();
    winners.sort_unstable_by_key(|(key, _)| *key);
    // Most winners are new facts: room for them up front, instead of
    // growing a vector of 200-byte facts by copies.
    p.changes.activities_new.reserve(winners.len());
    for (_, (e, a)) in winners {
        let mut new = activity_fact(e, a);
        match prior_of(&prior.activities, &mut new.institution, &mut new.record_id) {
            Some(old) if old.version() >= new.version() => {}
            Some(old) => {
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

    let mut mission_keys: Vec<(&str, &str)> = dispatches
        .keys()
        .chain(completions.keys())
        .copied()
        .collect();
    mission_keys.sort_unstable();
    mission_keys.dedup();
    for key in mission_keys {
        let key_owned = (key.0.to_owned(), key.1.to_owned());
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
        .map(|(id, n)| (id.to_owned(), n.map(|(_, name)| name.to_owned())))
        .collect();
    programs.sort_unstable();
    p.changes.programs = programs;
    p.unchanged = events.len().saturating_sub(p.rejected.len() + changed);
    p
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

fn activity_fact(e: &Event, a: &Activity) -> ActivityFact {
    ActivityFact {
        institution: e.institution.as_str().to_owned(),
        record_id: a.record_id.as_str().to_owned(),
        revision: a.revision,
        event_id: e.id.clone(),
        program_id: a.program_id.as_str().to_owned(),
        mission_id: a.mission_id.as_deref().map(str::to_owned),
        facility_id: a.facility_id.as_str().to_owned(),
        region_code: a.region_code.clone(),
        day: a.occurred_on,
        metric: a.metric,
        dims: a.dims.as_json().to_owned(),
        value: a.value.hundredths(),
    }
}

fn dispatch_fact(e: &Event, d: &Dispatch) -> DispatchFact {
    DispatchFact {
        time: e.time,
        event_id: e.id.clone(),
        program_id: d.program_id.as_str().to_owned(),
        program_name: d.program_name.clone(),
        host_facility_id: d.host_facility_id.as_str().to_owned(),
        host_facility_name: d.host_facility_name.clone(),
        region_code: d.region_code.clone(),
        team_size: d.team_size,
        specialties: d.specialties.clone(),
        start_date: d.start_date,
        planned_end_date: d.planned_end_date,
    }
}

/// The prior row of `(institution, id)`, looked up without allocating a
/// key: the fact's own two strings are lent to the key and given back.
fn prior_of<'p, V>(
    map: &'p HashMap<FactKey, V>,
    institution: &mut String,
    id: &mut String,
) -> Option<&'p V> {
    if map.is_empty() {
        return None;
    }
    let key = (std::mem::take(institution), std::mem::take(id));
    let found = map.get(&key);
    (*institution, *id) = key;
    found
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
