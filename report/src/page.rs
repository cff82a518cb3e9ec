//! The figures as the page shows them: numbers formatted, every figure
//! tagged with what it sums (`data-program`, `data-metric`, and where it
//! is narrower `data-region`, `data-month`, `data-role`) so that a test or
//! a reader can check it against SQL, and the template
//! (`templates/report.html`) filled in. askama escapes every value: names
//! from events reach the page only as text.

use askama::Template;
use chrono::{DateTime, NaiveDate, Utc};
use schemas::Metric;

use crate::Error;
use crate::figures::{
    Figures, Indicator, PERFORMED_OR_SUPERVISED, ProgramFigures, RegionFigures, Role,
};

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
/// The views' indicators that are one metric's total over another's:
/// name, how it is computed, numerator, denominator.
const INDICATORS: [(&str, &str, Metric, Metric); 3] = [
    (
        "Outpatients per expert-day",
        "outpatient visits ÷ expert-days",
        Metric::OutpatientVisits,
        Metric::ExpertDays,
    ),
    (
        "Surgeries per completed mission",
        "surgeries ÷ missions completed",
        Metric::Surgeries,
        Metric::MissionsCompleted,
    ),
    (
        "Techniques localized per technique introduced",
        "techniques localized ÷ techniques introduced",
        Metric::TechniquesLocalized,
        Metric::TechniquesIntroduced,
    ),
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

struct ProgramView<'a> {
    p: &'a ProgramFigures,
    title: String,
    charts: Vec<String>,
    /// The charts' figures as a table: month, then one per [`TREND`] metric.
    months: Vec<(String, Vec<Fig>)>,
    regions: Vec<RegionView<'a>>,
    regions_left_out: usize,
    indicators: Vec<IndicatorView>,
}

struct RegionView<'a> {
    r: &'a RegionFigures,
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
    generated: String,
    period: String,
    command: String,
    sql: String,
    programs: Vec<ProgramView<'a>>,
    by_region: Vec<&'static str>,
    trend: Vec<&'static str>,
    quarantined: i64,
}

pub fn render(f: &Figures, now: DateTime<Utc>) -> Result<String, Error> {
    let programs = f
        .programs
        .iter()
        .map(program_view)
        .collect::<Result<_, _>>()?;
    let page = Page {
        f,
        generated: now.format("%Y-%m-%d %H:%M UTC").to_string(),
        period: match f.period {
            Some((a, b)) => format!("{} to {}", long_date(a), long_date(b)),
            None => "no figures recorded".into(),
        },
        command: command(f),
        sql: sql(f),
        programs,
        by_region: BY_REGION.iter().map(|m| label(*m)).collect(),
        trend: TREND.iter().map(|m| label(*m)).collect(),
        quarantined: f.quarantine.iter().map(|q| q.messages).sum(),
    };
    Ok(page.render()?)
}

fn program_view(p: &ProgramFigures) -> Result<ProgramView<'_>, Error> {
    let charts = TREND
        .iter()
        .map(|m| {
            let series: Vec<(NaiveDate, i64)> = p
                .months
                .iter()
                .map(|(month, t)| (*month, t.get(*m)))
                .collect();
            crate::charts::monthly_bars(&capitalized(label(*m)), &series)
        })
        .collect::<Result<_, _>>()?;
    let months = p
        .months
        .iter()
        .map(|(month, t)| {
            let month = month.format("%Y-%m").to_string();
            let figs = TREND
                .iter()
                .map(|m| Fig {
                    text: amount(t.get(*m)),
                    month: Some(month.clone()),
                    ..p.total(*m)
                })
                .collect();
            (month, figs)
        })
        .collect();
    let regions = p
        .regions
        .iter()
        .take(MAX_REGION_ROWS)
        .map(|r| RegionView {
            r,
            figs: BY_REGION
                .iter()
                .map(|m| Fig {
                    text: amount(r.totals.get(*m)),
                    region: Some(r.code.clone()),
                    ..p.total(*m)
                })
                .collect(),
        })
        .collect();
    let share = IndicatorView {
        name: "Share of surgeries performed or supervised by the visiting team",
        how: "surgeries performed + supervised ÷ surgeries performed + supervised + assisted",
        numerator: p.roles_fig(&PERFORMED_OR_SUPERVISED),
        denominator: p.roles_fig(&Role::ALL),
        ratio: ratio(p.performed_or_supervised_share()),
    };
    let indicators = INDICATORS
        .iter()
        .map(|&(name, how, numerator, denominator)| IndicatorView {
            name,
            how,
            numerator: p.total(numerator),
            denominator: p.total(denominator),
            ratio: ratio(p.ratio(numerator, denominator)),
        })
        .chain([share])
        .collect();
    Ok(ProgramView {
        p,
        title: p.title().to_owned(),
        charts,
        months,
        regions_left_out: p.regions.len().saturating_sub(MAX_REGION_ROWS),
        regions,
        indicators,
    })
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

    /// Surgeries with `role`, for the sentences.
    fn role_fig(&self, role: Role) -> Fig {
        self.roles_fig(&[role])
    }

    /// Every metric of the catalogue, for the full table.
    fn table(&self) -> Vec<(&'static str, &'static str, Fig)> {
        Metric::ALL
            .iter()
            .map(|m| (label(*m), m.unit(), self.total(*m)))
            .collect()
    }

    fn has_unspecified_roles(&self) -> bool {
        self.roles.unspecified != 0
    }

    fn unspecified_roles(&self) -> String {
        amount(self.roles.unspecified)
    }
}

impl RegionFigures {
    /// Indentation in the regions table.
    fn indent(&self) -> String {
        format!("{:.1}em", self.depth as f64 * 1.2)
    }
}

/// How a metric reads in a sentence or a column.
fn label(metric: Metric) -> &'static str {
    match metric {
        Metric::OutpatientVisits => "outpatient visits",
        Metric::Surgeries => "surgeries",
        Metric::ComplexCaseConsultations => "complex-case consultations",
        Metric::TeachingRounds => "teaching rounds",
        Metric::Lectures => "lectures",
        Metric::StaffTrained => "local staff trained",
        Metric::TechniquesIntroduced => "techniques introduced",
        Metric::TechniquesLocalized => "techniques localized",
        Metric::PapersPublished => "papers published",
        Metric::ResearchProjectsFunded => "research projects funded",
        Metric::DepartmentsEstablished => "departments established",
        Metric::TelemedicineSessions => "telemedicine sessions",
        Metric::MedicinesDonatedValue => "medicines donated",
        Metric::MissionsDispatched => "missions dispatched",
        Metric::ExpertsDispatched => "experts dispatched",
        Metric::MissionsCompleted => "missions completed",
        Metric::ExpertDays => "expert-days",
    }
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

/// A ratio to two decimals, `–` where the denominator is 0.
fn ratio(i: Indicator) -> String {
    match i.ratio() {
        Some(r) => format!("{r:.2}"),
        None => "–".into(),
    }
}

fn long_date(d: NaiveDate) -> String {
    d.format("%-d %B %Y").to_string()
}

/// The command that makes this report again.
fn command(f: &Figures) -> String {
    let mut c = String::from("outreach report");
    for p in &f.filter.programs {
        c.push_str(&format!(" --program {}", shell_word(p)));
    }
    for r in &f.filter.regions {
        c.push_str(&format!(" --region {}", shell_word(r)));
    }
    if let Some(d) = f.filter.from {
        c.push_str(&format!(" --from {d}"));
    }
    if let Some(d) = f.filter.to {
        c.push_str(&format!(" --to {d}"));
    }
    c
}

/// A value as one shell word: as it is where that is safe, else quoted.
fn shell_word(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "._:-/".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// SQL that gives the program totals again, over the same rows.
fn sql(f: &Figures) -> String {
    let schema = if f.backend == "postgres" {
        "outreach."
    } else {
        ""
    };
    let mut conditions = Vec::new();
    if let Some((a, b)) = f.period {
        conditions.push(format!("day BETWEEN '{a}' AND '{b}'"));
    }
    if !f.filter.programs.is_empty() {
        conditions.push(format!("program_id IN ({})", quoted(&f.filter.programs)));
    }
    if !f.filter.regions.is_empty() {
        conditions.push(format!(
            "region_code IN (\n    WITH RECURSIVE under(code) AS (\n      SELECT region_code FROM {schema}regions WHERE region_code IN ({})\n      UNION SELECT r.region_code FROM {schema}regions r JOIN under u ON r.parent_code = u.code)\n    SELECT code FROM under)",
            quoted(&f.filter.regions)
        ));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("\nWHERE {}", conditions.join("\n  AND "))
    };
    format!(
        "SELECT program_id, metric, round(sum(value), 2) AS total\nFROM {schema}daily_metrics{filter}\nGROUP BY program_id, metric\nORDER BY program_id, metric;"
    )
}

/// SQL string literals (program ids and region codes are checked before,
/// but a quote is doubled all the same).
fn quoted(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("'{}'", v.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_a_person_writes_them() {
        assert_eq!(amount(0), "0");
        assert_eq!(amount(360_000), "3,600");
        assert_eq!(amount(123_456_750), "1,234,567.50");
        assert_eq!(amount(5), "0.05");
        assert_eq!(amount(-5), "-0.05");
        assert_eq!(amount(-123_400), "-1,234");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1_000), "1,000");
    }

    #[test]
    fn the_sql_names_the_backend_tables_and_the_filter() {
        let d = |m| NaiveDate::from_ymd_opt(2023, m, 1).unwrap();
        let f = Figures {
            backend: "postgres",
            filter: crate::Filter {
                programs: vec!["a'b".into()],
                regions: vec!["620000".into()],
                from: Some(d(1)),
                to: Some(d(2)),
            },
            period: Some((d(1), d(2))),
            programs: vec![],
            regions: vec![],
            quarantine: vec![],
            sees_quarantine: true,
            lateness: vec![],
            early_cells: 0,
        };
        let sql = sql(&f);
        assert!(sql.contains("FROM outreach.daily_metrics"), "{sql}");
        assert!(
            sql.contains("day BETWEEN '2023-01-01' AND '2023-02-01'"),
            "{sql}"
        );
        assert!(sql.contains("program_id IN ('a''b')"), "{sql}");
        assert!(sql.contains("\n  AND region_code IN (\n"), "{sql}");
        assert!(sql.contains("WHERE region_code IN ('620000')"), "{sql}");
        assert!(sql.contains("round(sum(value), 2)"), "{sql}");
        assert_eq!(
            command(&f),
            r"outreach report --program 'a'\''b' --region 620000 --from 2023-01-01 --to 2023-02-01"
        );
    }
}
