//! Reporting timeliness: how long after the day of the work its activity
//! records first reached the statistics, per program (every institution
//! the login sees, together), per program and month, per program and
//! institution, and per institution, program and month (the grain of the
//! `reporting_timeliness` view, which these equal).
//!
//! Every figure is read off a summed distribution (`reporting_lags`: facts
//! per day count), never averaged from finer figures: a median of medians
//! is not the median. The definitions are the views' (sink migrations
//! `postgres/0008_arrivals.sql`, `sqlite/0004_arrivals.sql`): nearest-rank
//! percentiles and shares over the facts whose arrival is known.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use sink::report::LagRow;

/// Activity facts by days from their day to their first arrival.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lags {
    pub events: i64,
    pub corrections: i64,
    pub withdrawals: i64,
    /// Facts stored before arrivals were kept: counted in `events`, in no
    /// figure about days.
    pub arrival_unknown: i64,
    /// Facts per day count, of those whose arrival is known.
    by_days: BTreeMap<i64, i64>,
}

/// A share in ten-thousandths (the views round to four decimals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share(pub i64);

impl Lags {
    fn add(&mut self, row: &LagRow) {
        self.events += row.events;
        self.corrections += row.corrections;
        self.withdrawals += row.withdrawals;
        match row.days_to_arrival {
            Some(days) => *self.by_days.entry(days).or_default() += row.events,
            None => self.arrival_unknown += row.events,
        }
    }

    /// Facts whose arrival is known: what the figures about days are of.
    pub fn known(&self) -> i64 {
        self.by_days.values().sum()
    }

    /// The smallest day count at least half of the known facts arrived
    /// within; `None` where no arrival is known.
    pub fn median_days(&self) -> Option<i64> {
        self.nearest_rank(1, 2)
    }

    /// The smallest day count at least 90 % of the known facts arrived
    /// within.
    pub fn p90_days(&self) -> Option<i64> {
        self.nearest_rank(9, 10)
    }

    /// The smallest `d` with `count(days <= d) / known >= num / den`, in
    /// integers as the view compares them.
    fn nearest_rank(&self, num: i64, den: i64) -> Option<i64> {
        let known = self.known();
        let mut reached = 0;
        for (days, events) in &self.by_days {
            reached += events;
            if den * reached >= num * known {
                return Some(*days);
            }
        }
        None
    }

    /// The share of the known facts that arrived within `days` days,
    /// rounded half away from zero to four decimals (Postgres' `round` of
    /// a numeric); `None` where no arrival is known.
    pub fn within(&self, days: i64) -> Option<Share> {
        let known = self.known();
        if known == 0 {
            return None;
        }
        let count: i64 = self.by_days.range(..=days).map(|(_, n)| n).sum();
        Some(Share((2 * count * 10_000 + known) / (2 * known)))
    }
}

/// One program's timeliness at every grain the report prints.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProgramTimeliness {
    pub total: Lags,
    /// Months of the work with facts, in order.
    pub months: Vec<(NaiveDate, Lags)>,
    /// Institutions with facts, by id.
    pub institutions: Vec<(String, Lags)>,
    /// Each institution month by month: the rows of `reporting_timeliness`.
    pub institution_months: Vec<(String, NaiveDate, Lags)>,
}

impl ProgramTimeliness {
    /// `program`'s figures from `rows` (every program's `reporting_lags`).
    pub fn of(rows: &[LagRow], program: &str) -> ProgramTimeliness {
        let mut total = Lags::default();
        let mut months: BTreeMap<NaiveDate, Lags> = BTreeMap::new();
        let mut institutions: BTreeMap<&str, Lags> = BTreeMap::new();
        let mut cells: BTreeMap<(&str, NaiveDate), Lags> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.program_id == program) {
            let institution = r.institution_id.as_str();
            total.add(r);
            months.entry(r.month).or_default().add(r);
            institutions.entry(institution).or_default().add(r);
            cells.entry((institution, r.month)).or_default().add(r);
        }
        ProgramTimeliness {
            total,
            months: months.into_iter().collect(),
            institutions: institutions
                .into_iter()
                .map(|(i, l)| (i.to_owned(), l))
                .collect(),
            institution_months: cells
                .into_iter()
                .map(|((i, m), l)| (i.to_owned(), m, l))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn month(m: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2023, m, 1).unwrap()
    }

    fn lag(institution: &str, m: u32, days: Option<i64>, events: i64) -> LagRow {
        LagRow {
            institution_id: institution.into(),
            program_id: "p".into(),
            month: month(m),
            days_to_arrival: days,
            events,
            corrections: events / 2,
            withdrawals: events / 3,
        }
    }

    fn lags(rows: &[LagRow]) -> Lags {
        let mut l = Lags::default();
        rows.iter().for_each(|r| l.add(r));
        l
    }

    #[test]
    fn percentiles_are_nearest_rank_over_the_known_arrivals() {
        // Days 0, 2, 2, 5, 40 and two unknown.
        let l = lags(&[
            lag("a", 1, Some(0), 1),
            lag("a", 1, Some(2), 2),
            lag("a", 1, Some(5), 1),
            lag("a", 1, Some(40), 1),
            lag("a", 1, None, 2),
        ]);
        assert_eq!((l.events, l.arrival_unknown, l.known()), (7, 2, 5));
        // 2 * 3 >= 5 first at day 2; 10 * 5 >= 45 only at day 40.
        assert_eq!(l.median_days(), Some(2));
        assert_eq!(l.p90_days(), Some(40));
        // 4 of 5 within 7 days and within 30.
        assert_eq!(l.within(7), Some(Share(8_000)));
        assert_eq!(l.within(30), Some(Share(8_000)));
        assert_eq!(l.within(40), Some(Share(10_000)));
    }

    #[test]
    fn an_even_count_takes_the_lower_middle_and_ties_round_away_from_zero() {
        let l = lags(&[lag("a", 1, Some(1), 1), lag("a", 1, Some(9), 1)]);
        // 2 * 1 >= 2: the lower of the two middle facts.
        assert_eq!(l.median_days(), Some(1));
        // 1 of 32 is 0.03125: 0.0313, as Postgres rounds a numeric.
        let l = lags(&[lag("a", 1, Some(1), 1), lag("a", 1, Some(99), 31)]);
        assert_eq!(l.within(7), Some(Share(313)));
        // 2 of 3 is 0.666…: 0.6667.
        let l = lags(&[lag("a", 1, Some(1), 2), lag("a", 1, Some(99), 1)]);
        assert_eq!(l.within(7), Some(Share(6_667)));
    }

    #[test]
    fn no_known_arrival_gives_no_figure_about_days() {
        let l = lags(&[lag("a", 1, None, 3)]);
        assert_eq!((l.events, l.arrival_unknown), (3, 3));
        assert_eq!(
            (l.median_days(), l.p90_days(), l.within(7)),
            (None, None, None)
        );
        let empty = Lags::default();
        assert_eq!((empty.median_days(), empty.within(30)), (None, None));
    }

    #[test]
    fn a_program_sums_the_distributions_never_the_medians() {
        // Institution a: 3 facts on day 0; b: 1 fact on day 30. The median
        // of the medians would be 15; of the facts, 0.
        let rows = [
            lag("a", 1, Some(0), 3),
            lag("b", 2, Some(30), 1),
            lag("b", 2, None, 6),
            LagRow {
                program_id: "other".into(),
                ..lag("a", 1, Some(99), 50)
            },
        ];
        let t = ProgramTimeliness::of(&rows, "p");
        assert_eq!(t.total.events, 10);
        assert_eq!(t.total.median_days(), Some(0));
        assert_eq!(t.total.p90_days(), Some(30));
        assert_eq!(t.total.within(7), Some(Share(7_500)));
        let months: Vec<(NaiveDate, i64)> = t.months.iter().map(|(m, l)| (*m, l.events)).collect();
        assert_eq!(months, [(month(1), 3), (month(2), 7)]);
        let institutions: Vec<(&str, Option<i64>)> = t
            .institutions
            .iter()
            .map(|(i, l)| (i.as_str(), l.median_days()))
            .collect();
        assert_eq!(institutions, [("a", Some(0)), ("b", Some(30))]);
        assert_eq!(t.institution_months.len(), 2);
        assert_eq!(t.institution_months[1].2.arrival_unknown, 6);
        assert_eq!(
            ProgramTimeliness::of(&rows, "none"),
            ProgramTimeliness::default()
        );
    }
}
