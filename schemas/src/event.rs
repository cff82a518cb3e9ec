//! A decoded, validated event. Holding one means every rule of the contract
//! that can be checked on the event alone has passed.

use std::borrow::Cow;
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
        Id::valid(s).then(|| Id(s.to_owned()))
    }

    /// [`Id::parse`] of text already owned (as read back from the ledger),
    /// without a copy; the text back when it is not an identifier.
    pub fn parse_owned(s: String) -> Result<Id, String> {
        if Id::valid(&s) { Ok(Id(s)) } else { Err(s) }
    }

    fn valid(s: &str) -> bool {
        (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b':' | b'-'))
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

/// As its text: how the sink sends keys in JSON parameters.
impl serde::Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Allowed disaggregations of an activity, held as their canonical JSON
/// text (keys sorted, no spaces), the form every table stores and compares:
/// made once at decode, not once per table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dims(Cow<'static, str>);

impl Default for Dims {
    fn default() -> Self {
        Dims(Cow::Borrowed("{}"))
    }
}

impl Dims {
    pub fn new(map: BTreeMap<String, String>) -> Self {
        Dims::from_pairs(map.into_iter().collect())
    }

    /// From `(key, value)` pairs with distinct keys, in any order.
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(mut pairs: Vec<(K, V)>) -> Self {
        if pairs.is_empty() {
            return Dims::default();
        }
        pairs.sort_unstable_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        let mut json = Vec::with_capacity(64);
        let mut s = serde_json::Serializer::new(&mut json);
        serde::Serializer::collect_map(&mut s, pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
            .expect("a map of strings serialises");
        Dims(Cow::Owned(
            String::from_utf8(json).expect("serde_json writes UTF-8"),
        ))
    }

    /// Dims as the ledger stores them: text this crate made canonical
    /// when the fact was accepted.
    pub fn from_canonical(json: String) -> Self {
        Dims(Cow::Owned(json))
    }

    /// The canonical JSON text (`{}` when none).
    pub fn as_json(&self) -> &str {
        &self.0
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
    /// When the event reached the pipeline's input: the Kafka timestamp of
    /// its message (the broker's append time on a topic that keeps
    /// LogAppendTime, else the producer's create time). Not the producer's
    /// claim in `time`, and not when a batch happened to commit: a replay,
    /// an outage or a slow fold does not make a hospital late. `None`: the
    /// message had no timestamp.
    pub arrived: Option<DateTime<Utc>>,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Dispatched(Dispatch),
    Completed(Completion),
    Activity(Activity),
}

impl Body {
    pub fn event_type(&self) -> EventType {
        match self {
            Body::Dispatched(_) => EventType::Dispatched,
            Body::Completed(_) => EventType::Completed,
            Body::Activity(_) => EventType::Activity,
        }
    }

    pub fn type_name(&self) -> &'static str {
        self.event_type().as_str()
    }

    /// Whether this event can still be refused once the ledger is read: a
    /// completion that does not fit its mission's dispatch. Ingest keeps
    /// the bytes of these (and only these) for the quarantine.
    pub fn refusable_late(&self) -> bool {
        matches!(self, Body::Completed(_))
    }
}

/// The contract's event types: the CloudEvents `type` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Dispatched,
    Completed,
    Activity,
}

impl EventType {
    pub const ALL: [EventType; 3] = [
        EventType::Dispatched,
        EventType::Completed,
        EventType::Activity,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::Dispatched => DISPATCHED,
            EventType::Completed => COMPLETED,
            EventType::Activity => ACTIVITY,
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
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
            Dims::new(m).as_json(),
            r#"{"setting":"ward","specialty":"ent"}"#
        );
        assert_eq!(Dims::default().as_json(), "{}");
        assert_eq!(Dims::new(BTreeMap::new()), Dims::default());
    }
}
