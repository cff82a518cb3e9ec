//! The CloudEvents envelope: which content mode a message uses, its
//! attributes read from the Kafka headers (binary mode) or from the JSON
//! object around `data` (structured mode), and their validation into the
//! event's id, institution, type and time.

use std::borrow::Cow;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::value::RawValue;

use super::fields::{Fields, text};
use super::json::{DataValue, Envelope};
use super::{Header, Result, reject};
use crate::event::{EventType, Id};
use crate::rejection::{ErrorCode as E, Rejection};

/// A structured-mode event's attributes and `data`, read in one pass when
/// the event parses that way and its `data` is an object (or absent).
/// Anything else is read again with every value skipped raw, the way that
/// reports the envelope's own problems first, before any in `data`.
pub(super) fn structured(text: &str) -> Result<(Attrs<'_>, Data<'_>)> {
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

pub(super) fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str> {
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
pub(super) fn is_binary_mode(headers: &[Header<'_>]) -> Result<bool> {
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
pub(super) struct Attrs<'a> {
    specversion: Option<Cow<'a, str>>,
    id: Option<Cow<'a, str>>,
    source: Option<Cow<'a, str>>,
    type_: Option<Cow<'a, str>>,
    time: Option<Cow<'a, str>>,
    datacontenttype: Option<Cow<'a, str>>,
}

/// The validated attributes: what the event keeps of its envelope.
pub(super) struct Head {
    pub(super) id: String,
    pub(super) institution: Id,
    pub(super) type_: EventType,
    pub(super) time: DateTime<Utc>,
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

    pub(super) fn from_headers(headers: &[Header<'a>]) -> Result<Attrs<'a>> {
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

    /// The attributes the contract requires, each checked in turn: the first
    /// fault found is the one reported.
    pub(super) fn validate(self) -> Result<Head> {
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
        let institution = institution(&self.source.ok_or_else(|| missing("source"))?)?;
        let type_name = self.type_.ok_or_else(|| missing("type"))?;
        let type_ = EventType::parse(&type_name).ok_or_else(|| {
            Rejection::new(
                E::UnknownType,
                format!("type {type_name:?} is not one of the contract's event types"),
            )
        })?;
        let time = time(&self.time.ok_or_else(|| missing("time"))?)?;
        if let Some(ct) = self.datacontenttype {
            check_content_type(&ct)?;
        }
        Ok(Head {
            id: id.into_owned(),
            institution,
            type_,
            time,
        })
    }
}

/// The institution named by `source`, `urn:outreach:institution:<id>`.
fn institution(source: &str) -> Result<Id> {
    source
        .strip_prefix("urn:outreach:institution:")
        .and_then(Id::parse)
        .ok_or_else(|| {
            Rejection::new(E::BadSource, format!("source must be urn:outreach:institution:<institution_id> with an id of [a-z0-9._:-]{{1,64}}, found {source:?}"))
        })
}

/// `time`: RFC 3339, kept in UTC to the microsecond (what Postgres stores).
fn time(time: &str) -> Result<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(time).map_err(|e| {
        Rejection::new(
            E::BadTime,
            format!("time {time:?} is not an RFC 3339 timestamp ({e})"),
        )
    })?;
    Ok(t.with_timezone(&Utc).trunc_subsecs(6))
}

/// `datacontenttype`, when given, must be JSON (parameters such as a
/// charset are allowed).
fn check_content_type(ct: &str) -> Result<()> {
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
    Ok(())
}

/// An event's `data`: its text (binary mode's value, or a structured
/// event's `data` member read raw), or the members of the object read in
/// the envelope's pass (values unparsed).
pub(super) enum Data<'a> {
    Text(&'a str),
    Members(Vec<(Cow<'a, str>, &'a RawValue)>),
}
