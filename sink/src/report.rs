//! The rows `outreach report` reads (`Sink::report_rows`; each backend's
//! SQL in its `reads.rs`): the analyst tables summed for a period and a set
//! of programs. Only reads, through the same views analysts query
//! (`daily_metrics`, `reporting_lags`, `regions`, `programs`,
//! `quarantine`), so a report shows what its login may see (Postgres'
//! analyst scope applies). And the demo's overview tables ([`Section`]).
//!
//! Values come back in hundredths (`i64`): sums stay exact, and the report
//! formats them. The report crate does the rest (regions, indicators,
//! charts) in memory: at most programs × regions × months × metrics rows.

use chrono::NaiveDate;
use schemas::Metric;

/// One table of the demo's overview (`Sink::overview`, SQLite's).
pub struct Section {
    pub title: &'static str,
    pub header: &'static [&'static str],
    /// The columns that hold numbers (to align them right).
    pub numeric: std::ops::Range<usize>,
    pub rows: Vec<Vec<String>>,
}

/// Which rows a report covers. Empty `programs`: every program.
#[derive(Debug, Clone, Default)]
pub struct ReportQuery {
    pub programs: Vec<String>,
    /// First and last day of the period, inclusive; `None`: unbounded.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

/// `daily_metrics` summed per program, region, month, metric and (for
/// surgeries) the visiting team's role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityRow {
    pub program_id: String,
    pub region_code: String,
    /// The first day of the month.
    pub month: NaiveDate,
    pub metric: Metric,
    /// `dims.role` of `surgeries` (`performed`, `supervised`, `assisted`);
    /// `None` for other metrics and for surgeries without one.
    pub role: Option<String>,
    pub hundredths: i64,
    /// The first and last day of the rows summed.
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RegionRow {
    pub region_code: String,
    pub name: String,
    pub level: String,
    pub parent_code: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProgramRow {
    pub program_id: String,
    pub name: Option<String>,
}

/// Quarantined messages received in the period, per error code.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QuarantineCount {
    pub error_code: String,
    pub messages: i64,
    /// One of the reasons given (the first in text order).
    pub example: String,
}

/// One row of `reporting_lags`: how many activity facts of an institution
/// and program, whose day falls in `month`, first arrived `days_to_arrival`
/// days after that day. The report sums these per program, per institution
/// and per month, percentiles included (docs/contract.md, "Reporting
/// timeliness").
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LagRow {
    pub institution_id: String,
    pub program_id: String,
    /// The first day of the month the work was done in.
    pub month: NaiveDate,
    /// `None`: the facts were stored before arrivals were kept.
    pub days_to_arrival: Option<i64>,
    pub events: i64,
    /// Facts whose winning revision is above 1 and not a withdrawal.
    pub corrections: i64,
    /// Facts whose winning revision has the value 0.
    pub withdrawals: i64,
}

/// Everything a report is made of.
#[derive(Debug, Clone)]
pub struct ReportRows {
    /// `"postgres"` or `"sqlite"`: how the report names its tables.
    pub backend: &'static str,
    pub activity: Vec<ActivityRow>,
    /// The first and last day with figures under the filter (of `activity`).
    pub days: Option<(NaiveDate, NaiveDate)>,
    pub regions: Vec<RegionRow>,
    pub programs: Vec<ProgramRow>,
    pub quarantine: Vec<QuarantineCount>,
    /// Whether this login sees the quarantine (Postgres: an analyst
    /// granted every institution, or the owner; SQLite: whoever reads the
    /// file). Where it does not, `quarantine` is empty whatever it holds.
    pub sees_quarantine: bool,
    /// `reporting_lags` for the programs asked, in the months the period
    /// touches (the view's grain is the month of the work), ordered by
    /// institution, program, month and days.
    pub lags: Vec<LagRow>,
}

/// An [`ActivityRow`] as the database gives it: its metric as text.
#[derive(sqlx::FromRow)]
pub(crate) struct StoredActivityRow {
    program_id: String,
    region_code: String,
    month: NaiveDate,
    metric: String,
    role: Option<String>,
    hundredths: i64,
    first_day: NaiveDate,
    last_day: NaiveDate,
}

/// The rows whose metric is in the catalogue: the pipeline writes no
/// other, and a row edited by hand is left out of the figures (and said,
/// once per metric) rather than guessed. Returns them with the first and
/// last day of every row, as before they were typed: the report's period.
pub(crate) fn known(
    rows: Vec<StoredActivityRow>,
) -> (Vec<ActivityRow>, Option<(NaiveDate, NaiveDate)>) {
    let first = rows.iter().map(|r| r.first_day).min();
    let last = rows.iter().map(|r| r.last_day).max();
    let mut unknown = std::collections::BTreeSet::new();
    let known = rows
        .into_iter()
        .filter_map(|r| {
            let Some(metric) = Metric::parse(&r.metric) else {
                unknown.insert(r.metric);
                return None;
            };
            Some(ActivityRow {
                program_id: r.program_id,
                region_code: r.region_code,
                month: r.month,
                metric,
                role: r.role,
                hundredths: r.hundredths,
                first_day: r.first_day,
                last_day: r.last_day,
            })
        })
        .collect();
    for metric in unknown {
        tracing::warn!(%metric, "daily_metrics holds a metric this version does not know; the report leaves it out");
    }
    (known, first.zip(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(metric: &str, first: u32, last: u32) -> StoredActivityRow {
        let day = |d| NaiveDate::from_ymd_opt(2023, 3, d).unwrap();
        StoredActivityRow {
            program_id: "p".into(),
            region_code: "620921".into(),
            month: day(1),
            metric: metric.into(),
            role: None,
            hundredths: 100,
            first_day: day(first),
            last_day: day(last),
        }
    }

    /// A metric edited in by hand is left out of the figures, but its
    /// days still bound the report's period, as before the rows were typed.
    #[test]
    fn an_unknown_metric_is_left_out_but_its_days_count() {
        let (rows, days) = known(vec![
            stored("surgeries", 5, 9),
            stored("not_a_metric", 2, 28),
        ]);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].metric, Metric::Surgeries);
        let day = |d| NaiveDate::from_ymd_opt(2023, 3, d).unwrap();
        assert_eq!(days, Some((day(2), day(28))));
        assert_eq!(known(Vec::new()), (Vec::new(), None));
    }
}
