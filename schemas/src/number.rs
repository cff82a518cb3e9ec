//! Exact amounts. Every metric value is held as an integer count of
//! hundredths, so sums are exact for the CNY metric (two decimals) and for
//! the integer ones alike, and no float ever touches a total.

use std::fmt;

/// The largest value one event may carry, in the metric's unit. Sums of ten
/// million such values still fit in an `i64` of hundredths.
pub const MAX_UNITS: i64 = 1_000_000_000;

/// A non-negative amount in hundredths of the metric's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(i64);

/// Why a JSON number is not an acceptable amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberError {
    NotANumber,
    Negative,
    TooPrecise,
    TooLarge,
}

impl Amount {
    pub const ZERO: Amount = Amount(0);

    pub fn from_hundredths(h: i64) -> Self {
        Amount(h)
    }

    pub fn from_units(u: i64) -> Self {
        Amount(u * 100)
    }

    pub fn hundredths(self) -> i64 {
        self.0
    }

    pub fn is_integer(self) -> bool {
        self.0 % 100 == 0
    }

    /// Parses the text of a JSON number exactly (no float on the way):
    /// `23`, `23.0`, `12.50`, `1.5e3`. At most two decimals survive.
    pub fn parse_json(text: &str) -> Result<Self, NumberError> {
        let (neg, digits, shift) = lex(text)?;
        let digits = digits.trim_start_matches('0');
        // Zero is checked before the sign: `-0` and `-0.0` read as zero.
        if digits.is_empty() {
            return Ok(Amount::ZERO);
        }
        if neg {
            return Err(NumberError::Negative);
        }
        scale(digits, shift).map(Amount)
    }
}

/// A JSON number's text as (negative, its digits, the power of ten that turns
/// those digits into hundredths): `12.5` is `125` shifted by 1, `1.5e3` is
/// `15` shifted by 4.
fn lex(text: &str) -> Result<(bool, String, i64), NumberError> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => {
            let e: i32 = t[i + 1..]
                .strip_prefix('+')
                .unwrap_or(&t[i + 1..])
                .parse()
                .map_err(|_| NumberError::NotANumber)?;
            (&t[..i], e)
        }
        None => (t, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NumberError::NotANumber);
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || (mantissa.contains('.') && frac.is_empty()) {
        return Err(NumberError::NotANumber);
    }
    // value = digits * 10^(exp - frac.len()); we want hundredths.
    let shift = exp as i64 - frac.len() as i64 + 2;
    Ok((neg, format!("{int}{frac}"), shift))
}

/// `digits` (no leading zeros) times 10^`shift`, in hundredths: digits
/// shifted out must be zeros, and the result at most [`MAX_UNITS`].
fn scale(digits: &str, shift: i64) -> Result<i64, NumberError> {
    let (kept, dropped) = if shift >= 0 {
        (digits, "")
    } else {
        let cut = digits.len().saturating_sub((-shift) as usize);
        digits.split_at(cut)
    };
    if dropped.bytes().any(|b| b != b'0') {
        return Err(NumberError::TooPrecise);
    }
    let max = MAX_UNITS * 100;
    let mut h: i64 = 0;
    for b in kept.bytes() {
        h = h
            .checked_mul(10)
            .and_then(|h| h.checked_add((b - b'0') as i64))
            .filter(|h| *h <= max)
            .ok_or(NumberError::TooLarge)?;
    }
    for _ in 0..shift.max(0) {
        h = h
            .checked_mul(10)
            .filter(|h| *h <= max)
            .ok_or(NumberError::TooLarge)?;
    }
    Ok(h)
}

impl fmt::Display for Amount {
    /// `23`, `12.5` → `12.50`: the exact decimal, as Postgres `numeric` reads it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_hundredths(self.0, f)
    }
}

fn fmt_hundredths(h: i64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let sign = if h < 0 { "-" } else { "" };
    let a = h.unsigned_abs();
    if a.is_multiple_of(100) {
        write!(f, "{sign}{}", a / 100)
    } else {
        write!(f, "{sign}{}.{:02}", a / 100, a % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_two_decimals_parse_exactly() {
        assert_eq!(Amount::parse_json("23"), Ok(Amount(2300)));
        assert_eq!(Amount::parse_json("23.0"), Ok(Amount(2300)));
        assert_eq!(Amount::parse_json("12.5"), Ok(Amount(1250)));
        assert_eq!(Amount::parse_json("0.01"), Ok(Amount(1)));
        assert_eq!(Amount::parse_json("1.5e3"), Ok(Amount(150_000)));
        assert_eq!(Amount::parse_json("150e-2"), Ok(Amount(150)));
        assert_eq!(Amount::parse_json("0"), Ok(Amount(0)));
        assert_eq!(Amount::parse_json("-0"), Ok(Amount(0)));
        assert_eq!(
            Amount::parse_json("1000000000"),
            Ok(Amount(100_000_000_000))
        );
    }

    #[test]
    fn bad_amounts_say_why() {
        assert_eq!(Amount::parse_json("-1"), Err(NumberError::Negative));
        assert_eq!(Amount::parse_json("0.001"), Err(NumberError::TooPrecise));
        assert_eq!(
            Amount::parse_json("1000000000.01"),
            Err(NumberError::TooLarge)
        );
        assert_eq!(Amount::parse_json("1e400"), Err(NumberError::TooLarge));
        assert_eq!(
            Amount::parse_json("123456789012345678901234567890"),
            Err(NumberError::TooLarge)
        );
        assert_eq!(Amount::parse_json("\"3\""), Err(NumberError::NotANumber));
        assert_eq!(Amount::parse_json("NaN"), Err(NumberError::NotANumber));
        assert_eq!(Amount::parse_json("true"), Err(NumberError::NotANumber));
    }

    #[test]
    fn amounts_print_as_exact_decimals() {
        assert_eq!(Amount(2300).to_string(), "23");
        assert_eq!(Amount(1250).to_string(), "12.50");
        assert_eq!(Amount(-1205).to_string(), "-12.05");
    }
}
