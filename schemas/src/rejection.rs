//! Why a message was refused: a stable machine code and a sentence for people.
//!
//! The code is what dashboards group by (`outreach.quarantine.error_code`,
//! the dead-letter header); the detail says what to fix. Codes never change
//! meaning once released.

use std::fmt;

/// Stable reason codes, written to `quarantine.error_code` as snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    EmptyMessage,
    TooLarge,
    NotUtf8,
    MalformedJson,
    NotAnObject,
    DuplicateKey,
    BadHeader,
    MissingAttribute,
    BadSpecversion,
    BadId,
    BadSource,
    UnknownType,
    BadTime,
    BadContentType,
    MissingData,
    UnknownField,
    MissingField,
    InvalidField,
    InvalidIdentifier,
    InvalidDate,
    DateOutOfRange,
    EndBeforeStart,
    MissionTooLong,
    UnknownRegion,
    UnknownMetric,
    InvalidValue,
    ValueNotInteger,
    ValueTooPrecise,
    ValueTooLarge,
    InvalidRevision,
    InvalidTeamSize,
    UnknownSpecialty,
    UnknownDim,
    InvalidDimValue,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 34] = [
        Self::EmptyMessage,
        Self::TooLarge,
        Self::NotUtf8,
        Self::MalformedJson,
        Self::NotAnObject,
        Self::DuplicateKey,
        Self::BadHeader,
        Self::MissingAttribute,
        Self::BadSpecversion,
        Self::BadId,
        Self::BadSource,
        Self::UnknownType,
        Self::BadTime,
        Self::BadContentType,
        Self::MissingData,
        Self::UnknownField,
        Self::MissingField,
        Self::InvalidField,
        Self::InvalidIdentifier,
        Self::InvalidDate,
        Self::DateOutOfRange,
        Self::EndBeforeStart,
        Self::MissionTooLong,
        Self::UnknownRegion,
        Self::UnknownMetric,
        Self::InvalidValue,
        Self::ValueNotInteger,
        Self::ValueTooPrecise,
        Self::ValueTooLarge,
        Self::InvalidRevision,
        Self::InvalidTeamSize,
        Self::UnknownSpecialty,
        Self::UnknownDim,
        Self::InvalidDimValue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmptyMessage => "empty_message",
            Self::TooLarge => "too_large",
            Self::NotUtf8 => "not_utf8",
            Self::MalformedJson => "malformed_json",
            Self::NotAnObject => "not_an_object",
            Self::DuplicateKey => "duplicate_key",
            Self::BadHeader => "bad_header",
            Self::MissingAttribute => "missing_attribute",
            Self::BadSpecversion => "bad_specversion",
            Self::BadId => "bad_id",
            Self::BadSource => "bad_source",
            Self::UnknownType => "unknown_type",
            Self::BadTime => "bad_time",
            Self::BadContentType => "bad_content_type",
            Self::MissingData => "missing_data",
            Self::UnknownField => "unknown_field",
            Self::MissingField => "missing_field",
            Self::InvalidField => "invalid_field",
            Self::InvalidIdentifier => "invalid_identifier",
            Self::InvalidDate => "invalid_date",
            Self::DateOutOfRange => "date_out_of_range",
            Self::EndBeforeStart => "end_before_start",
            Self::MissionTooLong => "mission_too_long",
            Self::UnknownRegion => "unknown_region",
            Self::UnknownMetric => "unknown_metric",
            Self::InvalidValue => "invalid_value",
            Self::ValueNotInteger => "value_not_integer",
            Self::ValueTooPrecise => "value_too_precise",
            Self::ValueTooLarge => "value_too_large",
            Self::InvalidRevision => "invalid_revision",
            Self::InvalidTeamSize => "invalid_team_size",
            Self::UnknownSpecialty => "unknown_specialty",
            Self::UnknownDim => "unknown_dim",
            Self::InvalidDimValue => "invalid_dim_value",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused message: the code and what exactly was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: ErrorCode,
    pub detail: String,
}

/// The longest reason kept, in bytes: reasons quote the offending value,
/// and a hostile value must not turn every log line and quarantine row into
/// a copy of itself (the payload is kept whole anyway).
pub const MAX_DETAIL_BYTES: usize = 512;

impl Rejection {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        let mut detail = detail.into();
        if detail.len() > MAX_DETAIL_BYTES {
            let full = detail.len();
            let mut cut = MAX_DETAIL_BYTES;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
            detail.push_str(&format!("… (reason cut, {full} bytes)"));
        }
        Self { code, detail }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl std::error::Error for Rejection {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_reason_is_cut_on_a_character_boundary() {
        let r = Rejection::new(ErrorCode::MalformedJson, "é".repeat(1000));
        assert!(r.detail.len() < MAX_DETAIL_BYTES + 40);
        assert!(
            r.detail.ends_with("(reason cut, 2000 bytes)"),
            "{}",
            r.detail
        );
        assert_eq!(
            Rejection::new(ErrorCode::MalformedJson, "short").detail,
            "short"
        );
    }
}
