//! Mission decisions: each mission the batch touches, in key order, merged
//! with its ledger row. Dispatch and completion each keep their highest
//! version; a completion that cannot belong to the winning dispatch is
//! rejected here, the one refusal that needs the ledger.

use schemas::{CompletionFact, Dispatch, DispatchFact, ErrorCode, Event, MissionFact, Rejection};

use super::gather::Key;
use super::{FactKey, Map, Plan, Prior};

impl<'p> Plan<'_, 'p> {
    /// Files each mission as new or replaced (or nothing), rejecting the
    /// completions that cannot belong to it.
    pub(super) fn decide_missions<'e>(
        &mut self,
        mut dispatches: Map<Key<'e>, (&'e Event, &'e Dispatch)>,
        mut completions: Map<Key<'e>, Vec<(usize, CompletionFact)>>,
        prior: &'p Prior,
    ) {
        let mut keys: Vec<Key<'e>> = dispatches
            .keys()
            .chain(completions.keys())
            .copied()
            .collect();
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            let key_owned = (key.0.clone(), key.1.clone());
            let old = prior.missions.get(&key_owned);
            let new = self.merged(
                key_owned,
                old,
                dispatches.remove(&key),
                completions.remove(&key).unwrap_or_default(),
            );
            self.record_mission(old, new);
        }
    }

    /// The mission once the batch's dispatch and completions are added to
    /// what the ledger holds of it.
    fn merged(
        &mut self,
        (institution, mission_id): FactKey,
        old: Option<&MissionFact>,
        batch_dispatch: Option<(&Event, &Dispatch)>,
        batch_completions: Vec<(usize, CompletionFact)>,
    ) -> MissionFact {
        let mut dispatch = old.and_then(|m| m.dispatch.clone());
        if let Some(d) = batch_dispatch.map(|(e, d)| dispatch_fact(e, d))
            && dispatch.as_ref().is_none_or(|o| o.version() < d.version())
        {
            dispatch = Some(d);
        }
        let old_completion = old.and_then(|m| m.completion.clone());
        let completion =
            self.newest_completion(old_completion, dispatch.as_ref(), batch_completions);
        MissionFact {
            institution,
            mission_id,
            dispatch,
            completion,
        }
    }

    /// The highest version among `completion` and the batch's, leaving out
    /// (and rejecting) those that cannot belong to `dispatch`.
    fn newest_completion(
        &mut self,
        mut completion: Option<CompletionFact>,
        dispatch: Option<&DispatchFact>,
        batch: Vec<(usize, CompletionFact)>,
    ) -> Option<CompletionFact> {
        for (i, c) in batch {
            if let Some(r) = dispatch.and_then(|d| completion_problem(d, &c)) {
                // Only completions are refused here: ingest keeps the bytes
                // of exactly these (`Body::refusable_late`).
                self.rejected.push((i, r));
                continue;
            }
            if completion
                .as_ref()
                .is_none_or(|o| o.version() < c.version())
            {
                completion = Some(c);
            }
        }
        completion
    }

    /// Files `new` as a new or replaced mission, unless it changes nothing:
    /// the same as the ledger's row, or (no row yet) empty.
    fn record_mission(&mut self, old: Option<&'p MissionFact>, new: MissionFact) {
        if old == Some(&new)
            || (old.is_none() && new.dispatch.is_none() && new.completion.is_none())
        {
            return;
        }
        match old {
            Some(old) => {
                self.old_missions.push(old);
                self.changes.missions_replaced.push(new);
            }
            None => self.changes.missions_new.push(new),
        }
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
