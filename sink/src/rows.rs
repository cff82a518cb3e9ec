//! Reading the ledger's rows back into facts, the same way for both
//! backends: the tables have the same columns, and each backend's driver
//! decodes its own column types into the same Rust types.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};
use schemas::{ActivityFact, CompletionFact, DispatchFact, Metric, MissionFact};
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::{Error, Result};

/// The columns of `activity_facts`, in the order [`activity`] reads them.
pub const ACTIVITY_FIELDS: [&str; 12] = [
    "institution_id",
    "record_id",
    "revision",
    "event_id",
    "program_id",
    "mission_id",
    "facility_id",
    "region_code",
    "day",
    "metric",
    "dims",
    "value",
];

/// The columns of `mission_facts`, in the order [`mission`] reads them and
/// the writers bind them.
pub const MISSION_FIELDS: [&str; 16] = [
    "institution_id",
    "mission_id",
    "dispatch_time",
    "dispatch_event_id",
    "program_id",
    "program_name",
    "host_facility_id",
    "host_facility_name",
    "region_code",
    "team_size",
    "specialties",
    "start_date",
    "planned_end_date",
    "completion_time",
    "completion_event_id",
    "end_date",
];

/// `f.a, f.b, …`: these columns of the table aliased `f`, for a SELECT.
pub fn select_list(fields: &[&str]) -> String {
    fields
        .iter()
        .map(|c| format!("f.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn activity<R>(r: &R) -> Result<ActivityFact<'static>>
where
    R: Row,
    usize: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i32: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> NaiveDate: Decode<'r, R::Database> + Type<R::Database>,
{
    let metric: String = r.try_get(9)?;
    let text = |i: usize| r.try_get::<String, _>(i).map(Cow::Owned);
    Ok(ActivityFact {
        institution: text(0)?,
        record_id: text(1)?,
        revision: r.try_get(2)?,
        event_id: text(3)?,
        program_id: text(4)?,
        mission_id: r.try_get::<Option<String>, _>(5)?.map(Cow::Owned),
        facility_id: text(6)?,
        region_code: text(7)?,
        day: r.try_get(8)?,
        metric: Metric::parse(&metric).ok_or_else(|| corrupt("activity_facts.metric", &metric))?,
        dims: text(10)?,
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
