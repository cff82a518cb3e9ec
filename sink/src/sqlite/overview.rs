//! A readable overview of the analyst tables, for `outreach demo`: the
//! program and regional roll-ups per year, the indicators, and the
//! quarantine, as rows of text.

use std::ops::Range;

use sqlx::{Row, SqlitePool};

use crate::Result;
use crate::report::Section;

const SECTIONS: [(&str, &[&str], Range<usize>, &str); 4] = [
    (
        "Programs by year",
        &["year", "program", "missions", "expert-days", "outpatients", "surgeries", "staff trained", "techniques localized / introduced"],
        2..8,
        "SELECT substr(period_start, 1, 4), coalesce(program_name, program_id), missions_dispatched,
                expert_days, outpatient_visits, surgeries, staff_trained,
                printf('%g / %g', ifnull(techniques_localized, 0), ifnull(techniques_introduced, 0))
         FROM program_summary WHERE period_type = 'year' ORDER BY 1, 2",
    ),
    (
        "Regions by year: countries and provinces",
        &["year", "region", "level", "missions", "expert-days", "outpatients", "surgeries"],
        3..7,
        "SELECT substr(period_start, 1, 4), region_name, region_level, missions_dispatched,
                expert_days, outpatient_visits, surgeries
         FROM region_summary
         WHERE period_type = 'year' AND region_level IN ('country', 'province')
         ORDER BY 1, coalesce(parent_code, region_code), region_level = 'province', 2",
    ),
    (
        "Outcome indicators by year (ratios of sums, never averages of ratios)",
        &["year", "program", "outpatients per expert-day", "surgeries per completed mission", "techniques localized per introduced"],
        2..5,
        "SELECT substr(period_start, 1, 4), coalesce(program_name, program_id),
                outpatients_per_expert_day, surgeries_per_completed_mission,
                techniques_localized_per_introduced
         FROM program_summary WHERE period_type = 'year' ORDER BY 1, 2",
    ),
    (
        "Quarantined (kept whole, with the reason; also on the dead-letter topic)",
        &["error_code", "messages", "reason"],
        1..2,
        "SELECT error_code, count(*), min(error_detail) FROM quarantine
         GROUP BY error_code ORDER BY error_code",
    ),
];

pub(crate) async fn overview(pool: &SqlitePool) -> Result<Vec<Section>> {
    let mut sections = Vec::with_capacity(SECTIONS.len());
    for (title, header, numeric, sql) in SECTIONS {
        let rows = sqlx::query(sql).fetch_all(pool).await?;
        sections.push(Section {
            title,
            header,
            numeric,
            rows: rows
                .iter()
                .map(|r| (0..header.len()).map(|i| cell(r, i)).collect())
                .collect(),
        });
    }
    Ok(sections)
}

/// A value as an analyst would write it: whole numbers without decimals,
/// others to two places, none as "-".
fn cell(r: &sqlx::sqlite::SqliteRow, i: usize) -> String {
    if let Ok(Some(v)) = r.try_get::<Option<i64>, _>(i) {
        return v.to_string();
    }
    if let Ok(Some(v)) = r.try_get::<Option<f64>, _>(i) {
        return if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        };
    }
    match r.try_get::<Option<String>, _>(i) {
        Ok(Some(s)) => s,
        _ => "-".into(),
    }
}
