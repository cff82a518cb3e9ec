//! The reference model: the analyst tables as the contract defines them,
//! computed by one careful pass over the accepted events with plain maps and
//! chrono. Nothing here comes from `transform` or the sink (no polars, no
//! SQL, no ledger), so a bug there cannot hide itself here. Values are in
//! hundredths; cells that sum to zero are left out (the contract lets them
//! stay at 0 or disappear).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use schemas::{Body, Event, Regions};

/// `daily_metrics`: day, institution, program, mission, facility, region,
/// metric, dims (canonical JSON).
pub type DailyKey = (
    NaiveDate,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
);
/// `regional_metrics`: region, level, period type, period start, metric.
pub type RegionalKey = (String, String, String, NaiveDate, String);
/// `program_metrics`: program, period type, period start, metric.
pub type ProgramKey = (String, String, NaiveDate, String);

/// A row of `missions`, keyed by (institution, mission).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mission {
    pub program_id: String,
    pub host_facility_id: String,
    pub region_code: String,
    pub team_size: i32,
    pub specialties: Vec<String>,
    pub start_date: NaiveDate,
    pub planned_end_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub status: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tables {
    pub daily: BTreeMap<DailyKey, i64>,
    pub regional: BTreeMap<RegionalKey, i64>,
    pub program: BTreeMap<ProgramKey, i64>,
    pub missions: BTreeMap<(String, String), Mission>,
    pub programs: BTreeSet<String>,
    /// Each activity fact's (institution, record) first arrival and its
    /// winning revision's, as the ledger keeps them.
    pub arrivals: BTreeMap<(String, String), Arrivals>,
    /// `reporting_timeliness`: (institution, program, month) → its row.
    pub timeliness: BTreeMap<(String, String, NaiveDate), Timeliness>,
    /// The model's winning activity facts (not compared: what `restamp`
    /// recomputes the timeliness from).
    pub facts: BTreeMap<(String, String), FactArrival>,
}

impl Tables {
    /// The arrivals a test could not know in advance (messages stamped by
    /// the producer's clock as they were published), checked by the test
    /// and put in place of the model's; the timeliness recomputed from
    /// them.
    pub fn restamp(&mut self, arrivals: &BTreeMap<(String, String), Arrivals>) {
        for (key, f) in &mut self.facts {
            f.first_arrived = arrivals.get(key).and_then(|a| a.0);
        }
        self.arrivals = self
            .facts
            .keys()
            .map(|k| (k.clone(), arrivals.get(k).copied().unwrap_or_default()))
            .collect();
        self.timeliness = timeliness(self.facts.values());
    }
}

pub type Arrivals = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// A row of `reporting_timeliness`; shares in ten-thousandths (the view
/// rounds them to four decimals).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Timeliness {
    pub events: i64,
    pub corrections: i64,
    pub withdrawals: i64,
    pub arrival_unknown: i64,
    pub median_days: Option<i64>,
    pub p90_days: Option<i64>,
    pub within_7_days: Option<i64>,
    pub within_30_days: Option<i64>,
}

/// What the timeliness figures need of one activity fact's winner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactArrival {
    pub institution: String,
    pub program: String,
    pub day: NaiveDate,
    pub revision: i32,
    pub withdrawn: bool,
    pub first_arrived: Option<DateTime<Utc>>,
}

/// `reporting_timeliness` as the contract defines it, from the winning
/// facts: lags in whole days from the day of the work to the UTC date of
/// the first arrival (0 at least), nearest-rank percentiles over the facts
/// whose arrival is known, shares of those rounded half up to 1/10,000.
pub fn timeliness<'a>(
    facts: impl IntoIterator<Item = &'a FactArrival>,
) -> BTreeMap<(String, String, NaiveDate), Timeliness> {
    let mut groups: BTreeMap<(String, String, NaiveDate), (Timeliness, Vec<i64>)> = BTreeMap::new();
    for f in facts {
        let month = NaiveDate::from_ymd_opt(f.day.year(), f.day.month(), 1).unwrap();
        let (t, lags) = groups
            .entry((f.institution.clone(), f.program.clone(), month))
            .or_default();
        t.events += 1;
        t.withdrawals += i64::from(f.withdrawn);
        t.corrections += i64::from(f.revision > 1 && !f.withdrawn);
        match f.first_arrived {
            None => t.arrival_unknown += 1,
            Some(at) => lags.push((at.date_naive() - f.day).num_days().max(0)),
        }
    }
    groups
        .into_iter()
        .map(|(k, (mut t, mut lags))| {
            lags.sort_unstable();
            let n = lags.len() as i64;
            // The smallest lag that at least `num/den` of the facts arrived within.
            let rank = |num: i64, den: i64| {
                lags.iter()
                    .enumerate()
                    .find(|(i, _)| den * (*i as i64 + 1) >= num * n)
                    .map(|(_, d)| *d)
            };
            let share = |days: i64| {
                let within = lags.iter().filter(|d| **d <= days).count() as i64;
                (n > 0).then(|| (2 * within * 10_000 + n) / (2 * n))
            };
            t.median_days = rank(1, 2);
            t.p90_days = rank(9, 10);
            t.within_7_days = share(7);
            t.within_30_days = share(30);
            (k, t)
        })
        .collect()
}

impl Tables {
    /// How many cells, of every kind, a comparison looked at.
    pub fn cells(&self) -> usize {
        self.daily.len() + self.regional.len() + self.program.len() + self.missions.len()
    }
}

/// The first day of each period type that holds `day`, by the reference
/// rule (`Period::start`), which each database's own SQL is held to.
pub fn period_starts(day: NaiveDate) -> [(&'static str, NaiveDate); 5] {
    schemas::Period::ALL.map(|p| (p.as_str(), p.start(day)))
}

/// Dims as canonical JSON (keys sorted, compact), whatever order they came in.
pub fn canonical_dims(pairs: impl IntoIterator<Item = (String, String)>) -> String {
    let map: BTreeMap<String, String> = pairs.into_iter().collect();
    serde_json::to_string(&map).unwrap()
}

/// The tables that the accepted `events` (in any order, with any number of
/// redeliveries) must produce.
pub fn fold(events: &[Event], regions: &Regions) -> Tables {
    // The latest version of each fact: a total order, so arrival order is moot.
    let mut activities: BTreeMap<(String, String), &Event> = BTreeMap::new();
    // The earliest arrival of every delivery of each activity fact.
    let mut first: BTreeMap<(String, String), Option<DateTime<Utc>>> = BTreeMap::new();
    let mut dispatches: BTreeMap<(String, String), &Event> = BTreeMap::new();
    let mut completions: BTreeMap<(String, String), &Event> = BTreeMap::new();
    let mut programs = BTreeSet::new();
    for e in events {
        let inst = e.institution.as_str().to_owned();
        let (map, key, newer): (_, _, fn(&Event, &Event) -> bool) = match &e.body {
            Body::Activity(a) => {
                programs.insert(a.program_id.as_str().to_owned());
                let key = (inst.clone(), a.record_id.as_str().to_owned());
                let seen = first.entry(key).or_insert(e.arrived);
                // `None` (no timestamp) is the earliest: unknown stays unknown.
                *seen = (*seen).min(e.arrived);
                (&mut activities, a.record_id.as_str(), |new, old| {
                    (revision(new), &new.id) > (revision(old), &old.id)
                })
            }
            Body::Dispatched(d) => {
                programs.insert(d.program_id.as_str().to_owned());
                (&mut dispatches, d.mission_id.as_str(), |new, old| {
                    (new.time, &new.id) > (old.time, &old.id)
                })
            }
            Body::Completed(c) => (&mut completions, c.mission_id.as_str(), |new, old| {
                (new.time, &new.id) > (old.time, &old.id)
            }),
        };
        let slot = map.entry((inst, key.to_owned())).or_insert(e);
        if newer(e, slot) {
            *slot = e;
        }
    }

    let mut t = Tables {
        programs,
        ..Tables::default()
    };
    for (key, e) in &activities {
        let Body::Activity(a) = &e.body else {
            unreachable!()
        };
        // The winner's arrival: the earliest delivery of that very version.
        let revision_arrived = events
            .iter()
            .filter(|o| {
                o.institution.as_str() == key.0 && o.id == e.id && revision(o) == a.revision
            })
            .filter(|o| matches!(&o.body, Body::Activity(b) if b.record_id.as_str() == key.1))
            .map(|o| o.arrived)
            .min()
            .unwrap();
        t.arrivals
            .insert(key.clone(), (first[key], revision_arrived));
        let fact = FactArrival {
            institution: key.0.clone(),
            program: a.program_id.as_str().to_owned(),
            day: a.occurred_on,
            revision: a.revision,
            withdrawn: a.value.hundredths() == 0,
            first_arrived: first[key],
        };
        t.facts.insert(key.clone(), fact);
    }
    t.timeliness = timeliness(t.facts.values());
    let mut add = |key: DailyKey, hundredths: i64| *t.daily.entry(key).or_default() += hundredths;
    for ((inst, _), e) in &activities {
        let Body::Activity(a) = &e.body else {
            unreachable!()
        };
        add(
            (
                a.occurred_on,
                inst.clone(),
                a.program_id.as_str().to_owned(),
                a.mission_id.as_ref().map(|m| m.as_str().to_owned()),
                a.facility_id.as_str().to_owned(),
                a.region_code.clone(),
                a.metric.as_str().to_owned(),
                // Re-made from the pairs, so a non-canonical text would differ.
                canonical_dims(
                    serde_json::from_str::<BTreeMap<String, String>>(a.dims.as_json())
                        .expect("dims are a JSON object of strings"),
                ),
            ),
            a.value.hundredths(),
        );
    }
    for (key, e) in &dispatches {
        let Body::Dispatched(d) = &e.body else {
            unreachable!()
        };
        // A completion counts once it fits its mission: not before the start,
        // and within the longest mission the contract allows.
        let end = completions.get(key).and_then(|c| match &c.body {
            Body::Completed(c) => {
                let span = (c.end_date - d.start_date).num_days();
                (0..schemas::ledger::MAX_MISSION_DAYS)
                    .contains(&span)
                    .then_some(c.end_date)
            }
            _ => unreachable!(),
        });
        let cell = |day, metric: &str| {
            (
                day,
                key.0.clone(),
                d.program_id.as_str().to_owned(),
                Some(key.1.clone()),
                d.host_facility_id.as_str().to_owned(),
                d.region_code.clone(),
                metric.to_owned(),
                "{}".to_owned(),
            )
        };
        let team = i64::from(d.team_size) * 100;
        add(cell(d.start_date, "missions_dispatched"), 100);
        add(cell(d.start_date, "experts_dispatched"), team);
        if let Some(end) = end {
            add(cell(end, "missions_completed"), 100);
            let mut day = d.start_date;
            while day <= end {
                add(cell(day, "expert_days"), team);
                day = day.succ_opt().unwrap();
            }
        }
        t.missions.insert(
            key.clone(),
            Mission {
                program_id: d.program_id.as_str().to_owned(),
                host_facility_id: d.host_facility_id.as_str().to_owned(),
                region_code: d.region_code.clone(),
                team_size: d.team_size,
                specialties: d.specialties.clone(),
                start_date: d.start_date,
                planned_end_date: d.planned_end_date,
                end_date: end,
                status: if end.is_some() { "completed" } else { "active" }.to_owned(),
            },
        );
    }
    t.daily.retain(|_, v| *v != 0);

    // Every region up to the country, every period type, and per program.
    for ((day, _, program, _, _, region, metric, _), v) in &t.daily {
        for (period, start) in period_starts(*day) {
            for r in regions.lineage(region) {
                let key = (
                    r.code.clone(),
                    r.level.as_str().to_owned(),
                    period.to_owned(),
                    start,
                    metric.clone(),
                );
                *t.regional.entry(key).or_default() += v;
            }
            let key = (program.clone(), period.to_owned(), start, metric.clone());
            *t.program.entry(key).or_default() += v;
        }
    }
    t.regional.retain(|_, v| *v != 0);
    t.program.retain(|_, v| *v != 0);
    t
}

fn revision(e: &Event) -> i32 {
    match &e.body {
        Body::Activity(a) => a.revision,
        _ => 0,
    }
}

type DailyRow = (
    NaiveDate,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
    i64,
);
type RegionalRow = (String, String, String, NaiveDate, String, i64);
type ProgramRow = (String, String, NaiveDate, String, i64);
type MissionRow = (
    String,
    String,
    String,
    String,
    String,
    i32,
    Vec<String>,
    NaiveDate,
    Option<NaiveDate>,
    Option<NaiveDate>,
    String,
);

/// The same tables as read back from Postgres.
pub async fn load(pool: &sqlx::PgPool) -> Tables {
    let daily: Vec<DailyRow> = sqlx::query_as(
        "SELECT day, institution_id, program_id, mission_id, facility_id, region_code, metric, \
         dims::text, (value * 100)::bigint FROM outreach.daily_metrics WHERE value <> 0",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let regional: Vec<RegionalRow> = sqlx::query_as(
        "SELECT region_code, region_level, period_type, period_start, metric, (value * 100)::bigint \
         FROM outreach.regional_metrics WHERE value <> 0",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let program: Vec<ProgramRow> = sqlx::query_as(
        "SELECT program_id, period_type, period_start, metric, (value * 100)::bigint \
         FROM outreach.program_metrics WHERE value <> 0",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let missions: Vec<MissionRow> = sqlx::query_as(
        "SELECT institution_id, mission_id, program_id, host_facility_id, region_code, team_size, \
         specialties, start_date, planned_end_date, end_date, status FROM outreach.missions",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let programs = sqlx::query_scalar("SELECT program_id FROM outreach.programs")
        .fetch_all(pool)
        .await
        .unwrap();
    let mut t = tables(daily, regional, program, missions, programs);
    let arrivals: Vec<ArrivalRow> = sqlx::query_as(
        "SELECT institution_id, record_id, first_arrived_at, revision_arrived_at \
         FROM outreach.activity_facts",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let timeliness: Vec<TimelinessRow> = sqlx::query_as(
        "SELECT institution_id, program_id, month, events, corrections, withdrawals, \
         arrival_unknown, median_days::bigint, p90_days::bigint, \
         (within_7_days * 10000)::bigint, (within_30_days * 10000)::bigint \
         FROM outreach.reporting_timeliness",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    with_timeliness(&mut t, arrivals, timeliness);
    t
}

type ArrivalRow = (String, String, Option<DateTime<Utc>>, Option<DateTime<Utc>>);
type TimelinessRow = (
    String,
    String,
    NaiveDate,
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

fn with_timeliness(t: &mut Tables, arrivals: Vec<ArrivalRow>, timeliness: Vec<TimelinessRow>) {
    t.arrivals = arrivals
        .into_iter()
        .map(|(i, r, first, revision)| ((i, r), (first, revision)))
        .collect();
    t.timeliness = timeliness
        .into_iter()
        .map(
            |(i, p, m, events, corrections, withdrawals, unknown, median, p90, w7, w30)| {
                let row = Timeliness {
                    events,
                    corrections,
                    withdrawals,
                    arrival_unknown: unknown,
                    median_days: median,
                    p90_days: p90,
                    within_7_days: w7,
                    within_30_days: w30,
                };
                ((i, p, m), row)
            },
        )
        .collect();
}

/// The same tables as read back from SQLite: values are REAL (the nearest
/// double to the exact decimal), specialties a JSON array.
pub async fn load_sqlite(pool: &sqlx::SqlitePool) -> Tables {
    // Rounding below would hide drift from adding binary fractions: every
    // stored value must itself be a whole number of hundredths.
    for table in ["daily_metrics", "regional_metrics", "program_metrics"] {
        let drifted: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE value <> round(value * 100) / 100.0"
        )))
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(drifted, 0, "{table}: values that are not whole hundredths");
    }
    let daily: Vec<DailyRow> = sqlx::query_as(
        "SELECT day, institution_id, program_id, mission_id, facility_id, region_code, metric, \
         dims, CAST(round(value * 100) AS INTEGER) FROM daily_metrics WHERE value <> 0",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let regional: Vec<RegionalRow> = sqlx::query_as(
        "SELECT region_code, region_level, period_type, period_start, metric, \
         CAST(round(value * 100) AS INTEGER) FROM regional_metrics WHERE value <> 0",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let program: Vec<ProgramRow> = sqlx::query_as(
        "SELECT program_id, period_type, period_start, metric, CAST(round(value * 100) AS INTEGER) \
         FROM program_metrics WHERE value <> 0",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    type Raw = (
        String,
        String,
        String,
        String,
        String,
        i32,
        String,
        NaiveDate,
        Option<NaiveDate>,
        Option<NaiveDate>,
        String,
    );
    let raw: Vec<Raw> = sqlx::query_as(
        "SELECT institution_id, mission_id, program_id, host_facility_id, region_code, team_size, \
         specialties, start_date, planned_end_date, end_date, status FROM missions",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let missions = raw
        .into_iter()
        .map(|(i, m, p, h, r, t, s, sd, pe, ed, st)| {
            let s: Vec<String> = serde_json::from_str(&s).expect("specialties is a JSON array");
            (i, m, p, h, r, t, s, sd, pe, ed, st)
        })
        .collect();
    let programs = sqlx::query_scalar("SELECT program_id FROM programs")
        .fetch_all(pool)
        .await
        .unwrap();
    let mut t = tables(daily, regional, program, missions, programs);
    let arrivals: Vec<ArrivalRow> = sqlx::query_as(
        "SELECT institution_id, record_id, first_arrived_at, revision_arrived_at FROM activity_facts",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let timeliness: Vec<TimelinessRow> = sqlx::query_as(
        "SELECT institution_id, program_id, month, events, corrections, withdrawals, \
         arrival_unknown, median_days, p90_days, \
         CAST(round(within_7_days * 10000) AS INTEGER), CAST(round(within_30_days * 10000) AS INTEGER) \
         FROM reporting_timeliness",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    with_timeliness(&mut t, arrivals, timeliness);
    t
}

fn tables(
    daily: Vec<DailyRow>,
    regional: Vec<RegionalRow>,
    program: Vec<ProgramRow>,
    missions: Vec<MissionRow>,
    programs: Vec<String>,
) -> Tables {
    let mut t = Tables::default();
    for (day, inst, program, mission, facility, region, metric, dims, v) in daily {
        let dims: BTreeMap<String, String> = serde_json::from_str(&dims).unwrap();
        let key = (
            day,
            inst,
            program,
            mission,
            facility,
            region,
            metric,
            canonical_dims(dims),
        );
        assert!(t.daily.insert(key, v).is_none(), "one row per daily cell");
    }
    t.regional = regional
        .into_iter()
        .map(|(r, l, p, s, m, v)| ((r, l, p, s, m), v))
        .collect();
    t.program = program
        .into_iter()
        .map(|(p, s, d, m, v)| ((p, s, d, m), v))
        .collect();
    for (
        inst,
        id,
        program_id,
        host_facility_id,
        region_code,
        team_size,
        specialties,
        s,
        p,
        e,
        st,
    ) in missions
    {
        t.missions.insert(
            (inst, id),
            Mission {
                program_id,
                host_facility_id,
                region_code,
                team_size,
                specialties,
                start_date: s,
                planned_end_date: p,
                end_date: e,
                status: st,
            },
        );
    }
    t.programs = programs.into_iter().collect();
    t
}

/// Asserts table by table, so a failure names the table and the first
/// differing cells rather than printing everything.
pub fn assert_same(got: &Tables, want: &Tables, context: &str) {
    fn diff<K: Ord + std::fmt::Debug + Clone, V: PartialEq + std::fmt::Debug + Clone>(
        table: &str,
        got: &BTreeMap<K, V>,
        want: &BTreeMap<K, V>,
        context: &str,
    ) {
        let wrong: Vec<(K, Option<V>, Option<V>)> = got
            .keys()
            .chain(want.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|k| got.get(*k) != want.get(*k))
            .take(5)
            .map(|k| ((*k).clone(), got.get(k).cloned(), want.get(k).cloned()))
            .collect();
        assert!(
            wrong.is_empty(),
            "{context}: {table} differs from the reference model in {} of {} cells; \
             first (key, got, want): {wrong:#?}",
            got.keys()
                .chain(want.keys())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .filter(|k| got.get(*k) != want.get(*k))
                .count(),
            want.len()
        );
    }
    diff("daily_metrics", &got.daily, &want.daily, context);
    diff("regional_metrics", &got.regional, &want.regional, context);
    diff("program_metrics", &got.program, &want.program, context);
    diff("missions", &got.missions, &want.missions, context);
    diff(
        "activity_facts' arrivals",
        &got.arrivals,
        &want.arrivals,
        context,
    );
    diff(
        "reporting_timeliness",
        &got.timeliness,
        &want.timeliness,
        context,
    );
    assert_eq!(got.programs, want.programs, "{context}: programs");
}
