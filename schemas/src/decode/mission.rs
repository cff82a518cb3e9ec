//! The `data` of mission events: a dispatch (who goes where, how many, from
//! when) and a completion (when it ended). The metrics they yield are
//! derived later, by the transform; here only the contract's rules.

use std::borrow::Cow;

use super::fields::Fields;
use super::{Decoder, Result, reject};
use crate::event::{Completion, Dispatch};
use crate::metric::Specialty;
use crate::number::Amount;
use crate::rejection::{ErrorCode as E, Rejection};

impl Decoder {
    pub(super) fn dispatch(&self, mut f: Fields<'_>) -> Result<Dispatch> {
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
        // Read in this order, so that a message with several faults is
        // refused for the same one as before: dates, team, specialties, ids.
        let team_size = team_size(&mut f)?;
        let specialties = specialties(&mut f)?;
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
}

/// `data.team_size`: a whole number of experts, 1 to 10,000.
fn team_size(f: &mut Fields<'_>) -> Result<i32> {
    let raw = f.require("team_size")?;
    match Amount::parse_json(raw.get()) {
        Ok(a) if a.is_integer() && (1..=10_000).contains(&(a.hundredths() / 100)) => {
            Ok((a.hundredths() / 100) as i32)
        }
        _ => reject(
            E::InvalidTeamSize,
            "data.team_size must be an integer from 1 to 10000",
        ),
    }
}

/// `data.specialties`: optional, each a specialty code of the contract.
fn specialties(f: &mut Fields<'_>) -> Result<Vec<String>> {
    let raw = match f.take("specialties") {
        Some(raw) if raw.get() != "null" => raw,
        _ => return Ok(Vec::new()),
    };
    let list: Vec<String> = serde_json::from_str(raw.get()).map_err(|_| {
        Rejection::new(
            E::InvalidField,
            "data.specialties must be an array of strings",
        )
    })?;
    if let Some(s) = list.iter().find(|s| Specialty::parse(s).is_none()) {
        return reject(
            E::UnknownSpecialty,
            format!("data.specialties: `{s}` is not a specialty code of the contract"),
        );
    }
    Ok(list)
}

pub(super) fn completion(mut f: Fields<'_>) -> Result<Completion> {
    f.only(&Completion::FIELDS)?;
    let c = Completion {
        mission_id: f.id("mission_id")?,
        end_date: f.date("end_date")?,
    };
    Ok(c)
}
