//! What one fact adds to `daily_metrics`: the single definition of the
//! contract's metric rules, used for both the new and the old version of a
//! fact so a change is exactly "new minus old".

use schemas::{ActivityFact, Cell, Metric, MissionFact};

/// An activity counts its value on its day; a withdrawal (0) counts nothing.
pub fn activity_cells(f: &ActivityFact, sign: i64, out: &mut Vec<Cell>) {
    if f.value == 0 {
        return;
    }
    out.push(Cell {
        day: f.day,
        institution: f.institution.clone(),
        program_id: f.program_id.clone(),
        mission_id: f.mission_id.clone(),
        facility_id: f.facility_id.clone(),
        region_code: f.region_code.clone(),
        metric: f.metric,
        dims: f.dims.clone(),
        value: sign * f.value,
    });
}

/// A dispatched mission counts itself and its team on the start date; once
/// completed, itself on the end date and its team on every on-site day.
pub fn mission_cells(m: &MissionFact, sign: i64, out: &mut Vec<Cell>) {
    let Some(d) = &m.dispatch else { return };
    let cell = |day, metric, units: i64| Cell {
        day,
        institution: m.institution.clone(),
        program_id: d.program_id.clone(),
        mission_id: Some(m.mission_id.clone()),
        facility_id: d.host_facility_id.clone(),
        region_code: d.region_code.clone(),
        metric,
        dims: "{}".to_owned(),
        value: sign * units * 100,
    };
    let team = d.team_size as i64;
    out.push(cell(d.start_date, Metric::MissionsDispatched, 1));
    out.push(cell(d.start_date, Metric::ExpertsDispatched, team));
    if let Some(end) = m.effective_end() {
        out.push(cell(end, Metric::MissionsCompleted, 1));
        out.extend(
            d.start_date
                .iter_days()
                .take_while(|day| *day <= end)
                .map(|day| cell(day, Metric::ExpertDays, team)),
        );
    }
}
