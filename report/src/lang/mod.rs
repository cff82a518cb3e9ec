//! The report's languages: every sentence, label, unit and date format of
//! the page, one table per language ([`en`], [`zh_cn`]), so that one
//! template serves both and a figure cannot be in one page and not the
//! other. Sentences with figures in them are patterns: `{name}` is a slot
//! the page fills (a figure, a date), `` `x` `` is code; [`pieces`] splits
//! them, so word order is the language's own.
//!
//! Numbers are written alike in both languages: thousands grouped with
//! `,` (`3,600`, as many Chinese hospital and commission reports write
//! them), two decimals where there are cents, percentages with two
//! decimals and `%`. A figure's text is then the same in both pages.

mod en;
mod zh_cn;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use schemas::{Level, Metric};

use crate::figures::Role;
use crate::figures::timeliness::Share;

/// The language a report is written in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Lang {
    /// English, the default.
    #[default]
    En,
    /// Simplified Chinese, as the hospitals' own reports are written.
    ZhCn,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::ZhCn];

    /// The BCP 47 tag: `<html lang>`, `--lang` and file names.
    pub fn tag(self) -> &'static str {
        self.text().html_lang
    }

    pub fn text(self) -> &'static Text {
        match self {
            Lang::En => &en::TEXT,
            Lang::ZhCn => &zh_cn::TEXT,
        }
    }

    /// A metric's name, as a column heading or in a sentence.
    pub fn metric(self, metric: Metric) -> &'static str {
        match self {
            Lang::En => en::metric(metric),
            Lang::ZhCn => zh_cn::metric(metric),
        }
    }

    /// What a metric counts in: `persons` / `人次`.
    pub fn unit(self, metric: Metric) -> &'static str {
        match self {
            Lang::En => metric.unit(),
            Lang::ZhCn => zh_cn::unit(metric),
        }
    }

    /// A chart's title: the metric, and in Chinese its unit.
    pub fn chart_title(self, metric: Metric) -> String {
        match self {
            Lang::En => capitalized(en::metric(metric)),
            Lang::ZhCn => format!("{}（{}）", zh_cn::metric(metric), zh_cn::unit(metric)),
        }
    }

    pub fn role(self, role: Role) -> &'static str {
        self.text().roles[Role::ALL.iter().position(|r| *r == role).expect("ALL")]
    }

    pub fn level(self, level: Level) -> &'static str {
        self.text().levels[Level::ALL.iter().position(|l| *l == level).expect("ALL")]
    }

    /// `5 January 2023` / `2023年1月5日`.
    pub fn date(self, d: NaiveDate) -> String {
        match self {
            Lang::En => d.format("%-d %B %Y").to_string(),
            Lang::ZhCn => format!("{}年{}月{}日", d.year(), d.month(), d.day()),
        }
    }

    /// A month in a table or on a chart's axis: `2023-01` / `2023年1月`.
    pub fn month(self, d: NaiveDate) -> String {
        match self {
            Lang::En => d.format("%Y-%m").to_string(),
            Lang::ZhCn => format!("{}年{}月", d.year(), d.month()),
        }
    }

    /// When the report was made.
    pub fn generated(self, t: DateTime<Utc>) -> String {
        match self {
            Lang::En => t.format("%Y-%m-%d %H:%M UTC").to_string(),
            Lang::ZhCn => format!("{} {}（UTC）", self.date(t.date_naive()), t.format("%H:%M")),
        }
    }
}

/// Every sentence and label of the page that is not a metric's name, a
/// role or a level. Patterns are documented where their slots are filled
/// (`page.rs`); `lang::tests` checks both languages fill the same slots.
pub struct Text {
    pub html_lang: &'static str,
    pub doc_title: &'static str,
    pub h1: &'static str,
    pub meta_period: &'static str,
    pub meta_generated: &'static str,
    pub every_region: &'static str,
    pub regions_label: &'static str,
    pub list_sep: &'static str,
    pub one_program: &'static str,
    pub programs: &'static str,
    pub period_range: &'static str,
    pub period_none: &'static str,
    pub no_programs: &'static str,
    pub no_programs_in_regions: &'static str,
    pub program_label: &'static str,
    pub program_empty: &'static str,
    pub lead: &'static str,
    pub unspecified_roles: &'static str,
    /// Under the six headline figures (`page::HEADLINE`).
    pub headline: [&'static str; 6],
    pub every_metric: &'static str,
    pub th_metric: &'static str,
    pub th_total: &'static str,
    pub th_unit: &'static str,
    pub month_by_month: &'static str,
    pub chart_figures: &'static str,
    pub th_month: &'static str,
    pub indicators: &'static str,
    pub indicators_note: &'static str,
    pub th_indicator: [&'static str; 5],
    /// Name and how it is computed, in `page::INDICATORS`' order, then
    /// the share of surgeries performed or supervised.
    pub indicator: [(&'static str, &'static str); 4],
    pub where_title: &'static str,
    pub where_note: &'static str,
    pub th_region: &'static str,
    pub th_level: &'static str,
    pub more_regions: &'static str,
    pub tl_title: &'static str,
    pub tl_intro: &'static str,
    pub tl_arrival: &'static str,
    pub tl_terms: &'static str,
    pub tl_regions: &'static str,
    pub tl_scope: &'static str,
    pub tl_programs: &'static str,
    /// Program, institution, month, then one per `page::TIMELINESS` figure.
    pub th_tl: [&'static str; 11],
    pub tl_institution_months: &'static str,
    pub tl_none: &'static str,
    pub quality: &'static str,
    pub quarantined: &'static str,
    pub quarantined_in_period: &'static str,
    pub quarantine_note: &'static str,
    pub quarantine_hidden: &'static str,
    pub quarantine_none_in_period: &'static str,
    pub quarantine_none: &'static str,
    pub quarantine_count: &'static str,
    pub th_quarantine: [&'static str; 3],
    pub reproduce: &'static str,
    pub this_page: &'static str,
    pub reproduce_text: &'static str,
    pub reproduce_regions: &'static str,
    pub reproduce_tl: &'static str,
    pub roles: [&'static str; 3],
    pub levels: [&'static str; 4],
}

/// A part of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    /// `` `x` ``: code, as `<code>`.
    Code(&'a str),
    /// `{name}`: filled in by the page.
    Slot(&'a str),
}

/// `pattern` split into text, code and slots.
pub fn pieces(pattern: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(i) = rest.find(['{', '`']) {
        if i > 0 {
            out.push(Piece::Text(&rest[..i]));
        }
        let slot = rest[i..].starts_with('{');
        let Some(len) = rest[i + 1..].find(if slot { '}' } else { '`' }) else {
            // Unclosed: text as it stands (no pattern of ours has one).
            break;
        };
        let inner = &rest[i + 1..i + 1 + len];
        out.push(if slot {
            Piece::Slot(inner)
        } else {
            Piece::Code(inner)
        });
        rest = &rest[i + 2 + len..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

/// A pattern without code, its slots filled with `values` (a slot not
/// among them stays as it is written, so a test sees it).
pub fn fill(pattern: &str, values: &[(&str, &str)]) -> String {
    pieces(pattern)
        .into_iter()
        .map(|p| match p {
            Piece::Text(t) | Piece::Code(t) => t.to_owned(),
            Piece::Slot(s) => values
                .iter()
                .find(|(k, _)| *k == s)
                .map_or_else(|| format!("{{{s}}}"), |(_, v)| (*v).to_owned()),
        })
        .collect()
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|first| first.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Hundredths as a reader writes them: `3,600`, or `1,234.50` where there
/// are cents.
pub fn amount(hundredths: i64) -> String {
    let whole = group_digits(hundredths / 100);
    match (hundredths % 100).abs() {
        0 => whole,
        cents if hundredths < 0 && hundredths / 100 == 0 => format!("-0.{cents:02}"),
        cents => format!("{whole}.{cents:02}"),
    }
}

pub fn group_digits(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// A share as a percentage to two decimals (`87.50%`): exactly the
/// view's four decimals. `–` where there is none.
pub fn percent(share: Option<Share>) -> String {
    match share {
        Some(Share(n)) => format!("{}.{:02}%", n / 100, n % 100),
        None => NONE.into(),
    }
}

/// A whole number of days, `–` where there is none.
pub fn days(d: Option<i64>) -> String {
    d.map_or_else(|| NONE.into(), group_digits)
}

/// What a figure without a value (the views' NULL) prints.
pub const NONE: &str = "–";

#[cfg(test)]
mod tests;
