//! The transform against the reference model, in-process and fast: for
//! random histories, any delivery order and any batch boundaries, the cells
//! the transform produces (folded into tables the way the sink folds them)
//! equal the model's tables exactly. `tests/exactness.rs` runs the same
//! property through the real broker and Postgres.

mod support;

use std::collections::HashMap;

use proptest::prelude::*;
use schemas::{Event, Period, Regions};
use support::history::{decode, render, steps};
use support::model::{self, Mission, Tables, canonical_dims};
use transform::{Prior, Transform};

/// What the sink does with a batch's changes, minus the database: carry the
/// ledger to the next batch and add the signed cells to the tables.
fn apply(t: &Transform, batches: &[Vec<Event>]) -> Tables {
    let mut prior = Prior::default();
    let mut tables = Tables::default();
    for batch in batches {
        let out = t.apply(batch, &prior).unwrap();
        let c = out.changes;
        let activities = c.activities_new.into_iter().chain(c.activities_replaced);
        for f in activities.chain(c.activities_restamped) {
            prior.activities.insert(
                (
                    f.institution.clone().into_owned(),
                    f.record_id.clone().into_owned(),
                ),
                f.into_owned(),
            );
        }
        for m in c.missions_new.into_iter().chain(c.missions_replaced) {
            if let Some(row) = m.row() {
                let d = row.dispatch;
                tables.missions.insert(
                    (m.institution.to_string(), m.mission_id.to_string()),
                    Mission {
                        program_id: d.program_id.to_string(),
                        host_facility_id: d.host_facility_id.to_string(),
                        region_code: d.region_code.clone(),
                        team_size: d.team_size,
                        specialties: d.specialties.clone(),
                        start_date: d.start_date,
                        planned_end_date: d.planned_end_date,
                        end_date: row.end_date,
                        status: if row.end_date.is_some() {
                            "completed"
                        } else {
                            "active"
                        }
                        .to_owned(),
                    },
                );
            }
            prior
                .missions
                .insert((m.institution.clone(), m.mission_id.clone()), m);
        }
        tables
            .programs
            .extend(c.programs.into_iter().map(|(p, _)| p.into_string()));
        for d in c.daily {
            let dims: std::collections::BTreeMap<String, String> =
                serde_json::from_str(&d.dims).unwrap();
            let key = (
                d.day,
                d.institution.to_string(),
                d.program_id.to_string(),
                d.mission_id.map(|m| m.to_string()),
                d.facility_id.to_string(),
                d.region_code.to_string(),
                d.metric.as_str().to_owned(),
                canonical_dims(dims),
            );
            *tables.daily.entry(key).or_default() += d.value;
        }
        // The transform gives days; each period is the sum of its days
        // (the databases spread them with their own rule, held to
        // `Period::start` by tests/compaction.rs and tests/sqlite.rs).
        for r in c.regional {
            for p in Period::ALL {
                let key = (
                    r.region_code.to_string(),
                    r.level.as_str().to_owned(),
                    p.as_str().to_owned(),
                    p.start(r.day),
                    r.metric.as_str().to_owned(),
                );
                *tables.regional.entry(key).or_default() += r.value;
            }
        }
        for c in c.program {
            for p in Period::ALL {
                let key = (
                    c.program_id.to_string(),
                    p.as_str().to_owned(),
                    p.start(c.day),
                    c.metric.as_str().to_owned(),
                );
                *tables.program.entry(key).or_default() += c.value;
            }
        }
    }
    tables.daily.retain(|_, v| *v != 0);
    tables.regional.retain(|_, v| *v != 0);
    tables.program.retain(|_, v| *v != 0);
    // The ledger's arrivals, and the timeliness figures made of them.
    let facts: Vec<model::FactArrival> = prior
        .activities
        .values()
        .map(|f| model::FactArrival {
            institution: f.institution.to_string(),
            program: f.program_id.to_string(),
            day: f.day,
            revision: f.revision,
            withdrawn: f.value.hundredths() == 0,
            first_arrived: f.first_arrived,
        })
        .collect();
    tables.timeliness = model::timeliness(&facts);
    tables.arrivals = prior
        .activities
        .values()
        .map(|f| {
            let key = (f.institution.to_string(), f.record_id.to_string());
            (key, (f.first_arrived, f.revision_arrived))
        })
        .collect();
    tables
}

/// Cuts `events` into batches after every position flagged in `cuts`.
fn batches(events: Vec<Event>, cuts: &[bool]) -> Vec<Vec<Event>> {
    let mut out = vec![Vec::new()];
    for (i, e) in events.into_iter().enumerate() {
        out.last_mut().unwrap().push(e);
        if cuts.get(i).copied().unwrap_or(false) {
            out.push(Vec::new());
        }
    }
    out
}

fn transform() -> &'static (Transform, Regions) {
    static T: std::sync::OnceLock<(Transform, Regions)> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let regions = Regions::shipped();
        (Transform::new(&regions).unwrap(), regions)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(support::cases(128)))]

    #[test]
    fn the_transform_equals_the_reference_model_for_any_order_and_batching(
        (history, order, cuts) in steps(120).prop_flat_map(|s| {
            let n = s.len();
            (Just(s), Just((0..n).collect::<Vec<usize>>()).prop_shuffle(), prop::collection::vec(prop::bool::weighted(0.15), n))
        })
    ) {
        let (t, regions) = transform();
        let accepted: Vec<Event> = decode(&render(&history)).into_iter().filter_map(Result::ok).collect();
        let want = model::fold(&accepted, regions);
        let shuffled: Vec<Event> = order.iter().filter_map(|i| accepted.get(*i).cloned()).collect();
        prop_assert_eq!(shuffled.len(), accepted.len().min(order.len()));
        let got = apply(t, &batches(shuffled, &cuts));
        model::assert_same(&got, &want, "in-process transform");
    }
}

/// The model itself, on a history worked out by hand: if this fails, the
/// property above proves nothing.
#[test]
fn the_model_agrees_with_a_hand_computed_history() {
    use support::history::Step::*;
    let steps = vec![
        // rec-1: revision 1 (5), then revision 3 (7), then revision 2 (100, too old).
        Activity {
            inst: 0,
            record: 1,
            revision: 1,
            value: 5,
            cents: 0,
            day: 0,
            region: 0,
            program: 0,
            metric: 0,
            mission: None,
        },
        Activity {
            inst: 0,
            record: 1,
            revision: 3,
            value: 7,
            cents: 0,
            day: 0,
            region: 0,
            program: 0,
            metric: 0,
            mission: None,
        },
        Activity {
            inst: 0,
            record: 1,
            revision: 2,
            value: 100,
            cents: 0,
            day: 0,
            region: 0,
            program: 0,
            metric: 0,
            mission: None,
        },
        // rec-2: reported then withdrawn.
        Activity {
            inst: 0,
            record: 2,
            revision: 1,
            value: 4,
            cents: 0,
            day: 1,
            region: 0,
            program: 0,
            metric: 0,
            mission: None,
        },
        Activity {
            inst: 0,
            record: 2,
            revision: 2,
            value: 0,
            cents: 0,
            day: 1,
            region: 0,
            program: 0,
            metric: 0,
            mission: None,
        },
        // m0 completed (end = base + 6) before it is dispatched (start = base + 2, team 3): 5 days.
        Completion {
            inst: 0,
            mission: 0,
            hour: 1,
            end: 6,
        },
        Dispatch {
            inst: 0,
            mission: 0,
            hour: 1,
            start: 2,
            team: 3,
            region: 0,
            program: 0,
        },
        Again(6),
        Bad(0),
        // rec-1's winning revision again, later: not a new arrival.
        Again(1),
    ];
    let (_, regions) = transform();
    let records = render(&steps);
    let decoded = decode(&records);
    assert_eq!(
        decoded.iter().filter(|d| d.is_err()).count(),
        1,
        "one bad message"
    );
    let accepted: Vec<Event> = decoded.into_iter().filter_map(Result::ok).collect();
    let t = model::fold(&accepted, regions);
    let total = |metric: &str| -> i64 {
        t.daily
            .iter()
            .filter(|(k, _)| k.6 == metric)
            .map(|(_, v)| v)
            .sum()
    };
    assert_eq!(total("surgeries"), 700);
    assert_eq!(total("expert_days"), 3 * 5 * 100);
    assert_eq!(total("missions_dispatched"), 100);
    assert_eq!(total("missions_completed"), 100);
    let country_year: HashMap<&str, i64> = t
        .regional
        .iter()
        .filter(|(k, _)| k.0 == "CN" && k.2 == "year")
        .map(|(k, v)| (k.4.as_str(), *v))
        .collect();
    assert_eq!(country_year["surgeries"], 700);
    // The 2023-12-20 surgeries count in ISO week 2023-12-18, the county,
    // prefecture, province and country.
    let levels: Vec<&str> = t
        .regional
        .keys()
        .filter(|k| k.2 == "week" && k.4 == "surgeries")
        .map(|k| k.1.as_str())
        .collect();
    assert_eq!(levels.len(), 4, "{levels:?}");
    assert_eq!(t.missions.len(), 1);
    assert_eq!(t.missions.values().next().unwrap().status, "completed");
    // Step n is produced 7n hours after 2023-12-19T00:00Z.
    let at = |n: i64| {
        Some(
            "2023-12-19T00:00:00Z"
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap()
                + chrono::TimeDelta::hours(7 * n),
        )
    };
    let key = |r: &str| ("h1".to_owned(), r.to_owned());
    assert_eq!(t.arrivals[&key("rec-1")], (at(0), at(1)));
    assert_eq!(t.arrivals[&key("rec-2")], (at(3), at(4)));
    let month = "2023-12-01".parse().unwrap();
    let row = &t.timeliness[&("h1".to_owned(), "healthy-china-tour-2023".to_owned(), month)];
    assert_eq!(
        (
            row.events,
            row.corrections,
            row.withdrawals,
            row.arrival_unknown
        ),
        (2, 1, 1, 0),
        "rec-1 corrected, rec-2 withdrawn"
    );
    assert_eq!(
        (row.median_days, row.within_7_days),
        (Some(0), Some(10_000))
    );
}
