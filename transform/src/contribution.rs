//! What one fact adds to `daily_metrics`: the single definition of the
//! contract's metric rules, used for both the new and the old version of a
//! fact so a change is exactly "new minus old".

use chrono::NaiveDate;
use schemas::{ActivityFact, Amount, Id, Metric, MissionFact};

/// One signed change to one `daily_metrics` cell. Its strings are borrowed
/// from the fact it comes from: a batch makes tens of thousands of these,
/// and the roll-up only reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contribution<'a> {
    pub day: NaiveDate,
    pub institution: &'a str,
    pub program_id: &'a str,
    pub mission_id: Option<&'a str>,
    pub facility_id: &'a str,
    pub region_code: &'a str,
    pub metric: Metric,
    /// Canonical JSON text of the dims.
    pub dims: &'a str,
    /// Hundredths of the metric's unit.
    pub value: i64,
}

/// An activity counts its value on its day; a withdrawal (0) counts nothing.
pub fn activity_cells<'a>(f: &'a ActivityFact<'_>, sign: i64, out: &mut Vec<Contribution<'a>>) {
    if f.value == Amount::ZERO {
        return;
    }
    out.push(Contribution {
        day: f.day,
        institution: &f.institution,
        program_id: &f.program_id,
        mission_id: f.mission_id.as_deref().map(Id::as_str),
        facility_id: &f.facility_id,
        region_code: &f.region_code,
        metric: f.metric,
        dims: f.dims.as_json(),
        value: sign * f.value.hundredths(),
    });
}

/// A dispatched mission counts itself and its team on the start date; once
/// completed, itself on the end date and its team on every on-site day.
pub fn mission_cells<'a>(m: &'a MissionFact, sign: i64, out: &mut Vec<Contribution<'a>>) {
    let Some(d) = &m.dispatch else { return };
    let cell = |day, metric, units: i64| Contribution {
        day,
        institution: &m.institution,
        program_id: &d.program_id,
        mission_id: Some(&m.mission_id),
        facility_id: &d.host_facility_id,
        region_code: &d.region_code,
        metric,
        dims: "{}",
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
