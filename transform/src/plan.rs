//! Ledger decisions: which version of each fact wins once this batch is
//! added to what the ledger holds, and the signed cells that change makes.
//!
//! Winners are chosen by a total order on versions (activity: revision, then
//! event id; mission dispatch and completion: event time, then event id), so
//! the result never depends on the order or batching in which events arrive.

use std::borrow::Borrow;
use std::collections::HashMap;

use schemas::{
    ActivityFact, Body, Changes, CompletionFact, DispatchFact, ErrorCode, Event, MissionFact,
    Rejection,
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
    let mut activities: HashMap<FactKey, ActivityFact> = HashMap::new();
    let mut dispatches: HashMap<FactKey, DispatchFact> = HashMap::new();
    let mut completions: HashMap<FactKey, Vec<(usize, CompletionFact)>> = HashMap::new();
    let mut programs: HashMap<String, Option<(DispatchVersion, String)>> = HashMap::new();

    for (i, e) in events.iter().map(Borrow::borrow).enumerate() {
        let inst = e.institution.as_str().to_owned();
        match &e.body {
            Body::Activity(a) => {
                if !programs.contains_key(a.program_id.as_str()) {
                    programs.insert(a.program_id.as_str().to_owned(), None);
                }
                let f = ActivityFact {
                    institution: inst.clone(),
                    record_id: a.record_id.as_str().to_owned(),
                    revision: a.revision,
                    event_id: e.id.clone(),
                    program_id: a.program_id.as_str().to_owned(),
                    mission_id: a.mission_id.as_deref().map(str::to_owned),
                    facility_id: a.facility_id.as_str().to_owned(),
                    region_code: a.region_code.clone(),
                    day: a.occurred_on,
                    metric: a.metric,
                    dims: a.dims.to_json(),
                    value: a.value.hundredths(),
                };
                keep_max(&mut activities, (inst, f.record_id.clone()), f);
            }
            Body::Dispatched(d) => {
                let f = DispatchFact {
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
                };
                let entry = programs.entry(f.program_id.clone()).or_default();
                if let Some(name) = &f.program_name {
                    let v = (f.time, f.event_id.clone());
                    if entry.as_ref().is_none_or(|(old, _)| *old < v) {
                        *entry = Some((v, name.clone()));
                    }
                }
                keep_max(&mut dispatches, (inst, d.mission_id.as_str().to_owned()), f);
            }
            Body::Completed(c) => {
                let f = CompletionFact {
                    time: e.time,
                    event_id: e.id.clone(),
                    end_date: c.end_date,
                };
                completions
                    .entry((inst, c.mission_id.as_str().to_owned()))
                    .or_default()
                    .push((i, f));
            }
        }
    }

    let mut changed = 0;
    let mut activity_keys: Vec<_> = activities.into_iter().collect();
    activity_keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (key, new) in activity_keys {
        match prior.activities.get(&key) {
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

    let mut mission_keys: Vec<FactKey> = dispatches
        .keys()
        .chain(completions.keys())
        .cloned()
        .collect();
    mission_keys.sort_unstable();
    mission_keys.dedup();
    for key in mission_keys {
        let old = prior.missions.get(&key);
        let mut dispatch = old.and_then(|m| m.dispatch.clone());
        if let Some(d) = dispatches.remove(&key)
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
        let new = MissionFact {
            institution: key.0.clone(),
            mission_id: key.1.clone(),
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
        .map(|(id, n)| (id, n.map(|(_, name)| name)))
        .collect();
    programs.sort_unstable();
    p.changes.programs = programs;
    p.unchanged = events.len().saturating_sub(p.rejected.len() + changed);
    p
}

type DispatchVersion = (chrono::DateTime<chrono::Utc>, String);

/// Facts compared by version: higher wins.
trait Versioned {
    fn newer_than(&self, other: &Self) -> bool;
}

impl Versioned for ActivityFact {
    fn newer_than(&self, other: &Self) -> bool {
        self.version() > other.version()
    }
}

impl Versioned for DispatchFact {
    fn newer_than(&self, other: &Self) -> bool {
        self.version() > other.version()
    }
}

fn keep_max<K: std::hash::Hash + Eq, F: Versioned>(map: &mut HashMap<K, F>, key: K, new: F) {
    match map.entry(key) {
        std::collections::hash_map::Entry::Occupied(mut o) => {
            if new.newer_than(o.get()) {
                o.insert(new);
            }
        }
        std::collections::hash_map::Entry::Vacant(v) => {
            v.insert(new);
        }
    }
}

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
