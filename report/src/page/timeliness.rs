//! The reporting-timeliness section as printed: per program, per
//! institution, per month, and per institution and month. Every figure is
//! a `span.tl` naming the `reporting_timeliness` column it is
//! (`data-timeliness`) and its scope (`data-program`, and where narrower
//! `data-institution`, `data-month`), so a test can check it against SQL.

use chrono::NaiveDate;

use crate::figures::ProgramFigures;
use crate::figures::timeliness::Lags;
use crate::lang::{Lang, days, group_digits, percent};

use super::month_key;

/// The figures of a row, in the view's column order.
pub const TIMELINESS: [&str; 8] = [
    "events",
    "corrections",
    "withdrawals",
    "arrival_unknown",
    "median_days",
    "p90_days",
    "within_7_days",
    "within_30_days",
];

/// One printed timeliness figure and its scope.
pub struct Tl {
    pub text: String,
    pub program: String,
    /// A column of `reporting_timeliness`: one of [`TIMELINESS`].
    pub figure: &'static str,
    pub institution: Option<String>,
    /// `YYYY-MM`: the month of the work.
    pub month: Option<String>,
}

/// A row: its label(s), then the figures.
pub struct TlRow {
    pub labels: Vec<String>,
    pub cells: Vec<Tl>,
}

pub struct TimelinessView {
    pub id: String,
    pub title: String,
    pub any: bool,
    pub total: TlRow,
    pub institutions: Vec<TlRow>,
    pub months: Vec<TlRow>,
    pub institution_months: Vec<TlRow>,
}

impl TimelinessView {
    pub fn new(p: &ProgramFigures, lang: Lang) -> TimelinessView {
        let t = &p.timeliness;
        let row = |labels: Vec<String>, lags: &Lags, institution: Option<&str>, month| TlRow {
            labels,
            cells: cells(&p.id, lags, institution, month),
        };
        TimelinessView {
            id: p.id.clone(),
            title: p.title().to_owned(),
            any: t.total.events > 0,
            total: row(vec![p.title().to_owned()], &t.total, None, None),
            institutions: t
                .institutions
                .iter()
                .map(|(i, l)| row(vec![i.clone()], l, Some(i), None))
                .collect(),
            months: t
                .months
                .iter()
                .map(|(m, l)| row(vec![lang.month(*m)], l, None, Some(*m)))
                .collect(),
            institution_months: t
                .institution_months
                .iter()
                .map(|(i, m, l)| row(vec![i.clone(), lang.month(*m)], l, Some(i), Some(*m)))
                .collect(),
        }
    }
}

fn cells(program: &str, l: &Lags, institution: Option<&str>, month: Option<NaiveDate>) -> Vec<Tl> {
    let texts = [
        group_digits(l.events),
        group_digits(l.corrections),
        group_digits(l.withdrawals),
        group_digits(l.arrival_unknown),
        days(l.median_days()),
        days(l.p90_days()),
        percent(l.within(7)),
        percent(l.within(30)),
    ];
    TIMELINESS
        .iter()
        .zip(texts)
        .map(|(figure, text)| Tl {
            text,
            program: program.to_owned(),
            figure,
            institution: institution.map(str::to_owned),
            month: month.map(month_key),
        })
        .collect()
}
