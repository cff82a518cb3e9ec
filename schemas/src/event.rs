//! A decoded, validated event. Holding one means every rule of the contract
//! that can be checked on the event alone has passed.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;

use chrono::{DateTime, NaiveDate, Utc};

use crate::metric::Metric;
use crate::number::Amount;

/// An identifier of the contract: 1–64 characters from `[a-z0-9._:-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(String);

impl Id {
    pub fn parse(s: &str) -> Option<Id> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b':' | b'-'));
        ok.then(|| Id(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl Deref for Id {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Allowed disaggregations of an activity, keys sorted, so that equal dims
/// are equal strings wherever they are compared. A sorted slice, not a map:
/// a batch holds tens of thousands of events, and a one-entry `BTreeMap`
/// allocates a node of about 540 bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dims(Box<[(String, String)]>);

impl Dims {
    pub fn new(map: BTreeMap<String, String>) -> Self {
        Dims(map.into_iter().collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The canonical JSON text (`{}` when none): keys sorted, no spaces.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a map of strings serialises")
    }
}

impl serde::Serialize for Dims {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

/// One accepted event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// CloudEvents `id`; with the institution, the delivery identity.
    pub id: String,
    /// The `<institution_id>` of `source`.
    pub institution: Id,
    /// CloudEvents `time`, truncated to microseconds so that it survives a
    /// round trip through `timestamptz` unchanged (versions compare on it).
    pub time: DateTime<Utc>,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Dispatched(Dispatch),
    Completed(Completion),
    Activity(Activity),
}

impl Body {
    pub fn type_name(&self) -> &'static str {
        match self {
            Body::Dispatched(_) => DISPATCHED,
            Body::Completed(_) => COMPLETED,
            Body::Activity(_) => ACTIVITY,
        }
    }
}

pub const DISPATCHED: &str = "org.outreach.mission.dispatched.v1";
pub const COMPLETED: &str = "org.outreach.mission.completed.v1";
pub const ACTIVITY: &str = "org.outreach.activity.recorded.v1";

/// `org.outreach.mission.dispatched.v1`
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatch {
    pub mission_id: Id,
    pub program_id: Id,
    pub program_name: Option<String>,
    pub host_facility_id: Id,
    pub host_facility_name: Option<String>,
    pub region_code: String,
    pub team_size: i32,
    pub specialties: Vec<String>,
    pub start_date: NaiveDate,
    pub planned_end_date: Option<NaiveDate>,
}

impl Dispatch {
    /// The fields of its `data`: any other is an `unknown_field`.
    pub const FIELDS: [&'static str; 10] = [
        "mission_id",
        "program_id",
        "program_name",
        "host_facility_id",
        "host_facility_name",
        "region_code",
        "team_size",
        "specialties",
        "start_date",
        "planned_end_date",
    ];
}

/// `org.outreach.mission.completed.v1`
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub mission_id: Id,
    pub end_date: NaiveDate,
}

impl Completion {
    /// The fields of its `data`: any other is an `unknown_field`.
    pub const FIELDS: [&'static str; 2] = ["mission_id", "end_date"];
}

/// `org.outreach.activity.recorded.v1`
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub record_id: Id,
    pub revision: i32,
    pub program_id: Id,
    pub mission_id: Option<Id>,
    pub facility_id: Id,
    pub region_code: String,
    pub occurred_on: NaiveDate,
    pub metric: Metric,
    pub value: Amount,
    pub dims: Dims,
}

impl Activity {
    /// The fields of its `data`: any other is an `unknown_field`.
    pub const FIELDS: [&'static str; 10] = [
        "record_id",
        "revision",
        "program_id",
        "mission_id",
        "facility_id",
        "region_code",
        "occurred_on",
        "metric",
        "value",
        "dims",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_follow_the_contract() {
        assert!(Id::parse("sgh-hct23-xinle").is_some());
        assert!(Id::parse("a.b_c:d-0").is_some());
        assert!(Id::parse("").is_none());
        assert!(Id::parse("Upper").is_none());
        assert!(Id::parse("with space").is_none());
        assert!(Id::parse(&"x".repeat(64)).is_some());
        assert!(Id::parse(&"x".repeat(65)).is_none());
    }

    #[test]
    fn dims_serialise_canonically() {
        let mut m = BTreeMap::new();
        m.insert("setting".to_owned(), "ward".to_owned());
        m.insert("specialty".to_owned(), "ent".to_owned());
        assert_eq!(
            Dims::new(m).to_json(),
            r#"{"setting":"ward","specialty":"ent"}"#
        );
        assert_eq!(Dims::default().to_json(), "{}");
    }
}
