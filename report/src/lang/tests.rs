use std::collections::BTreeSet;

use super::*;

/// Every pattern of a table, by field name.
fn patterns(t: &Text) -> Vec<(&'static str, &'static str)> {
    vec![
        ("doc_title", t.doc_title),
        ("meta_generated", t.meta_generated),
        ("programs", t.programs),
        ("period_range", t.period_range),
        ("lead", t.lead),
        ("unspecified_roles", t.unspecified_roles),
        ("more_regions", t.more_regions),
        ("tl_intro", t.tl_intro),
        ("tl_arrival", t.tl_arrival),
        ("quarantine_hidden", t.quarantine_hidden),
        ("quarantine_count", t.quarantine_count),
        ("reproduce_text", t.reproduce_text),
        ("reproduce_tl", t.reproduce_tl),
    ]
}

fn slots_and_code(pattern: &str) -> (BTreeSet<&str>, BTreeSet<&str>) {
    let mut slots = BTreeSet::new();
    let mut code = BTreeSet::new();
    for p in pieces(pattern) {
        match p {
            Piece::Slot(s) => {
                slots.insert(s);
            }
            Piece::Code(c) => {
                code.insert(c);
            }
            Piece::Text(_) => {}
        }
    }
    (slots, code)
}

#[test]
fn a_pattern_splits_into_text_code_and_slots() {
    assert_eq!(
        pieces("派出专家 {experts_dispatched} 名，见 `daily_metrics`。"),
        [
            Piece::Text("派出专家 "),
            Piece::Slot("experts_dispatched"),
            Piece::Text(" 名，见 "),
            Piece::Code("daily_metrics"),
            Piece::Text("。"),
        ]
    );
    assert_eq!(pieces("{a}{b}"), [Piece::Slot("a"), Piece::Slot("b")]);
    assert_eq!(fill("{n} programs", &[("n", "3")]), "3 programs");
    assert_eq!(fill("{x} stays", &[]), "{x} stays");
}

#[test]
fn both_languages_fill_the_same_slots_and_name_the_same_code() {
    let en = patterns(Lang::En.text());
    let zh = patterns(Lang::ZhCn.text());
    for ((name, e), (_, z)) in en.iter().zip(&zh) {
        assert_eq!(
            slots_and_code(e),
            slots_and_code(z),
            "{name}: a figure or a name in one page and not the other"
        );
    }
    // The lead names every figure a reader expects in it: 14 metrics, the
    // three roles, the period and the surgeries without a role.
    let (slots, _) = slots_and_code(Lang::ZhCn.text().lead);
    assert_eq!(slots.len(), 18, "{slots:?}");
}

#[test]
fn the_chinese_page_has_no_english_left_outside_code() {
    let t = Lang::ZhCn.text();
    let mut words: Vec<&str> = patterns(t).into_iter().map(|(_, p)| p).collect();
    words.extend([
        t.h1,
        t.every_region,
        t.no_programs,
        t.program_empty,
        t.tl_terms,
    ]);
    words.extend([
        t.tl_regions,
        t.tl_scope,
        t.quarantine_note,
        t.indicators_note,
    ]);
    words.extend(t.headline);
    words.extend(t.th_tl);
    words.extend(t.indicator.iter().flat_map(|(a, b)| [*a, *b]));
    words.extend(Metric::ALL.iter().map(|m| Lang::ZhCn.metric(*m)));
    words.extend(Metric::ALL.iter().map(|m| Lang::ZhCn.unit(*m)));
    for w in words {
        let prose: String = pieces(w)
            .into_iter()
            .filter_map(|p| match p {
                Piece::Text(t) => Some(t),
                _ => None,
            })
            .collect();
        // Kafka and UTC are names; everything else is Chinese.
        let left = prose.replace("Kafka", "").replace("UTC", "");
        assert!(
            !left.chars().any(|c| c.is_ascii_alphabetic()),
            "English in the Chinese page: {w:?}"
        );
    }
}

#[test]
fn every_metric_has_a_distinct_name_and_a_unit_in_each_language() {
    for lang in Lang::ALL {
        let names: BTreeSet<&str> = Metric::ALL.iter().map(|m| lang.metric(*m)).collect();
        assert_eq!(names.len(), Metric::ALL.len(), "{lang:?}");
        assert!(Metric::ALL.iter().all(|m| !lang.unit(*m).is_empty()));
    }
    assert_eq!(Lang::ZhCn.unit(Metric::OutpatientVisits), "人次");
    assert_eq!(Lang::ZhCn.unit(Metric::Surgeries), "台");
    assert_eq!(Lang::ZhCn.chart_title(Metric::Surgeries), "手术（台）");
    assert_eq!(Lang::En.chart_title(Metric::Surgeries), "Surgeries");
    assert_eq!(Lang::ZhCn.role(Role::Performed), "主刀");
    assert_eq!(Lang::ZhCn.level(Level::County), "县级");
}

#[test]
fn dates_read_as_each_language_writes_them() {
    let d = NaiveDate::from_ymd_opt(2023, 1, 5).unwrap();
    assert_eq!(Lang::En.date(d), "5 January 2023");
    assert_eq!(Lang::ZhCn.date(d), "2023年1月5日");
    assert_eq!(Lang::En.month(d), "2023-01");
    assert_eq!(Lang::ZhCn.month(d), "2023年1月");
    let t = d.and_hms_opt(14, 5, 0).unwrap().and_utc();
    assert_eq!(Lang::En.generated(t), "2023-01-05 14:05 UTC");
    assert_eq!(Lang::ZhCn.generated(t), "2023年1月5日 14:05（UTC）");
    assert_eq!(Lang::ZhCn.tag(), "zh-CN");
}

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
    assert_eq!(percent(Some(Share(8_750))), "87.50%");
    assert_eq!(percent(Some(Share(10_000))), "100.00%");
    assert_eq!(percent(Some(Share(5))), "0.05%");
    assert_eq!(percent(None), "–");
    assert_eq!(
        (days(Some(1_200)), days(None)),
        ("1,200".into(), "–".into())
    );
}
