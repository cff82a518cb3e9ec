//! The figures as the page shows them: numbers formatted, every figure
//! tagged with what it sums (`data-program`, `data-metric`, and where it
//! is narrower `data-region`, `data-month`, `data-role`; timeliness figures
//! `data-timeliness` and `data-institution`, see [`timeliness`]) so that a
//! test or a reader can check it against SQL, and the template
//! (`templates/report.html`) filled in, in the language asked ([`Lang`]:
//! every word comes from its table). askama escapes every value: names
//! from events reach the page only as text.

mod reproduce;
mod timeliness;

use askama::Template;
use chrono::{DateTime, NaiveDate, Utc};
use schemas::Metric;

use crate::Error;
use crate::figures::{
    Figures, Indicator, PERFORMED_OR_SUPERVISED, ProgramFigures, RegionFigures, Role,
};
use crate::lang::{Lang, NONE, Piece, Text, amount, fill, group_digits, pieces};

use self::timeliness::TimelinessView;

/// At most this many region rows per program; the rest are counted.
const MAX_REGION_ROWS: usize = 300;

/// Metrics charted month by month, and shown per region.
const TREND: [Metric; 6] = [
    Metric::MissionsDispatched,
    Metric::ExpertDays,
    Metric::OutpatientVisits,
    Metric::Surgeries,
    Metric::ComplexCaseConsultations,
    Metric::StaffTrained,
];
/// The six figures in boxes under the lead (labels: `Text::headline`).
const HEADLINE: [Metric; 6] = [
    Metric::MissionsDispatched,
    Metric::OutpatientVisits,
    Metric::Surgeries,
    Metric::ComplexCaseConsultations,
    Metric::StaffTrained,
    Metric::TechniquesLocalized,
];
/// The views' indicators that are one metric's total over another's
/// (names: `Text::indicator`): numerator, denominator.
const INDICATORS: [(Metric, Metric); 3] = [
    (Metric::OutpatientVisits, Metric::ExpertDays),
    (Metric::Surgeries, Metric::MissionsCompleted),
    (Metric::TechniquesLocalized, Metric::TechniquesIntroduced),
];
const BY_REGION: [Metric; 6] = [
    Metric::MissionsDispatched,
    Metric::ExpertDays,
    Metric::OutpatientVisits,
    Metric::Surgeries,
    Metric::StaffTrained,
    Metric::TechniquesLocalized,
];

/// One printed figure and what it is the sum of.
pub struct Fig {
    pub text: String,
    pub program: String,
    pub metric: &'static str,
    pub region: Option<String>,
    pub month: Option<String>,
    /// Space-separated roles of `surgeries` summed.
    pub role: Option<String>,
}

/// A part of a sentence: text, code, or a figure.
pub struct Seg {
    text: String,
    code: bool,
    fig: Option<Fig>,
}

impl Seg {
    fn text(text: impl Into<String>) -> Seg {
        Seg {
            text: text.into(),
            code: false,
            fig: None,
        }
    }
}

/// `pattern` with its slots filled by `slot` (a slot it does not know
/// stays as written, `{name}`, where a test sees it).
fn sentence(pattern: &str, slot: impl Fn(&str) -> Option<Vec<Seg>>) -> Vec<Seg> {
    pieces(pattern)
        .into_iter()
        .flat_map(|p| match p {
            Piece::Text(t) => vec![Seg::text(t)],
            Piece::Code(t) => vec![Seg {
                code: true,
                ..Seg::text(t)
            }],
            Piece::Slot(s) => slot(s).unwrap_or_else(|| vec![Seg::text(format!("{{{s}}}"))]),
        })
        .collect()
}

/// A sentence whose only markup is code.
fn prose(pattern: &str) -> Vec<Seg> {
    sentence(pattern, |_| None)
}

struct ProgramView<'a> {
    p: &'a ProgramFigures,
    title: String,
    lead: Vec<Seg>,
    headline: Vec<(Fig, &'static str)>,
    /// Every metric of the catalogue: name, total, unit.
    table: Vec<(&'static str, Fig, &'static str)>,
    charts: Vec<String>,
    /// The charts' figures as a table: month, then one per [`TREND`] metric.
    months: Vec<(String, Vec<Fig>)>,
    regions: Vec<RegionView<'a>>,
    more_regions: Option<Vec<Seg>>,
    indicators: Vec<IndicatorView>,
}

struct RegionView<'a> {
    r: &'a RegionFigures,
    level: &'static str,
    figs: Vec<Fig>,
}

struct IndicatorView {
    name: &'static str,
    how: &'static str,
    numerator: Fig,
    denominator: Fig,
    ratio: String,
}

#[derive(Template)]
#[template(path = "report.html")]
struct Page<'a> {
    f: &'a Figures,
    t: &'static Text,
    doc_title: String,
    generated: String,
    period: String,
    program_count: String,
    command: String,
    sql: String,
    tl_sql: String,
    programs: Vec<ProgramView<'a>>,
    timeliness: Vec<TimelinessView>,
    by_region: Vec<&'static str>,
    trend: Vec<&'static str>,
    quarantine_count: Vec<Seg>,
    quarantine_hidden: Vec<Seg>,
    tl_intro: Vec<Seg>,
    tl_arrival: Vec<Seg>,
    reproduce_text: Vec<Seg>,
    reproduce_tl: Vec<Seg>,
}

pub fn render(f: &Figures, lang: Lang, now: DateTime<Utc>) -> Result<String, Error> {
    let t = lang.text();
    let period = match f.period {
        Some((a, b)) => fill(
            t.period_range,
            &[("from", &lang.date(a)), ("to", &lang.date(b))],
        ),
        None => t.period_none.into(),
    };
    let programs = f
        .programs
        .iter()
        .map(|p| program_view(p, lang, &period))
        .collect::<Result<_, _>>()?;
    let n = f.programs.len().to_string();
    let quarantined = group_digits(f.quarantine.iter().map(|q| q.messages).sum());
    let regions = if f.regions.is_empty() {
        ""
    } else {
        t.reproduce_regions
    };
    let page = Page {
        f,
        t,
        doc_title: fill(t.doc_title, &[("period", &period)]),
        generated: fill(
            t.meta_generated,
            &[("when", &lang.generated(now)), ("backend", f.backend)],
        ),
        program_count: match f.programs.len() {
            1 => t.one_program.into(),
            _ => fill(t.programs, &[("n", &n)]),
        },
        period,
        command: reproduce::command(f, lang),
        sql: reproduce::sql(f),
        tl_sql: reproduce::timeliness_sql(f),
        programs,
        timeliness: f
            .programs
            .iter()
            .map(|p| TimelinessView::new(p, lang))
            .collect(),
        by_region: BY_REGION.iter().map(|m| lang.metric(*m)).collect(),
        trend: TREND.iter().map(|m| lang.metric(*m)).collect(),
        quarantine_count: sentence(t.quarantine_count, |s| {
            (s == "n").then(|| vec![Seg::text(quarantined.clone())])
        }),
        quarantine_hidden: prose(t.quarantine_hidden),
        tl_intro: prose(t.tl_intro),
        tl_arrival: prose(t.tl_arrival),
        reproduce_text: sentence(t.reproduce_text, |s| {
            (s == "regions").then(|| vec![Seg::text(regions)])
        }),
        reproduce_tl: prose(t.reproduce_tl),
    };
    Ok(page.render()?)
}

fn program_view<'a>(
    p: &'a ProgramFigures,
    lang: Lang,
    period: &str,
) -> Result<ProgramView<'a>, Error> {
    let t = lang.text();
    let charts = TREND
        .iter()
        .map(|m| {
            let series: Vec<(String, i64)> = p
                .months
                .iter()
                .map(|(month, totals)| (lang.month(*month), totals.get(*m)))
                .collect();
            crate::charts::monthly_bars(&lang.chart_title(*m), &series)
        })
        .collect::<Result<_, _>>()?;
    let months = p
        .months
        .iter()
        .map(|(month, totals)| {
            let key = month_key(*month);
            let figs = TREND
                .iter()
                .map(|m| Fig {
                    text: amount(totals.get(*m)),
                    month: Some(key.clone()),
                    ..p.total(*m)
                })
                .collect();
            (lang.month(*month), figs)
        })
        .collect();
    let left_out = p.regions.len().saturating_sub(MAX_REGION_ROWS).to_string();
    Ok(ProgramView {
        p,
        title: p.title().to_owned(),
        lead: lead(p, lang, period),
        headline: HEADLINE
            .iter()
            .zip(t.headline)
            .map(|(m, l)| (p.total(*m), l))
            .collect(),
        table: Metric::ALL
            .iter()
            .map(|m| (lang.metric(*m), p.total(*m), lang.unit(*m)))
            .collect(),
        charts,
        months,
        regions: region_views(p, lang),
        more_regions: (p.regions.len() > MAX_REGION_ROWS).then(|| {
            sentence(t.more_regions, |s| {
                (s == "n").then(|| vec![Seg::text(left_out.clone())])
            })
        }),
        indicators: indicator_views(p, lang),
    })
}

/// The headline sentences: every metric slot a figure of the program.
fn lead(p: &ProgramFigures, lang: Lang, period: &str) -> Vec<Seg> {
    let t = lang.text();
    let fig = |x: Fig| {
        Some(vec![Seg {
            fig: Some(x),
            ..Seg::text("")
        }])
    };
    sentence(t.lead, |slot| match slot {
        "period" => Some(vec![Seg::text(period)]),
        "performed" => fig(p.roles_fig(&[Role::Performed])),
        "supervised" => fig(p.roles_fig(&[Role::Supervised])),
        "assisted" => fig(p.roles_fig(&[Role::Assisted])),
        "unspecified" if p.roles.unspecified == 0 => Some(vec![]),
        "unspecified" => Some(vec![Seg::text(fill(
            t.unspecified_roles,
            &[("n", &amount(p.roles.unspecified))],
        ))]),
        metric => fig(p.total(Metric::parse(metric)?)),
    })
}

fn region_views(p: &ProgramFigures, lang: Lang) -> Vec<RegionView<'_>> {
    p.regions
        .iter()
        .take(MAX_REGION_ROWS)
        .map(|r| RegionView {
            r,
            level: lang.level(r.level),
            figs: BY_REGION
                .iter()
                .map(|m| Fig {
                    text: amount(r.totals.get(*m)),
                    region: Some(r.code.clone()),
                    ..p.total(*m)
                })
                .collect(),
        })
        .collect()
}

fn indicator_views(p: &ProgramFigures, lang: Lang) -> Vec<IndicatorView> {
    let names = lang.text().indicator;
    let share = IndicatorView {
        name: names[3].0,
        how: names[3].1,
        numerator: p.roles_fig(&PERFORMED_OR_SUPERVISED),
        denominator: p.roles_fig(&Role::ALL),
        ratio: ratio(p.performed_or_supervised_share()),
    };
    INDICATORS
        .iter()
        .zip(names)
        .map(|(&(numerator, denominator), (name, how))| IndicatorView {
            name,
            how,
            numerator: p.total(numerator),
            denominator: p.total(denominator),
            ratio: ratio(p.ratio(numerator, denominator)),
        })
        .chain([share])
        .collect()
}

impl ProgramFigures {
    /// The program's total of `metric` over the period.
    fn total(&self, metric: Metric) -> Fig {
        Fig {
            text: amount(self.totals.get(metric)),
            program: self.id.clone(),
            metric: metric.as_str(),
            region: None,
            month: None,
            role: None,
        }
    }

    /// Surgeries with one of `roles`.
    fn roles_fig(&self, roles: &[Role]) -> Fig {
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Fig {
            text: amount(self.roles.sum(roles)),
            role: Some(names.join(" ")),
            ..self.total(Metric::Surgeries)
        }
    }
}

impl RegionFigures {
    /// Indentation in the regions table.
    fn indent(&self) -> String {
        format!("{:.1}em", self.depth as f64 * 1.2)
    }
}

/// A month as `data-month` names it, whatever the language: `2023-01`.
fn month_key(month: NaiveDate) -> String {
    month.format("%Y-%m").to_string()
}

/// A ratio to two decimals, `–` where the denominator is 0.
fn ratio(i: Indicator) -> String {
    match i.ratio() {
        Some(r) => format!("{r:.2}"),
        None => NONE.into(),
    }
}

#[cfg(test)]
mod tests;
