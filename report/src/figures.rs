//! The report's figures, computed from the rows the sink read: totals per
//! program, per month and per region (every ancestor of a cell's region
//! gets its figures), the surgery roles, the outcome indicators as ratios
//! of sums, and the data-quality counts. Pure: no I/O, so every rule here
//! is unit-tested.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate};
use schemas::{Level, Metric};
use sink::report::{ActivityRow, LatenessCount, QuarantineCount, RegionRow, ReportRows};

use crate::Error;

/// What a report was asked for (`outreach report`'s options).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub programs: Vec<String>,
    pub regions: Vec<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

/// Sums in hundredths, one per metric of the catalogue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals([i64; Metric::ALL.len()]);

impl Totals {
    pub fn get(&self, metric: Metric) -> i64 {
        self.0[index(metric)]
    }

    fn add(&mut self, metric: Metric, hundredths: i64) {
        self.0[index(metric)] += hundredths;
    }

    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|v| *v == 0)
    }
}

fn index(metric: Metric) -> usize {
    Metric::ALL
        .iter()
        .position(|m| *m == metric)
        .expect("ALL lists every metric")
}

/// Surgeries by the visiting team's role (`dims.role`), in hundredths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roles {
    pub performed: i64,
    pub supervised: i64,
    pub assisted: i64,
    /// Surgeries reported without a role.
    pub unspecified: i64,
}

/// The visiting team's part in a surgery: `dims.role` of `surgeries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Performed,
    Supervised,
    Assisted,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Performed, Role::Supervised, Role::Assisted];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Performed => "performed",
            Role::Supervised => "supervised",
            Role::Assisted => "assisted",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// As the `surgery_roles` view's share: performed or supervised, of those
/// with one of the three roles.
pub const PERFORMED_OR_SUPERVISED: [Role; 2] = [Role::Performed, Role::Supervised];

impl Roles {
    fn add(&mut self, role: Option<&str>, hundredths: i64) {
        match role.and_then(Role::parse) {
            Some(Role::Performed) => self.performed += hundredths,
            Some(Role::Supervised) => self.supervised += hundredths,
            Some(Role::Assisted) => self.assisted += hundredths,
            None => self.unspecified += hundredths,
        }
    }

    /// Surgeries with one of `roles`.
    pub fn sum(&self, roles: &[Role]) -> i64 {
        roles
            .iter()
            .map(|r| match r {
                Role::Performed => self.performed,
                Role::Supervised => self.supervised,
                Role::Assisted => self.assisted,
            })
            .sum()
    }
}

/// A region that received work, at its depth in the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionFigures {
    pub code: String,
    pub name: String,
    pub level: Level,
    /// 0 for a country, one more per level below its nearest shown ancestor.
    pub depth: usize,
    pub totals: Totals,
}

/// Everything about one program.
#[derive(Debug, Clone)]
pub struct ProgramFigures {
    pub id: String,
    pub name: Option<String>,
    pub totals: Totals,
    pub roles: Roles,
    /// Every month of the report's period, in order, zeros included.
    pub months: Vec<(NaiveDate, Totals)>,
    /// Countries, then their provinces, prefectures and counties, depth
    /// first, ordered by code; only regions with figures.
    pub regions: Vec<RegionFigures>,
}

/// A ratio of two sums, kept with both.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Indicator {
    pub numerator: i64,
    pub denominator: i64,
}

impl Indicator {
    /// `None` where the denominator is 0 (the views' NULL).
    pub fn ratio(&self) -> Option<f64> {
        (self.denominator != 0).then(|| self.numerator as f64 / self.denominator as f64)
    }
}

impl ProgramFigures {
    /// The program's name, else its id.
    pub fn title(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }

    /// See [`PERFORMED_OR_SUPERVISED`].
    pub fn performed_or_supervised_share(&self) -> Indicator {
        Indicator {
            numerator: self.roles.sum(&PERFORMED_OR_SUPERVISED),
            denominator: self.roles.sum(&Role::ALL),
        }
    }

    /// One metric's total over another's: the views' indicators.
    pub fn ratio(&self, numerator: Metric, denominator: Metric) -> Indicator {
        Indicator {
            numerator: self.totals.get(numerator),
            denominator: self.totals.get(denominator),
        }
    }
}

/// Day cells of `program_metrics` by how long after their day they last
/// changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatenessBucket {
    pub label: &'static str,
    pub cells: i64,
}

const LATENESS: [(&str, i64); 6] = [
    ("the same day", 0),
    ("1 to 7 days later", 7),
    ("8 to 30 days later", 30),
    ("31 to 90 days later", 90),
    ("91 to 365 days later", 365),
    ("more than a year later", i64::MAX),
];

/// The whole report, ready to render.
#[derive(Debug, Clone)]
pub struct Figures {
    pub backend: &'static str,
    pub filter: Filter,
    /// The period shown: the filter's bounds, else the first and last day
    /// with figures. `None`: no figures at all.
    pub period: Option<(NaiveDate, NaiveDate)>,
    pub programs: Vec<ProgramFigures>,
    /// Regions of the filter, with their names.
    pub regions: Vec<(String, String)>,
    pub quarantine: Vec<QuarantineCount>,
    /// Whether the login sees the quarantine (see `sink::report`).
    pub sees_quarantine: bool,
    pub lateness: Vec<LatenessBucket>,
    /// Day cells last changed more than a day before their day: events
    /// dated in the future when they arrived.
    pub early_cells: i64,
}

/// The region table as read from the database.
struct Tree<'a> {
    by_code: HashMap<&'a str, &'a RegionRow>,
}

impl<'a> Tree<'a> {
    fn new(rows: &'a [RegionRow]) -> Self {
        Tree {
            by_code: rows.iter().map(|r| (r.region_code.as_str(), r)).collect(),
        }
    }

    /// The region, then its ancestors up to the country (bounded: a table
    /// with a cycle cannot hang the report).
    fn lineage(&self, code: &'a str) -> Vec<&'a RegionRow> {
        let mut out = Vec::new();
        let mut next = self.by_code.get(code).copied();
        while let Some(r) = next {
            if out.len() > Level::ALL.len() {
                break;
            }
            out.push(r);
            next = r
                .parent_code
                .as_deref()
                .and_then(|p| self.by_code.get(p).copied());
        }
        out
    }
}

impl Figures {
    pub fn compute(rows: &ReportRows, filter: &Filter) -> Result<Figures, Error> {
        let tree = Tree::new(&rows.regions);
        let mut regions = Vec::new();
        for code in &filter.regions {
            let Some(r) = tree.by_code.get(code.as_str()) else {
                return Err(Error::UnknownRegion(code.clone()));
            };
            regions.push((r.region_code.clone(), r.name.clone()));
        }
        let in_filter = |code: &str| {
            filter.regions.is_empty()
                || tree
                    .lineage(code)
                    .iter()
                    .any(|r| filter.regions.contains(&r.region_code))
        };
        let activity: Vec<&ActivityRow> = rows
            .activity
            .iter()
            .filter(|r| in_filter(&r.region_code))
            .collect();
        let period = match (filter.from, filter.to, rows.days) {
            (Some(from), Some(to), _) => Some((from, to)),
            (from, to, Some((first, last))) => Some((from.unwrap_or(first), to.unwrap_or(last))),
            _ => None,
        };
        let months = period
            .map(|(a, b)| months_between(a, b))
            .unwrap_or_default();

        let mut ids: Vec<String> = filter.programs.clone();
        if ids.is_empty() {
            ids = activity.iter().map(|r| r.program_id.clone()).collect();
        }
        ids.sort();
        ids.dedup();
        let mut programs: Vec<ProgramFigures> = ids
            .into_iter()
            .map(|id| {
                let name = rows
                    .programs
                    .iter()
                    .find(|p| p.program_id == id)
                    .and_then(|p| p.name.clone());
                let rows: Vec<&ActivityRow> = activity
                    .iter()
                    .copied()
                    .filter(|r| r.program_id == id)
                    .collect();
                program(id, name, &rows, &months, &tree)
            })
            .collect();
        // As a reader looks for them: by name (the id where there is none).
        programs.sort_by(|a, b| (a.title(), &a.id).cmp(&(b.title(), &b.id)));
        let (lateness, early_cells) = lateness(&rows.lateness);
        Ok(Figures {
            backend: rows.backend,
            filter: filter.clone(),
            period,
            programs,
            regions,
            quarantine: rows.quarantine.clone(),
            sees_quarantine: rows.sees_quarantine,
            lateness,
            early_cells,
        })
    }
}

fn program(
    id: String,
    name: Option<String>,
    rows: &[&ActivityRow],
    months: &[NaiveDate],
    tree: &Tree<'_>,
) -> ProgramFigures {
    let mut totals = Totals::default();
    let mut roles = Roles::default();
    let mut by_month: BTreeMap<NaiveDate, Totals> =
        months.iter().map(|m| (*m, Totals::default())).collect();
    let mut by_region: HashMap<&str, Totals> = HashMap::new();
    for r in rows {
        // The sink only returns the catalogue's metrics; anything else
        // (a table edited by hand) is left out rather than guessed.
        let Some(metric) = Metric::parse(&r.metric) else {
            continue;
        };
        totals.add(metric, r.hundredths);
        if metric == Metric::Surgeries {
            roles.add(r.role.as_deref(), r.hundredths);
        }
        if let Some(month) = parse_month(&r.month) {
            by_month.entry(month).or_default().add(metric, r.hundredths);
        }
        for region in tree.lineage(&r.region_code) {
            by_region
                .entry(region.region_code.as_str())
                .or_default()
                .add(metric, r.hundredths);
        }
    }
    ProgramFigures {
        id,
        name,
        totals,
        roles,
        months: by_month.into_iter().collect(),
        regions: region_rows(&by_region, tree),
    }
}

/// The regions with figures as a tree walked depth first: each region
/// after its parent, siblings by code.
fn region_rows(by_region: &HashMap<&str, Totals>, tree: &Tree<'_>) -> Vec<RegionFigures> {
    let mut children: BTreeMap<Option<&str>, Vec<&str>> = BTreeMap::new();
    for code in by_region.keys() {
        let parent = tree.by_code[code]
            .parent_code
            .as_deref()
            .filter(|p| by_region.contains_key(p));
        children.entry(parent).or_default().push(code);
    }
    for v in children.values_mut() {
        v.sort_unstable();
    }
    let mut out = Vec::with_capacity(by_region.len());
    let mut stack: Vec<(&str, usize)> = children
        .get(&None)
        .map(|roots| roots.iter().rev().map(|c| (*c, 0)).collect())
        .unwrap_or_default();
    while let Some((code, depth)) = stack.pop() {
        let r = tree.by_code[code];
        out.push(RegionFigures {
            code: code.to_owned(),
            name: r.name.clone(),
            level: Level::parse(&r.level).unwrap_or(Level::County),
            depth,
            totals: by_region[code],
        });
        if let Some(kids) = children.get(&Some(code)) {
            stack.extend(kids.iter().rev().map(|c| (*c, depth + 1)));
        }
    }
    out
}

fn lateness(counts: &[LatenessCount]) -> (Vec<LatenessBucket>, i64) {
    let mut buckets: Vec<LatenessBucket> = LATENESS
        .iter()
        .map(|(label, _)| LatenessBucket { label, cells: 0 })
        .collect();
    let mut early = 0;
    for c in counts {
        // `days` compares the UTC date of the change with the local date
        // of the work: a change early in the morning east of Greenwich
        // reads as the day before. A day either way is the same day.
        let days = if c.days == -1 { 0 } else { c.days };
        if days < 0 {
            early += c.cells;
            continue;
        }
        let i = LATENESS
            .iter()
            .position(|(_, up_to)| days <= *up_to)
            .expect("the last bucket takes every day count");
        buckets[i].cells += c.cells;
    }
    (buckets, early)
}

/// The first day of every month from `from`'s to `to`'s.
pub fn months_between(from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    let mut out = Vec::new();
    let mut m = from.with_day(1).expect("day 1 exists");
    while m <= to {
        out.push(m);
        m = m
            .checked_add_months(chrono::Months::new(1))
            .expect("dates of the contract end in 2099");
    }
    out
}

fn parse_month(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(code: &str, level: &str, parent: Option<&str>) -> RegionRow {
        RegionRow {
            region_code: code.into(),
            name: format!("name of {code}"),
            level: level.into(),
            parent_code: parent.map(Into::into),
        }
    }

    fn row(
        program: &str,
        region: &str,
        month: &str,
        metric: &str,
        role: Option<&str>,
        v: i64,
    ) -> ActivityRow {
        ActivityRow {
            program_id: program.into(),
            region_code: region.into(),
            month: month.into(),
            metric: metric.into(),
            role: role.map(Into::into),
            hundredths: v,
            first_day: NaiveDate::from_ymd_opt(2023, 1, 5).unwrap(),
            last_day: NaiveDate::from_ymd_opt(2023, 3, 20).unwrap(),
        }
    }

    fn rows(activity: Vec<ActivityRow>) -> ReportRows {
        ReportRows {
            backend: "sqlite",
            activity,
            days: Some((
                NaiveDate::from_ymd_opt(2023, 1, 5).unwrap(),
                NaiveDate::from_ymd_opt(2023, 3, 20).unwrap(),
            )),
            regions: vec![
                region("CN", "country", None),
                region("620000", "province", Some("CN")),
                region("620900", "prefecture", Some("620000")),
                region("620921", "county", Some("620900")),
                region("620922", "county", Some("620900")),
                region("140000", "province", Some("CN")),
                region("MA", "country", None),
            ],
            programs: vec![sink::report::ProgramRow {
                program_id: "p".into(),
                name: Some("Program P".into()),
            }],
            quarantine: vec![],
            sees_quarantine: true,
            lateness: vec![
                LatenessCount { days: -2, cells: 2 },
                LatenessCount { days: -1, cells: 1 },
                LatenessCount { days: 0, cells: 3 },
                LatenessCount { days: 7, cells: 4 },
                LatenessCount { days: 8, cells: 5 },
                LatenessCount {
                    days: 4000,
                    cells: 6,
                },
            ],
            lags: vec![],
        }
    }

    fn sample() -> ReportRows {
        rows(vec![
            row(
                "p",
                "620921",
                "2023-01",
                "surgeries",
                Some("performed"),
                300,
            ),
            row("p", "620922", "2023-03", "surgeries", Some("assisted"), 100),
            row("p", "620922", "2023-03", "surgeries", None, 100),
            row("p", "140000", "2023-03", "outpatient_visits", None, 1_000),
            row("p", "MA", "2023-02", "expert_days", None, 500),
            row("q", "620921", "2023-02", "outpatient_visits", None, 700),
        ])
    }

    #[test]
    fn a_cell_counts_for_its_region_and_every_ancestor() {
        let f = Figures::compute(&sample(), &Filter::default()).unwrap();
        let p = &f.programs[0];
        assert_eq!(p.id, "p");
        assert_eq!(p.name.as_deref(), Some("Program P"));
        let order: Vec<(&str, usize)> = p
            .regions
            .iter()
            .map(|r| (r.code.as_str(), r.depth))
            .collect();
        assert_eq!(
            order,
            [
                ("CN", 0),
                ("140000", 1),
                ("620000", 1),
                ("620900", 2),
                ("620921", 3),
                ("620922", 3),
                ("MA", 0)
            ]
        );
        let cn = &p.regions[0].totals;
        assert_eq!(cn.get(Metric::Surgeries), 500);
        assert_eq!(cn.get(Metric::OutpatientVisits), 1_000);
        assert_eq!(p.regions[3].totals.get(Metric::Surgeries), 500);
        assert_eq!(p.regions[4].totals.get(Metric::Surgeries), 300);
    }

    #[test]
    fn every_month_of_the_period_is_there_and_the_roles_split_surgeries() {
        let f = Figures::compute(&sample(), &Filter::default()).unwrap();
        let p = &f.programs[0];
        let months: Vec<String> = p
            .months
            .iter()
            .map(|(m, _)| m.format("%Y-%m").to_string())
            .collect();
        assert_eq!(months, ["2023-01", "2023-02", "2023-03"]);
        assert_eq!(p.months[1].1.get(Metric::ExpertDays), 500);
        assert_eq!(
            p.roles,
            Roles {
                performed: 300,
                supervised: 0,
                assisted: 100,
                unspecified: 100
            }
        );
        assert_eq!(p.totals.get(Metric::Surgeries), 500);
        let share = p.performed_or_supervised_share();
        assert_eq!((share.numerator, share.denominator), (300, 400));
        assert_eq!(share.ratio(), Some(0.75));
        assert_eq!(
            p.ratio(Metric::Surgeries, Metric::MissionsCompleted)
                .ratio(),
            None
        );
        assert_eq!(
            p.ratio(Metric::OutpatientVisits, Metric::ExpertDays)
                .ratio(),
            Some(2.0)
        );
    }

    #[test]
    fn a_region_filter_keeps_the_cells_under_it_only() {
        let filter = Filter {
            regions: vec!["620900".into()],
            ..Filter::default()
        };
        let f = Figures::compute(&sample(), &filter).unwrap();
        assert_eq!(
            f.regions,
            [("620900".to_owned(), "name of 620900".to_owned())]
        );
        let ids: Vec<&str> = f.programs.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["p", "q"]);
        assert_eq!(f.programs[0].totals.get(Metric::Surgeries), 500);
        assert_eq!(f.programs[0].totals.get(Metric::OutpatientVisits), 0);
        assert_eq!(f.programs[1].totals.get(Metric::OutpatientVisits), 700);
        let unknown = Filter {
            regions: vec!["999999".into()],
            ..Filter::default()
        };
        assert!(
            matches!(Figures::compute(&sample(), &unknown), Err(Error::UnknownRegion(c)) if c == "999999")
        );
    }

    #[test]
    fn a_named_program_without_figures_still_gets_its_section() {
        let filter = Filter {
            programs: vec!["none".into()],
            ..Filter::default()
        };
        let f = Figures::compute(&sample(), &filter).unwrap();
        assert_eq!(f.programs.len(), 1);
        assert!(f.programs[0].totals.is_zero());
        assert!(f.programs[0].regions.is_empty());
    }

    #[test]
    fn the_period_is_the_filter_else_the_days_with_figures() {
        let d = |m, d| NaiveDate::from_ymd_opt(2023, m, d).unwrap();
        let f = Figures::compute(&sample(), &Filter::default()).unwrap();
        assert_eq!(f.period, Some((d(1, 5), d(3, 20))));
        let filter = Filter {
            from: Some(d(2, 1)),
            ..Filter::default()
        };
        let f = Figures::compute(&sample(), &filter).unwrap();
        assert_eq!(f.period, Some((d(2, 1), d(3, 20))));
        let mut empty = sample();
        empty.days = None;
        assert_eq!(
            Figures::compute(&empty, &Filter::default()).unwrap().period,
            None
        );
    }

    #[test]
    fn lateness_falls_in_buckets_and_early_cells_apart() {
        let f = Figures::compute(&sample(), &Filter::default()).unwrap();
        let cells: Vec<i64> = f.lateness.iter().map(|b| b.cells).collect();
        assert_eq!(cells, [4, 4, 5, 0, 0, 6]);
        assert_eq!(f.early_cells, 2);
    }

    #[test]
    fn months_between_crosses_years() {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(
            months_between(d(2023, 11, 30), d(2024, 1, 1)),
            [d(2023, 11, 1), d(2023, 12, 1), d(2024, 1, 1)]
        );
        assert!(months_between(d(2024, 2, 1), d(2024, 1, 31)).is_empty());
    }
}
