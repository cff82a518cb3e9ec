//! The contract's dates: `YYYY-MM-DD`, a day the calendar has, within the
//! range an event may name. Used for every date field of `data`.

use chrono::NaiveDate;

use super::{Result, reject};
use crate::rejection::{ErrorCode as E, Rejection};

/// The earliest and latest dates an event may name. Anything outside is a
/// producer's mistake (a year typed as 0 or 9999), not a late event.
pub const FIRST_DATE: NaiveDate = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap();
pub const LAST_DATE: NaiveDate = NaiveDate::from_ymd_opt(2099, 12, 31).unwrap();

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
