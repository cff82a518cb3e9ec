use chrono::NaiveDate;
use sink::report::{ActivityRow, LagRow, ProgramRow, QuarantineCount, RegionRow, ReportRows};

use super::*;
use crate::Filter;

fn day(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, m, d).unwrap()
}

fn activity(metric: &str, role: Option<&str>, month: u32, v: i64) -> ActivityRow {
    ActivityRow {
        program_id: "p".into(),
        region_code: "620921".into(),
        month: day(month, 1),
        metric: schemas::Metric::parse(metric).unwrap(),
        role: role.map(Into::into),
        hundredths: v,
        first_day: day(month, 3),
        last_day: day(month, 20),
    }
}

fn lag(institution: &str, month: u32, days: Option<i64>, events: i64) -> LagRow {
    LagRow {
        institution_id: institution.into(),
        program_id: "p".into(),
        month: day(month, 1),
        days_to_arrival: days,
        events,
        corrections: 1,
        withdrawals: 0,
    }
}

fn figures() -> Figures {
    let region = |code: &str, level: &str, parent: Option<&str>| RegionRow {
        region_code: code.into(),
        name: format!("地区 {code}"),
        level: level.into(),
        parent_code: parent.map(Into::into),
    };
    let rows = ReportRows {
        backend: "sqlite",
        activity: vec![
            activity("surgeries", Some("performed"), 1, 2_700),
            activity("surgeries", None, 2, 100),
            activity("outpatient_visits", None, 2, 360_000),
            activity("medicines_donated_value", None, 2, 123_456),
        ],
        days: Some((day(1, 3), day(2, 20))),
        regions: vec![
            region("CN", "country", None),
            region("620000", "province", Some("CN")),
            region("620900", "prefecture", Some("620000")),
            region("620921", "county", Some("620900")),
        ],
        programs: vec![ProgramRow {
            program_id: "p".into(),
            name: Some("健康中国行".into()),
        }],
        quarantine: vec![QuarantineCount {
            error_code: "unknown_region".into(),
            messages: 2,
            example: "region_code 999999 is not in the regions table".into(),
        }],
        sees_quarantine: true,
        lags: vec![
            lag("a", 1, Some(0), 3),
            lag("a", 2, Some(12), 1),
            lag("b", 2, Some(40), 2),
            lag("b", 2, None, 1),
        ],
    };
    Figures::compute(&rows, &Filter::default()).unwrap()
}

fn page(lang: Lang) -> String {
    let now = day(3, 1).and_hms_opt(9, 0, 0).unwrap().and_utc();
    render(&figures(), lang, now).unwrap()
}

/// Every tagged figure of `html` (`span.fig`, `span.tl`), whole, sorted:
/// what it is and the text printed.
fn tagged(html: &str) -> Vec<&str> {
    let mut out: Vec<&str> = html
        .match_indices("<span class=\"")
        .filter(|(i, _)| {
            html[*i..].starts_with("<span class=\"fig\"")
                || html[*i..].starts_with("<span class=\"tl\"")
        })
        .map(|(i, _)| &html[i..i + html[i..].find("</span>").unwrap()])
        .collect();
    out.sort_unstable();
    out
}

#[test]
fn both_languages_print_the_same_figures() {
    let (en, zh) = (page(Lang::En), page(Lang::ZhCn));
    assert!(en.contains("<html lang=\"en\">"));
    assert!(zh.contains("<html lang=\"zh-CN\">"));
    assert_eq!(tagged(&en), tagged(&zh));
    assert!(tagged(&en).len() > 100, "{}", tagged(&en).len());
    // The lead, as the hospitals write it.
    assert!(
        zh.contains(
            "参与手术 <span class=\"fig\" data-program=\"p\" data-metric=\"surgeries\">28</span> 台"
        ),
        "{zh}"
    );
    assert!(zh.contains("主刀 <span class=\"fig\" data-program=\"p\" data-metric=\"surgeries\" data-role=\"performed\">27</span> 台"));
    assert!(zh.contains("，未注明角色 1 台"));
    assert!(zh.contains("2023年1月3日至2023年2月20日，该项目"));
    assert!(en.contains("From 3 January 2023 to 20 February 2023, the program"));
    assert!(zh.contains("<td>1,234.56</td>") || zh.contains(">1,234.56</span></td><td>元</td>"));
}

#[test]
fn every_slot_is_filled_and_every_word_is_the_language_s() {
    for lang in Lang::ALL {
        let html = page(lang);
        let body = &html[html.find("<body>").unwrap()..];
        assert!(
            !body.contains('{') && !body.contains('}'),
            "{lang:?}: an unfilled slot"
        );
    }
    let zh = page(Lang::ZhCn);
    for english in [
        "Outcome indicators",
        "Reporting timeliness",
        "Data quality",
        "surgeries</th>",
    ] {
        assert!(!zh.contains(english), "{english:?} in the Chinese page");
    }
    for chinese in [
        "成效指标",
        "数据报送及时性",
        "数据质量",
        "县级",
        "手术（台）",
    ] {
        assert!(zh.contains(chinese), "{chinese:?} not in the Chinese page");
    }
}

#[test]
fn timeliness_is_printed_per_program_institution_and_month() {
    let en = page(Lang::En);
    let tl = |attrs: &str, text: &str| {
        format!("<span class=\"tl\" data-program=\"p\" {attrs}>{text}</span>")
    };
    // Known arrivals: 0, 0, 0, 12, 40, 40; one unknown.
    for (attrs, text) in [
        ("data-timeliness=\"events\"", "7"),
        ("data-timeliness=\"arrival_unknown\"", "1"),
        ("data-timeliness=\"median_days\"", "0"),
        ("data-timeliness=\"p90_days\"", "40"),
        ("data-timeliness=\"within_7_days\"", "50.00%"),
        ("data-timeliness=\"within_30_days\"", "66.67%"),
        (
            "data-timeliness=\"median_days\" data-institution=\"b\"",
            "40",
        ),
        // February: 12, 40, 40.
        (
            "data-timeliness=\"median_days\" data-month=\"2023-02\"",
            "40",
        ),
        (
            "data-timeliness=\"median_days\" data-month=\"2023-01\"",
            "0",
        ),
        (
            "data-timeliness=\"within_7_days\" data-institution=\"b\" data-month=\"2023-02\"",
            "0.00%",
        ),
    ] {
        let want = tl(attrs, text);
        assert!(en.contains(&want), "{want} not in the page");
    }
    assert!(
        en.contains("outreach publish"),
        "the page says how backfilled files arrive"
    );
    assert!(en.contains("FROM reporting_timeliness"));
}
