//! Kafka record → [`Event`] or [`Rejection`]: every rule of the contract that
//! one message can be checked against, in both CloudEvents content modes.
//!
//! JSON objects are read into a list of `(key, raw value)` pairs first, so
//! that duplicate keys, unknown fields and wrong types are each reported with
//! the field's name, and unknown envelope attributes (extensions) are skipped
//! without being parsed into values.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::event::{Activity, Body, Completion, Dims, Dispatch, Event, EventType, Id};
use crate::metric::{DimError, Metric, Specialty};
use crate::number::{Amount, NumberError};
use crate::regions::Regions;
use crate::rejection::{ErrorCode as E, Rejection};

/// The earliest and latest dates an event may name. Anything outside is a
/// producer's mistake (a year typed as 0 or 9999), not a late event.
pub const FIRST_DATE: NaiveDate = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap();
pub const LAST_DATE: NaiveDate = NaiveDate::from_ymd_opt(2099, 12, 31).unwrap();

/// The default limit on a message's value, in bytes.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// One Kafka header as it arrived.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    pub key: &'a str,
    pub value: Option<&'a [u8]>,
}

/// The parts of a Kafka record the contract speaks about.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub headers: &'a [Header<'a>],
    pub value: Option<&'a [u8]>,
    /// The record's Kafka timestamp (ms since the epoch), where it has
    /// one: the event's arrival ([`Event::arrived`]).
    pub timestamp_ms: Option<i64>,
}

/// Validates messages against the contract and a region table.
#[derive(Debug, Clone)]
pub struct Decoder {
    regions: Arc<Regions>,
    max_message_bytes: usize,
}

type Result<T> = std::result::Result<T, Rejection>;

fn reject<T>(code: E, detail: impl Into<String>) -> Result<T> {
    Err(Rejection::new(code, detail))
}

impl Decoder {
    pub fn new(regions: Arc<Regions>, max_message_bytes: usize) -> Self {
        Self {
            regions,
            max_message_bytes,
        }
    }

    pub fn regions(&self) -> &Regions {
        &self.regions
    }

    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    pub fn decode(&self, msg: &Message<'_>) -> Result<Event> {
        let value = msg.value.unwrap_or_default();
        if value.len() > self.max_message_bytes {
            return reject(
                E::TooLarge,
                format!(
                    "message of {} bytes is over the limit of {} bytes (ingest.max_message_bytes)",
                    value.len(),
                    self.max_message_bytes
                ),
            );
        }
        let (attrs, data) = if is_binary_mode(msg.headers)? {
            let attrs = Attrs::from_headers(msg.headers)?;
            if value.is_empty() {
                return reject(
                    E::MissingData,
                    "binary-mode message has an empty value: `data` is required",
                );
            }
            (attrs, Data::Text(utf8(value, "value")?))
        } else {
            if value.is_empty() {
                return reject(E::EmptyMessage, "message value is empty");
            }
            structured(utf8(value, "value")?)?
        };
        let head = attrs.validate()?;
        let f = match data {
            Data::Text(text) => Fields::parse(text, "data")?,
            Data::Members(items) => Fields::new(items, "data")?,
        };
        let body = match head.type_ {
            EventType::Dispatched => Body::Dispatched(self.dispatch(f)?),
            EventType::Completed => Body::Completed(completion(f)?),
            EventType::Activity => Body::Activity(self.activity(f)?),
        };
        Ok(Event {
            id: head.id,
            institution: head.institution,
            time: head.time,
            arrived: msg.timestamp_ms.and_then(DateTime::from_timestamp_millis),
            body,
        })
    }

    fn dispatch(&self, mut f: Fields<'_>) -> Result<Dispatch> {
        f.only(&Dispatch::FIELDS)?;
        let start_date = f.date("start_date")?;
        let planned_end_date = f.opt_date("planned_end_date")?;
        if let Some(end) = planned_end_date
            && end < start_date
        {
            return reject(
                E::EndBeforeStart,
                format!("data.planned_end_date {end} is before data.start_date {start_date}"),
            );
        }
        let team_size = match f.require("team_size").map(|r| Amount::parse_json(r.get())) {
            Ok(Ok(a)) if a.is_integer() && (1..=10_000).contains(&(a.hundredths() / 100)) => {
                (a.hundredths() / 100) as i32
            }
            Ok(_) => {
                return reject(
                    E::InvalidTeamSize,
                    "data.team_size must be an integer from 1 to 10000",
                );
            }
            Err(e) => return Err(e),
        };
        let specialties = match f.take("specialties") {
            None => Vec::new(),
            Some(raw) if raw.get() == "null" => Vec::new(),
            Some(raw) => {
                let list: Vec<String> = serde_json::from_str(raw.get()).map_err(|_| {
                    Rejection::new(
                        E::InvalidField,
                        "data.specialties must be an array of strings",
                    )
                })?;
                for s in &list {
                    if Specialty::parse(s).is_none() {
                        return reject(
                            E::UnknownSpecialty,
                            format!(
                                "data.specialties: `{s}` is not a specialty code of the contract"
                            ),
                        );
                    }
                }
                list
            }
        };
        let d = Dispatch {
            mission_id: f.id("mission_id")?,
            program_id: f.id("program_id")?,
            program_name: f.opt_string("program_name")?.map(Cow::into_owned),
            host_facility_id: f.id("host_facility_id")?,
            host_facility_name: f.opt_string("host_facility_name")?.map(Cow::into_owned),
            region_code: self.region(&mut f)?,
            team_size,
            specialties,
            start_date,
            planned_end_date,
        };
        Ok(d)
    }

    fn activity(&self, mut f: Fields<'_>) -> Result<Activity> {
        f.only(&Activity::FIELDS)?;
        let metric_name = f.string("metric")?;
        let metric = Metric::parse_activity(&metric_name).ok_or_else(|| {
            Rejection::new(
                E::UnknownMetric,
                format!("data.metric `{metric_name}` is not in the metric catalogue"),
            )
        })?;
        let not_integer = || {
            reject(
                E::ValueNotInteger,
                format!(
                    "data.value must be an integer for `{}` ({})",
                    metric.as_str(),
                    metric.unit()
                ),
            )
        };
        let value = match Amount::parse_json(f.require("value")?.get()) {
            Ok(v) if !metric.allows_decimals() && !v.is_integer() => return not_integer(),
            Ok(v) => v,
            Err(NumberError::NotANumber) => {
                return reject(E::InvalidValue, "data.value must be a JSON number");
            }
            Err(NumberError::Negative) => {
                return reject(E::InvalidValue, "data.value must not be negative");
            }
            Err(NumberError::TooPrecise) if metric.allows_decimals() => {
                return reject(
                    E::ValueTooPrecise,
                    "data.value has more than two decimals (CNY amounts are in fen at most)",
                );
            }
            Err(NumberError::TooPrecise) => return not_integer(),
            Err(NumberError::TooLarge) => {
                return reject(
                    E::ValueTooLarge,
                    format!(
                        "data.value is over the limit of {} per event",
                        crate::number::MAX_UNITS
                    ),
                );
            }
        };
        let revision = match f.take("revision") {
            None => 1,
            Some(raw) => match Amount::parse_json(raw.get()) {
                Ok(a)
                    if a.is_integer()
                        && a.hundredths() >= 100
                        && a.hundredths() / 100 <= i32::MAX as i64 =>
                {
                    (a.hundredths() / 100) as i32
                }
                _ => return reject(E::InvalidRevision, "data.revision must be an integer ≥ 1"),
            },
        };
        let dims = match f.take("dims") {
            None => Dims::default(),
            Some(raw) if raw.get() == "null" => Dims::default(),
            Some(raw) => dims(metric, raw.get())?,
        };
        let a = Activity {
            record_id: f.id("record_id")?,
            revision,
            program_id: f.id("program_id")?,
            mission_id: f.opt_id("mission_id")?,
            facility_id: f.id("facility_id")?,
            region_code: self.region(&mut f)?,
            occurred_on: f.date("occurred_on")?,
            metric,
            value,
            dims,
        };
        Ok(a)
    }

    fn region(&self, f: &mut Fields<'_>) -> Result<String> {
        let code = f.string("region_code")?;
        if !self.regions.contains(&code) {
            return reject(
                E::UnknownRegion,
                format!("data.region_code `{code}` is not in the region table"),
            );
        }
        Ok(code.into_owned())
    }
}

fn completion(mut f: Fields<'_>) -> Result<Completion> {
    f.only(&Completion::FIELDS)?;
    let c = Completion {
        mission_id: f.id("mission_id")?,
        end_date: f.date("end_date")?,
    };
    Ok(c)
}

fn dims(metric: Metric, raw: &str) -> Result<Dims> {
    let mut f = Fields::parse(raw, "data.dims")?;
    let mut pairs = Vec::with_capacity(f.items.len());
    for (key, value) in f.items.drain(..) {
        let value = text(value).ok_or_else(|| {
            Rejection::new(
                E::InvalidDimValue,
                format!("data.dims.{key} must be a string"),
            )
        })?;
        match metric.check_dim(&key, &value) {
            Ok(()) => {}
            Err(DimError::UnknownKey) => {
                let allowed: Vec<_> = metric.dims().iter().map(|(k, _)| *k).collect();
                return reject(
                    E::UnknownDim,
                    format!(
                        "data.dims.{key} is not allowed for `{}` (allowed: {})",
                        metric.as_str(),
                        if allowed.is_empty() {
                            "none".to_owned()
                        } else {
                            allowed.join(", ")
                        }
                    ),
                );
            }
            Err(DimError::NotAllowed) => {
                return reject(
                    E::InvalidDimValue,
                    format!(
                        "data.dims.{key}: `{value}` is not an allowed value for `{}`",
                        metric.as_str()
                    ),
                );
            }
        }
        pairs.push((key, value));
    }
    Ok(Dims::from_pairs(pairs))
}

/// A structured-mode event's attributes and `data`, read in one pass when
/// the event parses that way and its `data` is an object (or absent).
/// Anything else is read again with every value skipped raw, the way that
/// reports the envelope's own problems first, before any in `data`.
fn structured(text: &str) -> Result<(Attrs<'_>, Data<'_>)> {
    let attrs = |members| Attrs::from_fields(&mut Fields::new(members, "event")?);
    let (attrs, data) = match serde_json::from_str::<Envelope<'_>>(text) {
        Ok(Envelope {
            members,
            data: Some(DataValue::Object(items)),
        }) => (attrs(members)?, Some(Data::Members(items))),
        Ok(Envelope {
            members,
            data: None | Some(DataValue::Null),
        }) => (attrs(members)?, None),
        // Not JSON, a value in `data` that a full parse refuses (a number
        // out of range, a lone surrogate) or a `data` that is no object:
        // rare, and reported as it always was.
        Ok(Envelope {
            data: Some(DataValue::Other),
            ..
        })
        | Err(_) => {
            let mut fields = Fields::parse(text, "event")?;
            let attrs = Attrs::from_fields(&mut fields)?;
            let data = fields
                .take("data")
                .filter(|raw| raw.get() != "null")
                .map(|raw| Data::Text(raw.get()));
            (attrs, data)
        }
    };
    // Every other member is an extension attribute: accepted, ignored.
    match data {
        Some(data) => Ok((attrs, data)),
        None => reject(E::MissingData, "the event has no `data` object"),
    }
}

fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        Rejection::new(
            E::NotUtf8,
            format!(
                "{what} is not valid UTF-8 (first bad byte at {})",
                e.valid_up_to()
            ),
        )
    })
}

/// Binary mode when `content-type` names anything but CloudEvents JSON, or,
/// without a `content-type`, when `ce_` attribute headers are present.
fn is_binary_mode(headers: &[Header<'_>]) -> Result<bool> {
    let ct = headers
        .iter()
        .find(|h| h.key.eq_ignore_ascii_case("content-type"));
    match ct.and_then(|h| h.value) {
        Some(v) => {
            let v = utf8(v, "header content-type")
                .map_err(|r| Rejection::new(E::BadHeader, r.detail))?;
            Ok(!v
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("application/cloudevents"))
        }
        None => Ok(headers.iter().any(|h| h.key == "ce_specversion")),
    }
}

/// The envelope attributes, still as text, borrowed from the message where
/// they have no escapes.
#[derive(Default)]
struct Attrs<'a> {
    specversion: Option<Cow<'a, str>>,
    id: Option<Cow<'a, str>>,
    source: Option<Cow<'a, str>>,
    type_: Option<Cow<'a, str>>,
    time: Option<Cow<'a, str>>,
    datacontenttype: Option<Cow<'a, str>>,
}

struct Head {
    id: String,
    institution: Id,
    type_: EventType,
    time: DateTime<Utc>,
}

impl<'a> Attrs<'a> {
    fn from_fields(f: &mut Fields<'a>) -> Result<Attrs<'a>> {
        let mut one = |name: &str, code: E| -> Result<Option<Cow<'a, str>>> {
            match f.take(name) {
                None => Ok(None),
                Some(raw) => text(raw).map(Some).ok_or_else(|| {
                    Rejection::new(code, format!("attribute `{name}` must be a string"))
                }),
            }
        };
        let a = Attrs {
            specversion: one("specversion", E::BadSpecversion)?,
            id: one("id", E::BadId)?,
            source: one("source", E::BadSource)?,
            type_: one("type", E::UnknownType)?,
            time: one("time", E::BadTime)?,
            datacontenttype: one("datacontenttype", E::BadContentType)?,
        };
        one("dataschema", E::InvalidField)?;
        Ok(a)
    }

    fn from_headers(headers: &[Header<'a>]) -> Result<Attrs<'a>> {
        let get = |name: &str| -> Result<Option<Cow<'a, str>>> {
            let mut found = headers.iter().filter(|h| h.key == name);
            let first = found.next();
            if found.next().is_some() {
                return reject(
                    E::DuplicateKey,
                    format!("header `{name}` appears more than once"),
                );
            }
            match first.and_then(|h| h.value) {
                None => Ok(None),
                Some(v) => std::str::from_utf8(v)
                    .map(|s| Some(Cow::Borrowed(s)))
                    .map_err(|_| {
                        Rejection::new(E::BadHeader, format!("header `{name}` is not valid UTF-8"))
                    }),
            }
        };
        let ct = headers
            .iter()
            .find(|h| h.key.eq_ignore_ascii_case("content-type"))
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v));
        Ok(Attrs {
            specversion: get("ce_specversion")?,
            id: get("ce_id")?,
            source: get("ce_source")?,
            type_: get("ce_type")?,
            time: get("ce_time")?,
            datacontenttype: ct,
        })
    }

    fn validate(self) -> Result<Head> {
        let missing = |name: &str| {
            Rejection::new(
                E::MissingAttribute,
                format!("required attribute `{name}` is missing"),
            )
        };
        let sv = self.specversion.ok_or_else(|| missing("specversion"))?;
        if sv != "1.0" {
            return reject(
                E::BadSpecversion,
                format!("specversion must be \"1.0\", found {sv:?}"),
            );
        }
        let id = self.id.ok_or_else(|| missing("id"))?;
        if !(1..=128).contains(&id.chars().count()) {
            return reject(E::BadId, "id must be 1–128 characters");
        }
        let id = id.into_owned();
        let source = self.source.ok_or_else(|| missing("source"))?;
        let institution = source
            .strip_prefix("urn:outreach:institution:")
            .and_then(Id::parse)
            .ok_or_else(|| {
                Rejection::new(E::BadSource, format!("source must be urn:outreach:institution:<institution_id> with an id of [a-z0-9._:-]{{1,64}}, found {source:?}"))
            })?;
        let type_name = self.type_.ok_or_else(|| missing("type"))?;
        let type_ = EventType::parse(&type_name).ok_or_else(|| {
            Rejection::new(
                E::UnknownType,
                format!("type {type_name:?} is not one of the contract's event types"),
            )
        })?;
        let time = self.time.ok_or_else(|| missing("time"))?;
        let time = DateTime::parse_from_rfc3339(&time)
            .map_err(|e| {
                Rejection::new(
                    E::BadTime,
                    format!("time {time:?} is not an RFC 3339 timestamp ({e})"),
                )
            })?
            .with_timezone(&Utc)
            .trunc_subsecs(6);
        if let Some(ct) = self.datacontenttype {
            let base = ct
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if base != "application/json" {
                return reject(
                    E::BadContentType,
                    format!("datacontenttype must be application/json, found {ct:?}"),
                );
            }
        }
        Ok(Head {
            id,
            institution,
            type_,
            time,
        })
    }
}

/// The members of one JSON object, in order, values left unparsed.
struct Fields<'a> {
    what: &'static str,
    items: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> Fields<'a> {
    fn parse(text: &'a str, what: &'static str) -> Result<Fields<'a>> {
        let items = serde_json::from_str::<Members<'a>>(text)
            .map_err(|e| json_error(&e, what))?
            .0;
        Fields::new(items, what)
    }

    fn new(items: Vec<(Cow<'a, str>, &'a RawValue)>, what: &'static str) -> Result<Fields<'a>> {
        if let Some(key) = duplicate(&items) {
            return reject(
                E::DuplicateKey,
                format!("{what}: key `{key}` appears more than once"),
            );
        }
        Ok(Fields { what, items })
    }

    fn take(&mut self, name: &str) -> Option<&'a RawValue> {
        let i = self.items.iter().position(|(k, _)| k == name)?;
        Some(self.items.swap_remove(i).1)
    }

    fn require(&mut self, name: &str) -> Result<&'a RawValue> {
        match self.take(name) {
            Some(raw) if raw.get() != "null" => Ok(raw),
            _ => reject(E::MissingField, format!("{}.{name} is required", self.what)),
        }
    }

    /// A string member, borrowed from the message unless it has escapes.
    fn string(&mut self, name: &str) -> Result<Cow<'a, str>> {
        let raw = self.require(name)?;
        text(raw).ok_or_else(|| {
            Rejection::new(
                E::InvalidField,
                format!("{}.{name} must be a string", self.what),
            )
        })
    }

    fn opt_string(&mut self, name: &str) -> Result<Option<Cow<'a, str>>> {
        match self.take(name) {
            Some(raw) if raw.get() != "null" => text(raw).map(Some).ok_or_else(|| {
                Rejection::new(
                    E::InvalidField,
                    format!("{}.{name} must be a string", self.what),
                )
            }),
            _ => Ok(None),
        }
    }

    fn id(&mut self, name: &str) -> Result<Id> {
        let s = self.string(name)?;
        Id::parse(&s).ok_or_else(|| {
            Rejection::new(
                E::InvalidIdentifier,
                format!(
                    "{}.{name} {s:?} is not an identifier: 1–64 characters from [a-z0-9._:-]",
                    self.what
                ),
            )
        })
    }

    fn opt_id(&mut self, name: &str) -> Result<Option<Id>> {
        if self
            .items
            .iter()
            .any(|(k, v)| k == name && v.get() != "null")
        {
            self.id(name).map(Some)
        } else {
            self.take(name);
            Ok(None)
        }
    }

    fn date(&mut self, name: &str) -> Result<NaiveDate> {
        let s = self.string(name)?;
        parse_date(&s, "").map_err(|r| self.named(r, name))
    }

    fn opt_date(&mut self, name: &str) -> Result<Option<NaiveDate>> {
        match self.opt_string(name)? {
            Some(s) => parse_date(&s, "")
                .map(Some)
                .map_err(|r| self.named(r, name)),
            None => Ok(None),
        }
    }

    /// A rejection from [`parse_date`] called with an empty field name,
    /// given the field's name only when it is needed.
    fn named(&self, r: Rejection, name: &str) -> Rejection {
        Rejection::new(r.code, format!("{}.{name}{}", self.what, r.detail))
    }

    /// A member the contract does not name is a producer's typo: said first,
    /// with the field it most likely meant, before any missing field.
    fn only(&self, fields: &[&str]) -> Result<()> {
        match self
            .items
            .iter()
            .find(|(k, _)| !fields.contains(&k.as_ref()))
        {
            None => Ok(()),
            Some((k, _)) => {
                let hint = fields
                    .iter()
                    .min_by_key(|f| edit_distance(k, f))
                    .filter(|f| edit_distance(k, f) <= 2)
                    .map(|f| format!(" (did you mean {f}?)"))
                    .unwrap_or_default();
                reject(
                    E::UnknownField,
                    format!("{}.{k} is not a field of this event type{hint}", self.what),
                )
            }
        }
    }
}

/// A key that appears twice. The contract's objects have about ten
/// members, where comparing every pair is cheaper than sorting a copy.
fn duplicate<'k>(items: &'k [(Cow<'_, str>, &RawValue)]) -> Option<&'k str> {
    if items.len() > 16 {
        let mut keys: Vec<&str> = items.iter().map(|(k, _)| k.as_ref()).collect();
        keys.sort_unstable();
        return keys.windows(2).find(|w| w[0] == w[1]).map(|w| w[0]);
    }
    items.iter().enumerate().find_map(|(i, (k, _))| {
        items[i + 1..]
            .iter()
            .any(|(other, _)| other == k)
            .then_some(k.as_ref())
    })
}

/// A JSON string's text: borrowed when it has no escapes, `None` when the
/// value is not a string.
fn text<'a>(raw: &'a RawValue) -> Option<Cow<'a, str>> {
    // serde_json has already checked the raw value (a string's quotes,
    // escapes, no control characters): without a backslash its text is
    // what lies between the quotes, with no second parse.
    let s = raw.get();
    if let Some(inner) = s.strip_prefix('"').and_then(|s| s.strip_suffix('"'))
        && !inner.contains('\\')
    {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<Key<'a>>(s).ok().map(|k| k.0)
}

/// `YYYY-MM-DD`, a day that exists, within [`FIRST_DATE`]..=[`LAST_DATE`].
pub fn parse_date(s: &str, field: &str) -> Result<NaiveDate> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return reject(
            E::InvalidDate,
            format!("{field} {s:?} is not a date of the form YYYY-MM-DD"),
        );
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or_default();
    let d = NaiveDate::from_ymd_opt(n(0..4) as i32, n(5..7), n(8..10)).ok_or_else(|| {
        Rejection::new(
            E::InvalidDate,
            format!("{field} {s} does not exist in the calendar"),
        )
    })?;
    if !(FIRST_DATE..=LAST_DATE).contains(&d) {
        return reject(
            E::DateOutOfRange,
            format!("{field} {s} is outside {FIRST_DATE}..{LAST_DATE}"),
        );
    }
    Ok(d)
}

/// Levenshtein distance, for "did you mean" hints on short field names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn json_error(e: &serde_json::Error, what: &str) -> Rejection {
    let msg = e.to_string();
    // Values are skipped without recursion (serde_json's raw values), so
    // deep nesting costs no stack: it fails as the wrong type where it sits.
    let code = if msg.contains(NOT_AN_OBJECT) {
        E::NotAnObject
    } else {
        E::MalformedJson
    };
    Rejection::new(code, format!("{what}: {msg}"))
}

const NOT_AN_OBJECT: &str = "a JSON object";

/// A JSON object read as `(key, raw value)` pairs: keys borrowed when they
/// have no escapes, values never parsed.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(NOT_AN_OBJECT)
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                members(map).map(Members)
            }
        }
        d.deserialize_map(V)
    }
}

/// The members of the object `map` is reading, values unparsed.
fn members<'de, A: MapAccess<'de>>(
    mut map: A,
) -> std::result::Result<Vec<(Cow<'de, str>, &'de RawValue)>, A::Error> {
    // The contract's objects have at most ten members.
    let mut v = Vec::with_capacity(map.size_hint().unwrap_or(10));
    while let Some(Key(k)) = map.next_key()? {
        v.push((k, map.next_value()?));
    }
    Ok(v)
}

/// A CloudEvent in structured mode, read in one pass: the envelope's
/// members with their values left unparsed, and `data` read as members
/// too (not scanned once to skip it and again to read it). `data` keeps
/// its place among the members, as `null`, so that a second one is a
/// duplicate key like any other.
struct Envelope<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
    data: Option<DataValue<'a>>,
}

impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Envelope<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(NOT_AN_OBJECT)
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(8);
                let mut data = None;
                while let Some(Key(k)) = map.next_key()? {
                    if k == "data" {
                        data = Some(map.next_value()?);
                        members.push((k, RawValue::NULL));
                    } else {
                        members.push((k, map.next_value()?));
                    }
                }
                Ok(Envelope { members, data })
            }
        }
        d.deserialize_map(V)
    }
}

/// An event's `data`: its text (binary mode's value, or a structured
/// event's `data` member read raw), or the members of the object read in
/// the envelope's pass (values unparsed).
enum Data<'a> {
    Text(&'a str),
    Members(Vec<(Cow<'a, str>, &'a RawValue)>),
}

/// The value of a structured-mode `data` member, read in one pass.
enum DataValue<'a> {
    Object(Vec<(Cow<'a, str>, &'a RawValue)>),
    Null,
    /// Not an object: left to the raw reading (see [`structured`]).
    Other,
}

impl<'de> Deserialize<'de> for DataValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DataValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                members(map).map(DataValue::Object)
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
                Ok(DataValue::Null)
            }
            // An array's elements are skipped as raw values: no recursion,
            // so deep nesting costs no stack here either.
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                while seq.next_element::<&RawValue>()?.is_some() {}
                Ok(DataValue::Other)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<Self::Value, E> {
                Ok(DataValue::Other)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<Self::Value, E> {
                Ok(DataValue::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<Self::Value, E> {
                Ok(DataValue::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<Self::Value, E> {
                Ok(DataValue::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<Self::Value, E> {
                Ok(DataValue::Other)
            }
        }
        d.deserialize_any(V)
    }
}

struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(
                self,
                v: &'de str,
            ) -> std::result::Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}
