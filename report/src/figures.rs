//! The report's figures, computed from the rows the sink read: totals per
//! program, per month and per region (every ancestor of a cell's region
//! gets its figures), the surgery roles, the outcome indicators as ratios
//! of sums, reporting timeliness ([`timeliness`]), and the data-quality
//! counts. Pure: no I/O, so every rule here is unit-tested.

pub mod timeliness;

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate};
use schemas::{Level, Metric};
use sink::report::{ActivityRow, QuarantineCount, RegionRow, ReportRows};

use self::timeliness::ProgramTimeliness;

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
    /// How soon its activity records arrived: every institution the login
    /// sees, every region (`reporting_lags` has none), whole months.
    pub timeliness: ProgramTimeliness,
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

    /// Whether a region is, or lies within, one of the filter's (all do
    /// when it names none).
    fn in_filter(&self, code: &'a str, filter: &Filter) -> bool {
        filter.regions.is_empty()
            || self
                .lineage(code)
                .iter()
                .any(|r| filter.regions.contains(&r.region_code))
    }
}

impl Figures {
    pub fn compute(rows: &ReportRows, filter: &Filter) -> Result<Figures, Error> {
        let tree = Tree::new(&rows.regions);
        let regions = named_regions(&tree, filter)?;
        let activity: Vec<&ActivityRow> = rows
            .activity
            .iter()
            .filter(|r| tree.in_filter(&r.region_code, filter))
            .collect();
        let period = match (filter.from, filter.to, rows.days) {
            (Some(from), Some(to), _) => Some((from, to)),
            (from, to, Some((first, last))) => Some((from.unwrap_or(first), to.unwrap_or(last))),
            _ => None,
        };
        let months = period
            .map(|(a, b)| months_between(a, b))
            .unwrap_or_default();
        let programs = programs(rows, &activity, filter, &months, &tree);
        Ok(Figures {
            backend: rows.backend,
            filter: filter.clone(),
            period,
            programs,
            regions,
            quarantine: rows.quarantine.clone(),
            sees_quarantine: rows.sees_quarantine,
        })
    }
}

/// The filter's regions as (code, name); a code the table does not know
/// is an error rather than an empty report.
fn named_regions(tree: &Tree<'_>, filter: &Filter) -> Result<Vec<(String, String)>, Error> {
    let mut regions = Vec::new();
    for code in &filter.regions {
        let Some(r) = tree.by_code.get(code.as_str()) else {
            return Err(Error::UnknownRegion(code.clone()));
        };
        regions.push((r.region_code.clone(), r.name.clone()));
    }
    Ok(regions)
}

/// Each program's figures: the filter's programs, else every one with
/// activity in its regions.
fn programs(
    rows: &ReportRows,
    activity: &[&ActivityRow],
    filter: &Filter,
    months: &[NaiveDate],
    tree: &Tree<'_>,
) -> Vec<ProgramFigures> {
    let mut ids: Vec<String> = filter.programs.clone();
    if ids.is_empty() {
        ids = activity.iter().map(|r| r.program_id.clone()).collect();
    }
    ids.sort();
    ids.dedup();
    let lags = &rows.lags;
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
            let timeliness = ProgramTimeliness::of(lags, &id);
            ProgramFigures {
                timeliness,
                ..program(id, name, &rows, months, tree)
            }
        })
        .collect();
    // As a reader looks for them: by name (the id where there is none).
    programs.sort_by(|a, b| (a.title(), &a.id).cmp(&(b.title(), &b.id)));
    programs
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
        let metric = r.metric;
        totals.add(metric, r.hundredths);
        if metric == Metric::Surgeries {
            roles.add(r.role.as_deref(), r.hundredths);
        }
        by_month
            .entry(r.month)
            .or_default()
            .add(metric, r.hundredths);
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
        timeliness: ProgramTimeliness::default(),
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

#[cfg(test)]
mod tests;
