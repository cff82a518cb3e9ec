//! The members of one JSON object (an envelope, `data`, `dims`), read one
//! by one: each getter removes the member it reads and names the field in
//! its rejection, and whatever is left over is an unknown field.

use std::borrow::Cow;

use chrono::NaiveDate;
use serde_json::value::RawValue;

use super::date::parse_date;
use super::json::{Key, Members, json_error};
use super::{Result, reject};
use crate::event::Id;
use crate::rejection::{ErrorCode as E, Rejection};

/// The members of one JSON object, in order, values left unparsed.
pub(super) struct Fields<'a> {
    what: &'static str,
    pub(super) items: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> Fields<'a> {
    pub(super) fn parse(text: &'a str, what: &'static str) -> Result<Fields<'a>> {
        let items = serde_json::from_str::<Members<'a>>(text)
            .map_err(|e| json_error(&e, what))?
            .0;
        Fields::new(items, what)
    }

    pub(super) fn new(
        items: Vec<(Cow<'a, str>, &'a RawValue)>,
        what: &'static str,
    ) -> Result<Fields<'a>> {
        if let Some(key) = duplicate(&items) {
            return reject(
                E::DuplicateKey,
                format!("{what}: key `{key}` appears more than once"),
            );
        }
        Ok(Fields { what, items })
    }

    pub(super) fn take(&mut self, name: &str) -> Option<&'a RawValue> {
        let i = self.items.iter().position(|(k, _)| k == name)?;
        Some(self.items.swap_remove(i).1)
    }

    pub(super) fn require(&mut self, name: &str) -> Result<&'a RawValue> {
        match self.take(name) {
            Some(raw) if raw.get() != "null" => Ok(raw),
            _ => reject(E::MissingField, format!("{}.{name} is required", self.what)),
        }
    }

    /// A string member, borrowed from the message unless it has escapes.
    pub(super) fn string(&mut self, name: &str) -> Result<Cow<'a, str>> {
        let raw = self.require(name)?;
        text(raw).ok_or_else(|| {
            Rejection::new(
                E::InvalidField,
                format!("{}.{name} must be a string", self.what),
            )
        })
    }

    pub(super) fn opt_string(&mut self, name: &str) -> Result<Option<Cow<'a, str>>> {
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

    pub(super) fn id(&mut self, name: &str) -> Result<Id> {
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

    pub(super) fn opt_id(&mut self, name: &str) -> Result<Option<Id>> {
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

    pub(super) fn date(&mut self, name: &str) -> Result<NaiveDate> {
        let s = self.string(name)?;
        parse_date(&s, "").map_err(|r| self.named(r, name))
    }

    pub(super) fn opt_date(&mut self, name: &str) -> Result<Option<NaiveDate>> {
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
    pub(super) fn only(&self, fields: &[&str]) -> Result<()> {
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
pub(super) fn text<'a>(raw: &'a RawValue) -> Option<Cow<'a, str>> {
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
