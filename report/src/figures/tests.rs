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
        month: NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").unwrap(),
        metric: Metric::parse(metric).unwrap(),
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
fn each_program_gets_the_timeliness_of_its_own_records() {
    let mut rows = sample();
    let lag = |program: &str, days, events| sink::report::LagRow {
        institution_id: "i".into(),
        program_id: program.into(),
        month: NaiveDate::from_ymd_opt(2023, 1, 1).unwrap(),
        days_to_arrival: Some(days),
        events,
        corrections: 0,
        withdrawals: 0,
    };
    rows.lags = vec![lag("p", 3, 2), lag("q", 40, 1), lag("elsewhere", 1, 9)];
    let f = Figures::compute(&rows, &Filter::default()).unwrap();
    let medians: Vec<(&str, i64, Option<i64>)> = f
        .programs
        .iter()
        .map(|p| {
            (
                p.id.as_str(),
                p.timeliness.total.events,
                p.timeliness.total.median_days(),
            )
        })
        .collect();
    assert_eq!(medians, [("p", 2, Some(3)), ("q", 1, Some(40))]);
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
