//! Ledger decisions: which version of each fact wins once this batch is
//! added to what the ledger holds, and the signed cells that change makes.
//!
//! Winners are chosen by a total order on versions (activity: revision, then
//! event id; mission dispatch and completion: event time, then event id), so
//! the result never depends on the order or batching in which events arrive.
//!
//! [`plan`] reads top-down: gather the batch's candidates per key
//! (`gather`), decide each activity against its ledger row (`activities`),
//! then each mission (`missions`).

mod activities;
mod gather;
mod key_order;
mod missions;

use std::borrow::Borrow;
use std::collections::HashMap;

/// The per-batch maps: foldhash, several times cheaper than SipHash here.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

use schemas::{ActivityFact, Body, Changes, Event, Id, MissionFact, Rejection};

use crate::contribution::{Contribution, activity_cells, mission_cells};
use gather::Candidates;

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

    /// Facts whose figures change: new or replaced. A restamped fact
    /// keeps its figures, and a rejected event changes nothing.
    fn changed(&self) -> usize {
        let c = &self.changes;
        c.activities_new.len()
            + c.activities_replaced.len()
            + c.missions_new.len()
            + c.missions_replaced.len()
    }
}

/// What `events` change once added to `prior`, the ledger rows of the
/// keys they touch.
pub fn plan<'e, 'p, E: Borrow<Event>>(events: &'e [E], prior: &'p Prior) -> Plan<'e, 'p> {
    let Candidates {
        activities,
        dispatches,
        completions,
        programs,
    } = Candidates::gather(events);
    let mut p = Plan::default();
    p.decide_activities(activities, prior);
    p.decide_missions(dispatches, completions, prior);
    p.changes.programs = gather::program_names(programs);
    p.unchanged = events.len().saturating_sub(p.rejected.len() + p.changed());
    p
}
