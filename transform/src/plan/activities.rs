//! Activity decisions: each batch winner against its ledger row, in key
//! order. A higher version is a new or replaced fact; a lower or equal one
//! changes no figure, but an earlier delivery still moves its arrivals.

use std::borrow::Cow;

use schemas::{Activity, ActivityFact, Event, Id};

use super::gather::{Deliveries, Key};
use super::key_order::in_key_order;
use super::{Map, Plan, Prior};

impl<'e, 'p> Plan<'e, 'p> {
    /// Files each winner as new, replaced or restamped (or nothing).
    pub(super) fn decide_activities(
        &mut self,
        winners: Map<Key<'e>, Deliveries<'e>>,
        prior: &'p Prior,
    ) {
        let winners = in_key_order(winners.into_iter().collect());
        // The prior rows by borrowed key, so that a winner is looked up
        // without building an owned key.
        let prior_activities: Map<(&Id, &Id), &ActivityFact<'static>> = prior
            .activities
            .values()
            .map(|f| ((&*f.institution, &*f.record_id), f))
            .collect();
        // Most winners are new facts: room for them up front, instead of
        // growing a vector of facts by copies.
        self.changes.activities_new.reserve(winners.len());
        for (key, d) in winners {
            self.decide_activity(d, prior_activities.get(&key).copied());
        }
    }

    fn decide_activity(&mut self, d: Deliveries<'e>, old: Option<&'p ActivityFact<'static>>) {
        let mut new = activity_fact(d.event, d.activity);
        new.first_arrived = d.first;
        new.revision_arrived = d.winner_first;
        match old {
            Some(old) if old.version() >= new.version() => {
                let same_version = old.version() == new.version();
                if let Some(f) = restamped(old, &d, same_version) {
                    self.changes.activities_restamped.push(f);
                }
            }
            Some(old) => {
                new.first_arrived = old.first_arrived.min(d.first);
                self.old_activities.push(old);
                self.changes.activities_replaced.push(new);
            }
            None => self.changes.activities_new.push(new),
        }
    }
}

/// The ledger's fact, which keeps its figures, with the arrivals this
/// batch moves earlier: any delivery moves the first arrival, only a
/// delivery of the same version moves the revision's. `None` when neither
/// moves.
fn restamped(
    old: &ActivityFact<'static>,
    d: &Deliveries<'_>,
    same_version: bool,
) -> Option<ActivityFact<'static>> {
    let first = old.first_arrived.min(d.first);
    let revision = if same_version {
        old.revision_arrived.min(d.winner_first)
    } else {
        old.revision_arrived
    };
    if (first, revision) == (old.first_arrived, old.revision_arrived) {
        return None;
    }
    let mut f = old.clone();
    f.first_arrived = first;
    f.revision_arrived = revision;
    Some(f)
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
