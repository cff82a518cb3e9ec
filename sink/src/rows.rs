//! The ledger tables' columns, one list per table ([`ACTIVITY`],
//! [`MISSION`]): what both backends' writers send for each column (COPY
//! rows, Postgres' `UNNEST` arrays, SQLite's JSON rows), and how a row read
//! back becomes a fact again, by column name. The tables have the same
//! columns in both backends, and each driver decodes its own column types
//! into the same Rust types.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};
use schemas::{ActivityFact, Amount, CompletionFact, Dims, DispatchFact, Id, Metric, MissionFact};
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::{Error, Result};

/// How a fact gives its value for one column; the variant is the Rust type
/// it is sent as (integers as `bigint`: Postgres casts them to an `integer`
/// column on assignment), so a writer cannot send a column as another.
pub enum Get<T, I, D, S> {
    Text(T),
    Int(I),
    Date(D),
    Time(S),
}

/// One column's value for one fact.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Text(Option<Cow<'a, str>>),
    Int(Option<i64>),
    Date(Option<NaiveDate>),
    Time(Option<DateTime<Utc>>),
}

/// One column's values for a run of facts: a Postgres array parameter.
pub enum Array<'a> {
    Text(Vec<Option<Cow<'a, str>>>),
    Int(Vec<Option<i64>>),
    Date(Vec<Option<NaiveDate>>),
    Time(Vec<Option<DateTime<Utc>>>),
}

/// What writers ask of a column's getter, for facts `T` borrowed for `'a`.
pub trait Getter<'a, T: 'a> {
    fn value(&self, fact: &'a T) -> Value<'a>;
    fn array(&self, facts: &'a [T]) -> Array<'a>;
}

impl<A, B, C, D> Get<A, B, C, D> {
    /// The array type Postgres' `UNNEST` casts this column's parameter to.
    pub fn postgres_array(&self) -> &'static str {
        match self {
            Get::Text(_) => "text[]",
            Get::Int(_) => "bigint[]",
            Get::Date(_) => "date[]",
            Get::Time(_) => "timestamptz[]",
        }
    }
}

impl<'a, T: 'a, A, B, C, D> Getter<'a, T> for Get<A, B, C, D>
where
    A: Fn(&'a T) -> Option<Cow<'a, str>>,
    B: Fn(&'a T) -> Option<i64>,
    C: Fn(&'a T) -> Option<NaiveDate>,
    D: Fn(&'a T) -> Option<DateTime<Utc>>,
{
    fn value(&self, fact: &'a T) -> Value<'a> {
        match self {
            Get::Text(g) => Value::Text(g(fact)),
            Get::Int(g) => Value::Int(g(fact)),
            Get::Date(g) => Value::Date(g(fact)),
            Get::Time(g) => Value::Time(g(fact)),
        }
    }

    fn array(&self, facts: &'a [T]) -> Array<'a> {
        match self {
            Get::Text(g) => Array::Text(facts.iter().map(g).collect()),
            Get::Int(g) => Array::Int(facts.iter().map(g).collect()),
            Get::Date(g) => Array::Date(facts.iter().map(g).collect()),
            Get::Time(g) => Array::Time(facts.iter().map(g).collect()),
        }
    }
}

/// A fact as a JSON array of its table's columns, in order: a row of
/// SQLite's `json_each` parameter. Dates and times take chrono's serde
/// form, the text the SQLite columns hold.
pub struct JsonRow<'c, 'a, G, T>(pub &'c [Column<G>], pub &'a T);

impl<'a, G: Getter<'a, T>, T: 'a> serde::Serialize for JsonRow<'_, 'a, G, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for c in self.0 {
            match c.get.value(self.1) {
                Value::Text(v) => seq.serialize_element(&v)?,
                Value::Int(v) => seq.serialize_element(&v)?,
                Value::Date(v) => seq.serialize_element(&v)?,
                Value::Time(v) => seq.serialize_element(&v)?,
            }
        }
        seq.end()
    }
}

/// A ledger column: its name and how a fact gives its value. Each ledger
/// table has one list of these ([`ACTIVITY`], [`MISSION`]): the SELECTs and
/// both backends' writers are derived from it, and the readers take each
/// column by name from it (through [`column`]). Adding a column is a field
/// of the fact, a line here, a line in the reader and one migration per
/// backend; no position changes anywhere.
pub struct Column<G> {
    pub name: &'static str,
    pub get: G,
}

/// How an activity fact gives each type of value (for facts of any
/// lifetime: a batch's borrow from its events).
type ActivityGet = Get<
    for<'a, 'f> fn(&'a ActivityFact<'f>) -> Option<Cow<'a, str>>,
    for<'f> fn(&ActivityFact<'f>) -> Option<i64>,
    for<'f> fn(&ActivityFact<'f>) -> Option<NaiveDate>,
    for<'f> fn(&ActivityFact<'f>) -> Option<DateTime<Utc>>,
>;

type MissionGet = Get<
    for<'a> fn(&'a MissionFact) -> Option<Cow<'a, str>>,
    fn(&MissionFact) -> Option<i64>,
    fn(&MissionFact) -> Option<NaiveDate>,
    fn(&MissionFact) -> Option<DateTime<Utc>>,
>;

/// `activity_facts`; the first two columns are the key.
pub const ACTIVITY: [Column<ActivityGet>; 14] = [
    text("institution_id", |f| id(&f.institution)),
    text("record_id", |f| id(&f.record_id)),
    col("revision", Get::Int(|f| Some(f.revision.into()))),
    text("event_id", |f| Some(Cow::Borrowed(&f.event_id))),
    text("program_id", |f| id(&f.program_id)),
    text("mission_id", |f| f.mission_id.as_deref().and_then(id)),
    text("facility_id", |f| id(&f.facility_id)),
    text("region_code", |f| Some(Cow::Borrowed(&f.region_code))),
    col("day", Get::Date(|f| Some(f.day))),
    text("metric", |f| Some(Cow::Borrowed(f.metric.as_str()))),
    text("dims", |f| Some(Cow::Borrowed(f.dims.as_json()))),
    col("value", Get::Int(|f| Some(f.value.hundredths()))),
    col("first_arrived_at", Get::Time(|f| f.first_arrived)),
    col("revision_arrived_at", Get::Time(|f| f.revision_arrived)),
];

/// `mission_facts`; the first two columns are the key. A mission known
/// only by its completion has no dispatch columns, and the reverse.
pub const MISSION: [Column<MissionGet>; 16] = [
    text("institution_id", |f| id(&f.institution)),
    text("mission_id", |f| id(&f.mission_id)),
    col("dispatch_time", Get::Time(|f| d(f).map(|d| d.time))),
    text("dispatch_event_id", |f| {
        d(f).map(|d| Cow::Borrowed(&*d.event_id))
    }),
    text("program_id", |f| d(f).and_then(|d| id(&d.program_id))),
    text("program_name", |f| {
        d(f).and_then(|d| d.program_name.as_deref().map(Cow::Borrowed))
    }),
    text("host_facility_id", |f| {
        d(f).and_then(|d| id(&d.host_facility_id))
    }),
    text("host_facility_name", |f| {
        d(f).and_then(|d| d.host_facility_name.as_deref().map(Cow::Borrowed))
    }),
    text("region_code", |f| {
        d(f).map(|d| Cow::Borrowed(&*d.region_code))
    }),
    col("team_size", Get::Int(|f| d(f).map(|d| d.team_size.into()))),
    text("specialties", |f| {
        d(f).map(|d| Cow::Owned(serde_json::to_string(&d.specialties).expect("strings serialise")))
    }),
    col("start_date", Get::Date(|f| d(f).map(|d| d.start_date))),
    col(
        "planned_end_date",
        Get::Date(|f| d(f).and_then(|d| d.planned_end_date)),
    ),
    col("completion_time", Get::Time(|f| c(f).map(|c| c.time))),
    text("completion_event_id", |f| {
        c(f).map(|c| Cow::Borrowed(&*c.event_id))
    }),
    col("end_date", Get::Date(|f| c(f).map(|c| c.end_date))),
];

/// The names of [`ACTIVITY`], in order.
pub const ACTIVITY_FIELDS: [&str; 14] = names(&ACTIVITY);
/// The names of [`MISSION`], in order.
pub const MISSION_FIELDS: [&str; 16] = names(&MISSION);

const fn col<G>(name: &'static str, get: G) -> Column<G> {
    Column { name, get }
}

const fn text<T, I, D, S>(name: &'static str, get: T) -> Column<Get<T, I, D, S>> {
    col(name, Get::Text(get))
}

fn id(id: &Id) -> Option<Cow<'_, str>> {
    Some(Cow::Borrowed(id.as_str()))
}

const fn names<G, const N: usize>(columns: &[Column<G>; N]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = columns[i].name;
        i += 1;
    }
    out
}

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
    for<'r> DateTime<Utc>: Decode<'r, R::Database> + Type<R::Database>,
{
    let metric: String = r.try_get(a!("metric"))?;
    let value: i64 = r.try_get(a!("value"))?;
    let text = |i: usize| r.try_get::<String, _>(i).map(Cow::Owned);
    let id = |i: usize| parse_id(r.try_get(i)?, "activity_facts", ACTIVITY_FIELDS[i]);
    let mission_id: Option<String> = r.try_get(a!("mission_id"))?;
    Ok(ActivityFact {
        institution: Cow::Owned(id(a!("institution_id"))?),
        record_id: Cow::Owned(id(a!("record_id"))?),
        revision: r.try_get(a!("revision"))?,
        event_id: text(a!("event_id"))?,
        program_id: Cow::Owned(id(a!("program_id"))?),
        mission_id: match mission_id {
            None => None,
            Some(m) => Some(Cow::Owned(parse_id(m, "activity_facts", "mission_id")?)),
        },
        facility_id: Cow::Owned(id(a!("facility_id"))?),
        region_code: text(a!("region_code"))?,
        day: r.try_get(a!("day"))?,
        metric: Metric::parse(&metric).ok_or_else(|| corrupt("activity_facts.metric", &metric))?,
        dims: Cow::Owned(Dims::from_canonical(r.try_get(a!("dims"))?)),
        value: (value >= 0)
            .then(|| Amount::from_hundredths(value))
            .ok_or_else(|| damaged("activity_facts.value", &value.to_string()))?,
        first_arrived: r.try_get(a!("first_arrived_at"))?,
        revision_arrived: r.try_get(a!("revision_arrived_at"))?,
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
    let id = |i: usize| parse_id(r.try_get(i)?, "mission_facts", MISSION_FIELDS[i]);
    let dispatch = match r.try_get::<Option<DateTime<Utc>>, _>(m!("dispatch_time"))? {
        None => None,
        Some(time) => {
            let specialties: String = r.try_get(m!("specialties"))?;
            Some(DispatchFact {
                time,
                event_id: r.try_get(m!("dispatch_event_id"))?,
                program_id: id(m!("program_id"))?,
                program_name: r.try_get(m!("program_name"))?,
                host_facility_id: id(m!("host_facility_id"))?,
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
        institution: id(m!("institution_id"))?,
        mission_id: id(m!("mission_id"))?,
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

/// An identifier read back from `table.column`.
fn parse_id(text: String, table: &str, column: &str) -> Result<Id> {
    Id::parse_owned(text).map_err(|text| damaged(&format!("{table}.{column}"), &text))
}

/// A value no version of outreach writes: the row was changed by hand or
/// the database is damaged.
fn damaged(what: &str, value: &str) -> Error {
    Error::Database(sqlx::Error::Decode(
        format!("{what} holds {value:?}, which outreach never writes; was the row changed by hand? `outreach rebuild` cannot repair the ledger, restore it from a backup").into(),
    ))
}

fn corrupt(what: &str, value: &str) -> Error {
    Error::Database(sqlx::Error::Decode(
        format!("{what} holds {value:?}, which this version does not know; was the database written by a newer outreach?").into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Id {
        Id::parse(s).unwrap()
    }

    fn json(row: impl serde::Serialize) -> String {
        serde_json::to_string(&row).unwrap()
    }

    /// SQLite's rows as the hand-written tuples sent them before the lists
    /// (chrono's serde text for times and dates, NULL for what a mission
    /// does not know yet, specialties as JSON text).
    #[test]
    fn json_rows_follow_the_column_lists() {
        let day = NaiveDate::from_ymd_opt(2023, 6, 14).unwrap();
        let time = DateTime::parse_from_rfc3339("2023-06-14T08:30:00.250Z")
            .unwrap()
            .to_utc();
        let fact = ActivityFact {
            institution: Cow::Owned(id("h1")),
            record_id: Cow::Owned(id("r1")),
            revision: 2,
            event_id: Cow::Borrowed("e\"1"),
            program_id: Cow::Owned(id("p")),
            mission_id: None,
            facility_id: Cow::Owned(id("f")),
            region_code: Cow::Borrowed("620921"),
            day,
            metric: Metric::Surgeries,
            dims: Cow::Owned(Dims::default()),
            value: Amount::from_hundredths(1250),
            first_arrived: Some(time),
            revision_arrived: None,
        };
        assert_eq!(
            json(JsonRow(&ACTIVITY, &fact)),
            r#"["h1","r1",2,"e\"1","p",null,"f","620921","2023-06-14","surgeries","{}",1250,"2023-06-14T08:30:00.250Z",null]"#
        );
        let only_completed = MissionFact {
            institution: id("h1"),
            mission_id: id("m1"),
            dispatch: None,
            completion: Some(CompletionFact {
                time,
                event_id: "c1".into(),
                end_date: day,
            }),
        };
        assert_eq!(
            json(JsonRow(&MISSION, &only_completed)),
            r#"["h1","m1",null,null,null,null,null,null,null,null,null,null,null,"2023-06-14T08:30:00.250Z","c1","2023-06-14"]"#
        );
        let dispatched = MissionFact {
            dispatch: Some(DispatchFact {
                time,
                event_id: "d1".into(),
                program_id: id("p"),
                program_name: Some("Tour".into()),
                host_facility_id: id("f"),
                host_facility_name: None,
                region_code: "620921".into(),
                team_size: 7,
                specialties: vec!["ent".into()],
                start_date: day,
                planned_end_date: None,
            }),
            completion: None,
            ..only_completed
        };
        assert_eq!(
            json(JsonRow(&MISSION, &dispatched)),
            r#"["h1","m1","2023-06-14T08:30:00.250Z","d1","p","Tour","f",null,"620921",7,"[\"ent\"]","2023-06-14",null,null,null,null]"#
        );
        assert_eq!(ACTIVITY_FIELDS.len(), ACTIVITY.len());
        assert_eq!(&MISSION_FIELDS[..2], ["institution_id", "mission_id"]);
    }
}
