//! The `data` of activity events: which metric, how much, which revision of
//! the record, and the `dims` the metric catalogue allows for it.

use super::fields::{Fields, text};
use super::{Decoder, Result, reject};
use crate::event::{Activity, Dims};
use crate::metric::{DimError, Metric};
use crate::number::{Amount, MAX_UNITS, NumberError};
use crate::rejection::{ErrorCode as E, Rejection};

impl Decoder {
    pub(super) fn activity(&self, mut f: Fields<'_>) -> Result<Activity> {
        f.only(&Activity::FIELDS)?;
        let metric_name = f.string("metric")?;
        let metric = Metric::parse_activity(&metric_name).ok_or_else(|| {
            Rejection::new(
                E::UnknownMetric,
                format!("data.metric `{metric_name}` is not in the metric catalogue"),
            )
        })?;
        // Read in this order, so that a message with several faults is
        // refused for the same one as before: metric, value, revision, dims,
        // then the ids.
        let value = value(&mut f, metric)?;
        let revision = revision(&mut f)?;
        let dims = match f.take("dims") {
            Some(raw) if raw.get() != "null" => dims(metric, raw.get())?,
            _ => Dims::default(),
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
}

/// `data.value`: a non-negative number, whole unless the metric's unit is CNY
/// (then at most two decimals), under the per-event limit.
fn value(f: &mut Fields<'_>, metric: Metric) -> Result<Amount> {
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
    match Amount::parse_json(f.require("value")?.get()) {
        Ok(v) if !metric.allows_decimals() && !v.is_integer() => not_integer(),
        Ok(v) => Ok(v),
        Err(NumberError::NotANumber) => reject(E::InvalidValue, "data.value must be a JSON number"),
        Err(NumberError::Negative) => reject(E::InvalidValue, "data.value must not be negative"),
        Err(NumberError::TooPrecise) if metric.allows_decimals() => reject(
            E::ValueTooPrecise,
            "data.value has more than two decimals (CNY amounts are in fen at most)",
        ),
        Err(NumberError::TooPrecise) => not_integer(),
        Err(NumberError::TooLarge) => reject(
            E::ValueTooLarge,
            format!("data.value is over the limit of {MAX_UNITS} per event"),
        ),
    }
}

/// `data.revision`: optional, default 1, a whole number from 1 to `i32::MAX`.
fn revision(f: &mut Fields<'_>) -> Result<i32> {
    let Some(raw) = f.take("revision") else {
        return Ok(1);
    };
    match Amount::parse_json(raw.get()) {
        Ok(a)
            if a.is_integer()
                && a.hundredths() >= 100
                && a.hundredths() / 100 <= i32::MAX as i64 =>
        {
            Ok((a.hundredths() / 100) as i32)
        }
        _ => reject(E::InvalidRevision, "data.revision must be an integer ≥ 1"),
    }
}

/// `data.dims`: an object of strings, each key and value one the catalogue
/// allows for the metric.
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
