//! The transform alone, in milliseconds: the roll-up keeps days, roll-ups
//! add up, and the result does not depend on how events are ordered or cut
//! into batches.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use schemas::{
    Activity, Body, Cell, Completion, Dims, Dispatch, Event, Id, Level, Metric, Regions,
    number::Amount,
};
use transform::{Prior, Transform, plan};

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn id(s: &str) -> Id {
    Id::parse(s).unwrap()
}

fn time(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn activity(event: &str, record: &str, revision: i32, value: i64, on: &str, region: &str) -> Event {
    Event {
        id: event.into(),
        institution: id("h1"),
        time: time("2024-01-01T00:00:00Z"),
        arrived: None,
        body: Body::Activity(Activity {
            record_id: id(record),
            revision,
            program_id: id("p1"),
            mission_id: None,
            facility_id: id("f1"),
            region_code: region.into(),
            occurred_on: day(on),
            metric: Metric::Surgeries,
            value: Amount::from_units(value),
            dims: Dims::default(),
        }),
    }
}

fn dispatch(event: &str, mission: &str, start: &str, team: i32) -> Event {
    Event {
        id: event.into(),
        institution: id("h1"),
        time: time("2024-01-01T00:00:00Z"),
        arrived: None,
        body: Body::Dispatched(Dispatch {
            mission_id: id(mission),
            program_id: id("p1"),
            program_name: None,
            host_facility_id: id("f1"),
            host_facility_name: None,
            region_code: "620921".into(),
            team_size: team,
            specialties: vec![],
            start_date: day(start),
            planned_end_date: None,
        }),
    }
}

fn completion(event: &str, mission: &str, end: &str) -> Event {
    Event {
        id: event.into(),
        institution: id("h1"),
        time: time("2024-02-01T00:00:00Z"),
        arrived: None,
        body: Body::Completed(Completion {
            mission_id: id(mission),
            end_date: day(end),
        }),
    }
}

/// The roll-up keeps days: each daily cell's day, at its region and every
/// ancestor, and at its program, over a century of weekdays, month ends
/// and leap days. (The databases spread days to periods: tests/compaction.rs
/// and tests/sqlite.rs hold their SQL to the reference `Period::start`.)
#[test]
fn the_roll_up_keeps_every_day_of_a_century() {
    let regions = Regions::shipped();
    let t = Transform::new(&regions).unwrap();
    let first = day("1950-01-01");
    let events: Vec<Event> = (0..36_600)
        .step_by(7 * 13 + 1)
        .chain(
            [day("2000-02-29"), day("1999-12-31"), day("2024-12-30")]
                .map(|d| (d - first).num_days() as usize),
        )
        .enumerate()
        .map(|(i, n)| {
            activity(
                &format!("e{i}"),
                &format!("r{i}"),
                1,
                1,
                &(first + chrono::Days::new(n as u64)).to_string(),
                "620921",
            )
        })
        .collect();
    let out = t.apply(&events, &Prior::default()).unwrap();
    let days: std::collections::BTreeSet<NaiveDate> =
        out.changes.daily.iter().map(|c| c.day).collect();
    assert_eq!(days.len(), events.len());
    let lineage = regions.lineage("620921").count();
    for d in &days {
        let at_day: Vec<_> = out
            .changes
            .regional
            .iter()
            .filter(|c| c.day == *d)
            .collect();
        assert_eq!(at_day.len(), lineage, "{d}: the county and each ancestor");
        assert!(at_day.iter().all(|c| c.value == 100), "{d}");
        let programs = out.changes.program.iter().filter(|c| c.day == *d);
        assert_eq!(programs.map(|c| c.value).collect::<Vec<_>>(), [100], "{d}");
    }
    assert_eq!(out.changes.regional.len(), days.len() * lineage);
}

#[test]
fn every_level_sums_to_the_same_total() {
    let regions = Regions::shipped();
    let t = Transform::new(&regions).unwrap();
    let events = vec![
        activity("a", "r1", 1, 5, "2023-06-14", "620921"),
        activity("b", "r2", 1, 7, "2023-12-31", "620922"),
        activity("c", "r3", 1, 11, "2021-01-01", "130184"),
        activity("d", "r4", 1, 13, "2021-01-01", "MA-01"),
    ];
    let out = t.apply(&events, &Prior::default()).unwrap();
    let mut totals: HashMap<Level, i64> = HashMap::new();
    for c in &out.changes.regional {
        *totals.entry(c.level).or_default() += c.value;
    }
    assert_eq!(totals[&Level::Country], 3600);
    assert_eq!(
        totals[&Level::County],
        2300,
        "MA-01 is a province, not a county"
    );
    assert_eq!(totals[&Level::Province], 3600);
    let program: i64 = out.changes.program.iter().map(|c| c.value).sum();
    assert_eq!(program, 3600);
    let day_of = |code: &str| {
        out.changes
            .regional
            .iter()
            .filter(|c| &*c.region_code == code)
            .map(|c| (c.day, c.value))
            .collect::<Vec<_>>()
    };
    assert_eq!(day_of("MA-01"), [(day("2021-01-01"), 1300)]);
}

/// Applies events in batches, carrying the ledger between them as the sink would.
fn fold(t: &Transform, batches: &[Vec<Event>]) -> HashMap<Cell, i64> {
    let mut prior = Prior::default();
    let mut cells: HashMap<Cell, i64> = HashMap::new();
    for batch in batches {
        let out = t.apply(batch, &prior).unwrap();
        let c = out.changes;
        for f in c.activities_new.into_iter().chain(c.activities_replaced) {
            prior.activities.insert(
                (
                    f.institution.clone().into_owned(),
                    f.record_id.clone().into_owned(),
                ),
                f.into_owned(),
            );
        }
        for m in c.missions_new.into_iter().chain(c.missions_replaced) {
            prior
                .missions
                .insert((m.institution.clone(), m.mission_id.clone()), m);
        }
        for d in c.daily {
            let key = Cell {
                value: 0,
                ..d.clone()
            };
            *cells.entry(key).or_default() += d.value;
        }
    }
    cells.retain(|_, v| *v != 0);
    cells
}

#[test]
fn order_and_batching_do_not_change_the_result() {
    let t = Transform::new(&Regions::shipped()).unwrap();
    let events = vec![
        activity("e1", "r1", 1, 10, "2024-03-05", "620921"),
        activity("e1", "r1", 1, 10, "2024-03-05", "620921"),
        activity("e2", "r1", 3, 7, "2024-03-05", "620921"),
        activity("e3", "r1", 2, 100, "2024-03-05", "620921"),
        activity("e4", "r2", 1, 4, "2024-03-06", "620921"),
        activity("e5", "r2", 2, 0, "2024-03-06", "620921"),
        completion("c1", "m1", "2024-03-03"),
        dispatch("d1", "m1", "2024-03-01", 3),
        dispatch("d1", "m1", "2024-03-01", 3),
    ];
    let reference = fold(&t, std::slice::from_ref(&events));
    let total = |cells: &HashMap<Cell, i64>, m: Metric| {
        cells
            .iter()
            .filter(|(c, _)| c.metric == m)
            .map(|(_, v)| v)
            .sum::<i64>()
    };
    assert_eq!(total(&reference, Metric::Surgeries), 700);
    assert_eq!(total(&reference, Metric::ExpertDays), 900);
    assert_eq!(total(&reference, Metric::MissionsCompleted), 100);

    // Every rotation, reversed or not, cut at every point.
    let n = events.len();
    for rot in 0..n {
        for rev in [false, true] {
            let mut order: Vec<Event> = events.iter().cycle().skip(rot).take(n).cloned().collect();
            if rev {
                order.reverse();
            }
            for cut in 0..=n {
                let batches = vec![order[..cut].to_vec(), order[cut..].to_vec()];
                assert_eq!(
                    fold(&t, &batches),
                    reference,
                    "rotation {rot}, reversed {rev}, cut at {cut}"
                );
            }
            let singles: Vec<Vec<Event>> = order.iter().map(|e| vec![e.clone()]).collect();
            assert_eq!(
                fold(&t, &singles),
                reference,
                "one event per batch, rotation {rot}, reversed {rev}"
            );
        }
    }
}

#[test]
fn a_completion_that_cannot_fit_its_mission_is_refused() {
    let t = Transform::new(&Regions::shipped()).unwrap();
    let events = [
        dispatch("d1", "m1", "2024-03-10", 2),
        completion("c1", "m1", "2024-03-01"),
        completion("c2", "m1", "2040-03-01"),
    ];
    let out = t.apply(&events, &Prior::default()).unwrap();
    let codes: Vec<_> = out
        .rejected
        .iter()
        .map(|(i, r)| (*i, r.code.as_str()))
        .collect();
    assert_eq!(codes, [(1, "end_before_start"), (2, "mission_too_long")]);
    assert!(
        out.changes
            .daily
            .iter()
            .all(|c| c.metric != Metric::MissionsCompleted)
    );
    // Alone, before any dispatch, the same completion is kept for later.
    let nothing = Prior::default();
    let alone = [completion("c1", "m1", "2024-03-01")];
    let p = plan(&alone, &nothing);
    assert!(p.rejected.is_empty() && p.contributions().is_empty());
    assert_eq!(p.changes.missions_new.len(), 1);
}

/// Arrivals are the earliest delivery of the fact and of its winning
/// revision; a batch that only brings an earlier delivery of the stored
/// winner restamps it (no cell), a later one changes nothing, and an
/// unknown arrival (a fact stored before arrivals were kept) stays unknown.
#[test]
fn arrivals_keep_the_earliest_delivery_and_unknown_stays_unknown() {
    let regions = Regions::shipped();
    let t = Transform::new(&regions).unwrap();
    let at = |h: i64| Some(time("2024-01-01T00:00:00Z") + chrono::TimeDelta::hours(h));
    let arrived = |mut e: Event, h: i64| {
        e.arrived = at(h);
        e
    };
    let batch = vec![
        arrived(activity("e2", "r1", 2, 7, "2023-12-30", "620921"), 5),
        arrived(activity("e1", "r1", 1, 5, "2023-12-30", "620921"), 3),
        arrived(activity("e2", "r1", 2, 7, "2023-12-30", "620921"), 4),
    ];
    let out = t.apply(&batch, &Prior::default()).unwrap();
    let f = &out.changes.activities_new[0];
    assert_eq!(
        (f.revision, f.first_arrived, f.revision_arrived),
        (2, at(3), at(4))
    );

    let key = (id("h1"), id("r1"));
    let stored = |first, revision| {
        let mut f = f.clone().into_owned();
        f.first_arrived = first;
        f.revision_arrived = revision;
        Prior {
            activities: HashMap::from([(key.clone(), f)]),
            missions: HashMap::new(),
        }
    };
    // Later deliveries of either revision: nothing to write.
    let later = [
        arrived(activity("e1", "r1", 1, 5, "2023-12-30", "620921"), 9),
        arrived(activity("e2", "r1", 2, 7, "2023-12-30", "620921"), 9),
    ];
    let out = t.apply(&later, &stored(at(3), at(4))).unwrap();
    assert!(out.changes.activities_restamped.is_empty());
    assert!(out.changes.daily.is_empty());
    // An earlier one of the winner: restamped, no cell.
    let earlier = [arrived(
        activity("e2", "r1", 2, 7, "2023-12-30", "620921"),
        1,
    )];
    let out = t.apply(&earlier, &stored(at(3), at(4))).unwrap();
    let r = &out.changes.activities_restamped[0];
    assert_eq!((r.first_arrived, r.revision_arrived), (at(1), at(1)));
    assert!(out.changes.daily.is_empty());
    // Unknown stays unknown; a new revision's own arrival is known.
    let out = t.apply(&earlier, &stored(None, None)).unwrap();
    assert!(out.changes.activities_restamped.is_empty());
    let newer = [arrived(
        activity("e3", "r1", 3, 8, "2023-12-30", "620921"),
        20,
    )];
    let out = t.apply(&newer, &stored(None, None)).unwrap();
    let r = &out.changes.activities_replaced[0];
    assert_eq!((r.first_arrived, r.revision_arrived), (None, at(20)));
}
