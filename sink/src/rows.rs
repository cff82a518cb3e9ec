//! Reading the ledger's rows back into facts, the same way for both
//! backends: the tables have the same columns, and each backend's driver
//! decodes its own column types into the same Rust types.

use chrono::{DateTime, NaiveDate, Utc};
use schemas::{ActivityFact, CompletionFact, DispatchFact, Metric, MissionFact};
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::{Error, Result};

/// The columns [`activity`] reads, in order, from `activity_facts f`.
pub const ACTIVITY_COLUMNS: &str =
    "f.institution_id, f.record_id, f.revision, f.event_id, f.program_id, f.mission_id,
    f.facility_id, f.region_code, f.day, f.metric, f.dims, f.value";

/// The columns [`mission`] reads, in order, from `mission_facts f`.
pub const MISSION_COLUMNS: &str =
    "f.institution_id, f.mission_id, f.dispatch_time, f.dispatch_event_id, f.program_id,
    f.program_name, f.host_facility_id, f.host_facility_name, f.region_code, f.team_size,
    f.specialties, f.start_date, f.planned_end_date, f.completion_time,
    f.completion_event_id, f.end_date";

pub fn activity<R>(r: &R) -> Result<ActivityFact>
where
    R: Row,
    usize: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i32: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> NaiveDate: Decode<'r, R::Database> + Type<R::Database>,
{
    let metric: String = r.try_get(9)?;
    Ok(ActivityFact {
        institution: r.try_get(0)?,
        record_id: r.try_get(1)?,
        revision: r.try_get(2)?,
        event_id: r.try_get(3)?,
        program_id: r.try_get(4)?,
        mission_id: r.try_get(5)?,
        facility_id: r.try_get(6)?,
        region_code: r.try_get(7)?,
        day: r.try_get(8)?,
        metric: Metric::parse(&metric).ok_or_else(|| corrupt("activity_facts.metric", &metric))?,
        dims: r.try_get(10)?,
        value: r.try_get(11)?,
    })
}

pub fn mission<R>(r: &R) -> Result<MissionFact>
where
    R: Row,
    usize: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i32: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> NaiveDate: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> DateTime<Utc>: Decode<'r, R::Database> + Type<R::Database>,
{
    let dispatch = match r.try_get::<Option<DateTime<Utc>>, _>(2)? {
        None => None,
        Some(time) => {
            let specialties: String = r.try_get(10)?;
            Some(DispatchFact {
                time,
                event_id: r.try_get(3)?,
                program_id: r.try_get(4)?,
                program_name: r.try_get(5)?,
                host_facility_id: r.try_get(6)?,
                host_facility_name: r.try_get(7)?,
                region_code: r.try_get(8)?,
                team_size: r.try_get(9)?,
                specialties: serde_json::from_str(&specialties)
                    .map_err(|_| corrupt("mission_facts.specialties", &specialties))?,
                start_date: r.try_get(11)?,
                planned_end_date: r.try_get(12)?,
            })
        }
    };
    let completion = match r.try_get::<Option<DateTime<Utc>>, _>(13)? {
        None => None,
        Some(time) => Some(CompletionFact {
            time,
            event_id: r.try_get(14)?,
            end_date: r.try_get(15)?,
        }),
    };
    Ok(MissionFact {
        institution: r.try_get(0)?,
        mission_id: r.try_get(1)?,
        dispatch,
        completion,
    })
}

/// The dispatch of a mission fact, if known.
pub fn d(f: &MissionFact) -> Option<&DispatchFact> {
    f.dispatch.as_ref()
}

/// The completion of a mission fact, if known.
pub fn c(f: &MissionFact) -> Option<&CompletionFact> {
    f.completion.as_ref()
}

fn corrupt(what: &str, value: &str) -> Error {
    Error::Database(sqlx::Error::Decode(
        format!("{what} holds {value:?}, which this version does not know; was the database written by a newer outreach?").into(),
    ))
}
