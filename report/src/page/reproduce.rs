//! The page's "how to reproduce" section: the command that writes the same
//! page, and SQL that gives its figures again over the same rows.

use crate::figures::Figures;
use crate::lang::Lang;

/// The command that makes this report again.
pub fn command(f: &Figures, lang: Lang) -> String {
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
    if lang != Lang::default() {
        c.push_str(&format!(" --lang {}", lang.tag()));
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

fn schema(f: &Figures) -> &'static str {
    if f.backend == "postgres" {
        "outreach."
    } else {
        ""
    }
}

/// SQL that gives the program totals again, over the same rows.
pub fn sql(f: &Figures) -> String {
    let schema = schema(f);
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
    format!(
        "SELECT program_id, metric, round(sum(value), 2) AS total\nFROM {schema}daily_metrics{}\nGROUP BY program_id, metric\nORDER BY program_id, metric;",
        conditions_text(&conditions)
    )
}

/// SQL that gives the timeliness per institution, program and month: the
/// view the page's finest rows equal. Months are whole (the view's grain);
/// there is no region.
pub fn timeliness_sql(f: &Figures) -> String {
    let mut conditions = Vec::new();
    let ids: Vec<String> = f.programs.iter().map(|p| p.id.clone()).collect();
    if !ids.is_empty() {
        conditions.push(format!("program_id IN ({})", quoted(&ids)));
    }
    if let Some(d) = f.filter.from {
        conditions.push(format!("month >= '{}'", d.format("%Y-%m-01")));
    }
    if let Some(d) = f.filter.to {
        conditions.push(format!("month <= '{d}'"));
    }
    format!(
        "SELECT *\nFROM {}reporting_timeliness{}\nORDER BY program_id, institution_id, month;",
        schema(f),
        conditions_text(&conditions)
    )
}

fn conditions_text(conditions: &[String]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!("\nWHERE {}", conditions.join("\n  AND "))
    }
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
    use chrono::NaiveDate;

    use super::*;

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
            command(&f, Lang::En),
            r"outreach report --program 'a'\''b' --region 620000 --from 2023-01-01 --to 2023-02-01"
        );
        assert!(command(&f, Lang::ZhCn).ends_with(" --lang zh-CN"));
        let tl = timeliness_sql(&f);
        assert!(tl.contains("FROM outreach.reporting_timeliness"), "{tl}");
        assert!(tl.contains("month >= '2023-01-01'"), "{tl}");
        assert!(tl.contains("month <= '2023-02-01'"), "{tl}");
        assert!(!tl.contains("region"), "the view has no region: {tl}");
    }
}
