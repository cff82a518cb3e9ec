//! Kafka record → [`Event`] or [`Rejection`]: every rule of the contract that
//! one message can be checked against, in both CloudEvents content modes.
//!
//! This file owns the entry point ([`Decoder::decode`]): the size limit, the
//! choice of content mode and the dispatch on the event type. The rules
//! themselves live beside it, one concern a file:
//!
//! - `envelope`: the CloudEvents attributes, from headers or from the JSON
//!   envelope, and their validation;
//! - `mission`: the `data` of dispatch and completion events;
//! - `activity`: the `data` of activity events (metric, value, revision, dims);
//! - `fields`: the members of one JSON object, read one by one with the
//!   field's name in every rejection;
//! - `date`: the contract's dates and their range;
//! - `json`: the serde readers that leave values unparsed.
//!
//! JSON objects are read into a list of `(key, raw value)` pairs first, so
//! that duplicate keys, unknown fields and wrong types are each reported with
//! the field's name, and unknown envelope attributes (extensions) are skipped
//! without being parsed into values.

mod activity;
mod date;
mod envelope;
mod fields;
mod json;
mod mission;

use std::sync::Arc;

use chrono::DateTime;

use crate::event::{Body, Event, EventType};
use crate::regions::Regions;
use crate::rejection::{ErrorCode as E, Rejection};

pub use date::{FIRST_DATE, LAST_DATE, parse_date};
use envelope::{Attrs, Data, is_binary_mode, structured, utf8};
use fields::Fields;
use mission::completion;

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

    /// `data.region_code`, which must be in the region table: shared by
    /// dispatch and activity events.
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
