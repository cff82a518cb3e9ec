//! The benchmark's stream, which the end-to-end tests use too: realistic
//! (or uniformly dated) events with missions (completions before their
//! dispatch half the time), redeliveries, corrections (older revisions
//! arriving late, withdrawals) and bad messages, and its own fold of what
//! the tables must hold, which every run is verified against.

use std::collections::HashMap;

use anyhow::bail;
use schemas::Metric;
use serde_json::{Value, json};

use super::BenchArgs;
use crate::settings::Settings;

/// Generator of the benchmark's events over the shipped (or configured) counties.
pub(super) fn generator(settings: &Settings, args: &BenchArgs) -> anyhow::Result<Generator> {
    let regions = settings.regions()?;
    let mut counties: Vec<String> = regions
        .iter()
        .filter(|r| r.level == schemas::Level::County)
        .map(|r| r.code.clone())
        .collect();
    counties.sort();
    counties.truncate(args.counties.max(1));
    Ok(Generator::new(Mix::from(args), counties))
}

/// What the stream is made of: the seed, the share of each kind of message
/// (in percent) and how dates spread. The benchmark takes it from its
/// options; the tests choose their own.
#[derive(Debug, Clone)]
pub struct Mix {
    pub seed: u64,
    pub bad: f64,
    pub duplicates: f64,
    pub corrections: f64,
    pub programs: usize,
    /// This share of dates spreads over the last `years`; the rest fall in
    /// the last `recent_days`.
    pub late: f64,
    pub years: i32,
    pub recent_days: u64,
}

impl From<&BenchArgs> for Mix {
    fn from(a: &BenchArgs) -> Mix {
        Mix {
            seed: a.seed,
            bad: a.bad,
            duplicates: a.duplicates,
            corrections: a.corrections,
            programs: a.programs,
            late: a.late,
            years: a.years,
            recent_days: a.recent_days,
        }
    }
}

/// One generated message: whether it is a mission event (else an
/// activity, or a bad message on the activities topic), its key, its value.
pub type Message = (bool, Vec<u8>, Vec<u8>);

/// Leaf totals per (region, metric) in the tables against the generator's fold.
pub(super) async fn verify(sink: &sink::Sink, g: &Generator) -> anyhow::Result<()> {
    let mut got = sink.leaf_totals().await?;
    got.retain(|_, v| *v != 0);
    let want = g.expected();
    if got != want {
        let wrong = want.iter().filter(|(k, v)| got.get(*k) != Some(v)).count()
            + got.keys().filter(|k| !want.contains_key(*k)).count();
        bail!(
            "verification failed: {wrong} (region, metric) totals differ from the independent fold"
        );
    }
    let quarantined = sink.quarantined().await?;
    if quarantined as u64 != g.bad {
        bail!(
            "verification failed: {quarantined} quarantined, {} bad messages sent",
            g.bad
        );
    }
    if sink.country_total().await? != want.values().sum::<i64>() {
        bail!(
            "verification failed: the country-level yearly totals do not add up to the leaf totals"
        );
    }
    Ok(())
}

/// The winning revision of one (institution, record): (revision, event id,
/// county index, metric index in `Metric::ACTIVITY`, hundredths).
type Winner = (u32, u64, u32, u8, i64);

/// Generates the stream and keeps the reference fold: the winning revision
/// of every record, and what every mission adds.
pub struct Generator {
    rng: u64,
    mix: Mix,
    pub(super) counties: Vec<String>,
    winners: HashMap<(u32, u64), Winner>,
    records: Vec<(u32, u64, u32, u8)>,
    recent: Vec<Message>,
    missions_total: HashMap<(String, String), i64>,
    /// Activity events generated (corrections included).
    pub activities: u64,
    next_id: u64,
    pub sent: u64,
    pub missions: u64,
    pub duplicates: u64,
    pub corrections: u64,
    /// Bad messages sent, each under a key of its own.
    pub bad: u64,
}

impl Generator {
    /// A stream over `counties` (region codes of the catalogue).
    pub fn new(mix: Mix, counties: Vec<String>) -> Generator {
        Generator {
            rng: mix.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            mix,
            counties,
            winners: HashMap::new(),
            records: Vec::new(),
            recent: Vec::new(),
            missions_total: HashMap::new(),
            activities: 0,
            next_id: 0,
            sent: 0,
            missions: 0,
            duplicates: 0,
            corrections: 0,
            bad: 0,
        }
    }

    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn percent(&mut self) -> f64 {
        self.below(1_000_000) as f64 / 10_000.0
    }

    fn day(&mut self) -> chrono::NaiveDate {
        let today = chrono::Utc::now().date_naive();
        let span = if self.percent() < self.mix.late {
            365 * self.mix.years.max(1) as u64
        } else {
            self.mix.recent_days.max(1)
        };
        today - chrono::Days::new(self.below(span))
    }

    /// The next `n` messages (one more when a mission's pair ends the run).
    pub fn next_batch(&mut self, n: usize) -> Vec<Message> {
        let mut out = Vec::with_capacity(n + 2);
        while out.len() < n {
            self.next_draw(&mut out);
        }
        self.sent += out.len() as u64;
        out
    }

    /// One draw of the mix, appended to `out`: a bad message, a redelivery,
    /// a mission's pair (one draw in a hundred) or an activity event (a
    /// correction or a new record). The draws happen in this order, and a
    /// seed's stream depends on it: reorder nothing here.
    fn next_draw(&mut self, out: &mut Vec<Message>) {
        let p = self.percent();
        if p < self.mix.bad {
            out.push(self.bad_message());
        } else if p < self.mix.bad + self.mix.duplicates && !self.recent.is_empty() {
            out.push(self.redelivery());
        } else if self.below(100) == 0 {
            out.extend(self.mission());
        } else {
            let correction = p < self.mix.bad + self.mix.duplicates + self.mix.corrections
                && !self.records.is_empty();
            out.push(self.activity(correction));
        }
    }

    /// An unterminated JSON object under a key of its own, which the
    /// pipeline must quarantine.
    fn bad_message(&mut self) -> Message {
        self.bad += 1;
        let id = self.take_id();
        let v = format!("{{\"specversion\":\"1.0\",\"id\":\"bad-{id}\"");
        (false, format!("bad-{id}").into_bytes(), v.into_bytes())
    }

    /// A message sent recently, sent again byte for byte.
    fn redelivery(&mut self) -> Message {
        self.duplicates += 1;
        let i = self.below(self.recent.len() as u64) as usize;
        self.recent[i].clone()
    }

    /// An activity event: a new record's first revision, or (a correction)
    /// a random revision of a known record, which may be older than the
    /// one that already won.
    fn activity(&mut self, correction: bool) -> Message {
        let (inst, record, region, metric) = self.record(correction);
        self.activities += 1;
        let revision = if correction {
            1 + self.below(5) as u32
        } else {
            1
        };
        let kind = Metric::ACTIVITY[metric as usize];
        let (units, cents) = self.amount(kind);
        let id = self.take_id();
        let day = self.day();
        let program = self.below(self.mix.programs as u64);
        let dims = self.dims(kind);
        let value: Value = serde_json::from_str(&format!("{units}.{cents:02}")).expect("a decimal");
        let event = json!({
            "specversion": "1.0", "id": format!("ev-{id}"), "source": format!("urn:outreach:institution:inst-{inst}"),
            "type": "org.outreach.activity.recorded.v1", "time": "2025-01-01T00:00:00Z",
            "data": {
                "record_id": format!("rec-{record}"), "revision": revision, "program_id": format!("program-{program}"),
                "facility_id": format!("facility-{region}"), "region_code": self.counties[region as usize],
                "occurred_on": day.to_string(), "metric": kind.as_str(), "value": value, "dims": dims,
            }
        });
        let winner = (revision, id, region, metric, units * 100 + cents);
        self.fold_activity((inst, record), winner);
        let m = (
            false,
            format!("rec-{record}").into_bytes(),
            serde_json::to_vec(&event).expect("json"),
        );
        self.remember(&m);
        m
    }

    /// The (institution, record, county index, metric index) an activity
    /// event is about: a known record's for a correction, else a new
    /// record's, remembered for later corrections.
    fn record(&mut self, correction: bool) -> (u32, u64, u32, u8) {
        if correction {
            self.corrections += 1;
            let i = self.below(self.records.len() as u64) as usize;
            return self.records[i];
        }
        let r = (
            self.below(40) as u32,
            self.activities,
            self.below(self.counties.len() as u64) as u32,
            self.below(Metric::ACTIVITY.len() as u64) as u8,
        );
        self.records.push(r);
        r
    }

    /// A value's units and hundredths: zero one time in twenty, and
    /// hundredths only for the metrics that allow decimals.
    fn amount(&mut self, kind: Metric) -> (i64, i64) {
        let units = if self.below(20) == 0 {
            0
        } else {
            1 + self.below(60) as i64
        };
        let cents = if kind.allows_decimals() {
            self.below(100) as i64
        } else {
            0
        };
        (units, cents)
    }

    /// The next event id: bad messages and activity events share the
    /// counter.
    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Folds an activity event into the reference: it becomes its record's
    /// winner if its (revision, event id) is higher, the ids compared as
    /// text ("ev-10" < "ev-9"), as the pipeline compares them.
    fn fold_activity(&mut self, key: (u32, u64), new: Winner) {
        let version = (new.0, format!("ev-{}", new.1));
        let wins = self
            .winners
            .get(&key)
            .is_none_or(|w| version > (w.0, format!("ev-{}", w.1)));
        if wins {
            self.winners.insert(key, new);
        }
    }

    fn dims(&mut self, m: Metric) -> Value {
        let mut d = serde_json::Map::new();
        for (key, values) in m.dims() {
            if self.below(3) == 0 {
                continue;
            }
            let v = match values {
                Some(list) => list[self.below(list.len() as u64) as usize],
                None => schemas::Specialty::ALL[self.below(30) as usize],
            };
            d.insert((*key).to_owned(), json!(v));
        }
        Value::Object(d)
    }

    fn mission(&mut self) -> Vec<Message> {
        let n = self.missions;
        self.missions += 1;
        let i = self.below(self.counties.len() as u64) as usize;
        let region = self.counties[i].clone();
        let team = 1 + self.below(15) as i64;
        let days = 1 + self.below(14) as i64;
        let start = self.day();
        let end = start + chrono::Days::new(days as u64 - 1);
        let program = self.below(self.mix.programs as u64);
        let src = format!("urn:outreach:institution:inst-{}", self.below(40));
        let dispatch = json!({
            "specversion": "1.0", "id": format!("d-{n}"), "source": src, "type": "org.outreach.mission.dispatched.v1",
            "time": "2025-01-01T00:00:00Z",
            "data": {"mission_id": format!("m-{n}"), "program_id": format!("program-{program}"), "host_facility_id": "host",
                     "region_code": region, "team_size": team, "start_date": start.to_string()}
        });
        let completion = json!({
            "specversion": "1.0", "id": format!("c-{n}"), "source": src, "type": "org.outreach.mission.completed.v1",
            "time": "2025-01-02T00:00:00Z", "data": {"mission_id": format!("m-{n}"), "end_date": end.to_string()}
        });
        for (metric, v) in [
            ("missions_dispatched", 1),
            ("experts_dispatched", team),
            ("missions_completed", 1),
            ("expert_days", team * days),
        ] {
            *self
                .missions_total
                .entry((region.clone(), metric.to_owned()))
                .or_default() += v * 100;
        }
        let key = format!("m-{n}").into_bytes();
        // Completions go first half the time: they must wait for their dispatch.
        let mut pair = vec![
            (
                true,
                key.clone(),
                serde_json::to_vec(&dispatch).expect("json"),
            ),
            (true, key, serde_json::to_vec(&completion).expect("json")),
        ];
        if self.below(2) == 0 {
            pair.reverse();
        }
        pair
    }

    fn remember(&mut self, m: &Message) {
        if self.recent.len() < 4096 {
            self.recent.push(m.clone());
        } else {
            let i = self.below(4096) as usize;
            self.recent[i] = m.clone();
        }
    }

    /// What `daily_metrics` must hold per (region, metric), in hundredths,
    /// once every message sent so far is applied; zeros left out.
    pub fn expected(&self) -> HashMap<(String, String), i64> {
        let mut t = self.missions_total.clone();
        for (_, region, metric, v) in self.winners.values().map(|w| (w.0, w.2, w.3, w.4)) {
            *t.entry((
                self.counties[region as usize].clone(),
                Metric::ACTIVITY[metric as usize].as_str().to_owned(),
            ))
            .or_default() += v;
        }
        t.retain(|_, v| *v != 0);
        t
    }
}
