//! Reading the ledger's rows back into facts, the same way for both
//! backends: the tables have the same columns, and each backend's driver
//! decodes its own column types into the same Rust types.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};
use schemas::{ActivityFact, CompletionFact, DispatchFact, Metric, MissionFact};
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::{Error, Result};

/// The columns of `activity_facts`: every SELECT of the ledger lists them
/// in this order ([`select_list`]), and [`activity`] reads them by name.
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

/// The columns of `mission_facts`: the SELECTs and both backends' writers
/// list them in this order, and [`mission`] reads them by name.
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

/// Where `name` is in `fields`: a column read by name, resolved when the
/// crate compiles (a name not in the list does not compile), so a reader
/// costs no look-up per row and adding a column changes no index.
const fn column(fields: &[&str], name: &str) -> usize {
    let mut i = 0;
    while i < fields.len() {
        if eq(fields[i].as_bytes(), name.as_bytes()) {
            return i;
        }
        i += 1;
    }
    panic!("no such column in the list")
}

const fn eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A column of `activity_facts`, by name.
macro_rules! a {
    ($name:literal) => {{
        const I: usize = column(&ACTIVITY_FIELDS, $name);
        I
    }};
}

/// A column of `mission_facts`, by name.
macro_rules! m {
    ($name:literal) => {{
        const I: usize = column(&MISSION_FIELDS, $name);
        I
    }};
}

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
    let metric: String = r.try_get(a!("metric"))?;
    let text = |i: usize| r.try_get::<String, _>(i).map(Cow::Owned);
    Ok(ActivityFact {
        institution: text(a!("institution_id"))?,
        record_id: text(a!("record_id"))?,
        revision: r.try_get(a!("revision"))?,
        event_id: text(a!("event_id"))?,
        program_id: text(a!("program_id"))?,
        mission_id: r
            .try_get::<Option<String>, _>(a!("mission_id"))?
            .map(Cow::Owned),
        facility_id: text(a!("facility_id"))?,
        region_code: text(a!("region_code"))?,
        day: r.try_get(a!("day"))?,
        metric: Metric::parse(&metric).ok_or_else(|| corrupt("activity_facts.metric", &metric))?,
        dims: text(a!("dims"))?,
        value: r.try_get(a!("value"))?,
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
    let dispatch = match r.try_get::<Option<DateTime<Utc>>, _>(m!("dispatch_time"))? {
        None => None,
        Some(time) => {
            let specialties: String = r.try_get(m!("specialties"))?;
            Some(DispatchFact {
                time,
                event_id: r.try_get(m!("dispatch_event_id"))?,
                program_id: r.try_get(m!("program_id"))?,
                program_name: r.try_get(m!("program_name"))?,
                host_facility_id: r.try_get(m!("host_facility_id"))?,
                host_facility_name: r.try_get(m!("host_facility_name"))?,
                region_code: r.try_get(m!("region_code"))?,
                team_size: r.try_get(m!("team_size"))?,
                specialties: serde_json::from_str(&specialties)
                    .map_err(|_| corrupt("mission_facts.specialties", &specialties))?,
                start_date: r.try_get(m!("start_date"))?,
                planned_end_date: r.try_get(m!("planned_end_date"))?,
            })
        }
    };
    let completion = match r.try_get::<Option<DateTime<Utc>>, _>(m!("completion_time"))? {
        None => None,
        Some(time) => Some(CompletionFact {
            time,
            event_id: r.try_get(m!("completion_event_id"))?,
            end_date: r.try_get(m!("end_date"))?,
        }),
    };
    Ok(MissionFact {
        institution: r.try_get(m!("institution_id"))?,
        mission_id: r.try_get(m!("mission_id"))?,
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
