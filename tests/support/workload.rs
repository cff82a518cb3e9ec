//! A deterministic stream of events with duplicates, corrections,
//! withdrawals, reordered revisions, completions before dispatches and bad
//! messages, and an independent reference fold of what the tables must say.

use std::collections::BTreeMap;

use serde_json::json;

use super::Record;
use super::events::*;

/// xorshift: reproducible without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

const COUNTIES: [&str; 6] = ["620921", "620922", "130184", "141032", "110101", "MA-01"];
const PROGRAMS: [&str; 3] = [
    "healthy-china-tour-2023",
    "pkufh-county-assistance",
    "aid-team-morocco",
];

pub struct Workload {
    pub records: Vec<Record>,
    /// Expected leaf totals: (region_code, metric) → hundredths.
    pub expected: BTreeMap<(String, String), i64>,
    pub bad: usize,
}

impl Workload {
    /// The expected leaf totals without the zeros (the tables' view of them).
    pub fn nonzero_expected(&self) -> BTreeMap<(String, String), i64> {
        self.expected
            .iter()
            .filter(|(_, v)| **v != 0)
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}

/// `n` activity events (about 10 % redelivered, 5 % corrections, 1 % bad)
/// and `n / 50` missions, shuffled within a window so that revisions and
/// completions arrive out of order.
pub fn generate(seed: u64, n: usize) -> Workload {
    let mut rng = Rng::new(seed);
    let mut records = Vec::new();
    // record_id → (revision, event id, region, metric, value): the reference winner.
    let mut facts: BTreeMap<String, (u32, String, String, String, i64)> = BTreeMap::new();
    let mut bad = 0;
    let mut id = 0u64;
    for i in 0..n {
        id += 1;
        let r = rng.below(100);
        if r < 1 {
            bad += 1;
            let mut rec = activity_record(&activity(
                "h1",
                &format!("x{id}"),
                "bad",
                "surgeries",
                json!(-1),
                "2024-01-01",
                "620921",
            ));
            rec.key = Some(format!("bad-{id}").into_bytes());
            records.push(rec);
            continue;
        }
        if r < 11 && !records.is_empty() {
            let again = rng.pick(&records).clone();
            records.push(again); // redelivery
            continue;
        }
        let record_id = if r < 16 && !facts.is_empty() {
            let keys: Vec<&String> = facts.keys().collect();
            (*rng.pick(&keys)).clone() // a correction (or an older revision)
        } else {
            format!("rec-{i}")
        };
        let (region, metric) = match facts.get(&record_id) {
            Some(f) => (f.2.clone(), f.3.clone()),
            None => (
                rng.pick(&COUNTIES).to_string(),
                rng.pick(&[
                    "outpatient_visits",
                    "surgeries",
                    "lectures",
                    "medicines_donated_value",
                ])
                .to_string(),
            ),
        };
        let revision = 1 + rng.below(4) as u32;
        let value = if rng.below(10) == 0 {
            0
        } else {
            1 + rng.below(50) as i64
        };
        let cents = if metric == "medicines_donated_value" {
            rng.below(100) as i64
        } else {
            0
        };
        let day = format!(
            "{}-{:02}-{:02}",
            2015 + rng.below(10),
            1 + rng.below(12),
            1 + rng.below(28)
        );
        let event_id = format!("e{id}");
        let amount: serde_json::Value =
            serde_json::from_str(&format!("{value}.{cents:02}")).unwrap();
        let mut v = activity("h1", &event_id, &record_id, &metric, amount, &day, &region);
        v = with(v, "revision", json!(revision));
        v = with(v, "program_id", json!(PROGRAMS[(id % 3) as usize]));
        if cents == 0 {
            v = with(v, "value", json!(value));
        }
        let total = value * 100 + cents;
        let wins = facts
            .get(&record_id)
            .is_none_or(|f| (revision, event_id.as_str()) > (f.0, f.1.as_str()));
        if wins {
            facts.insert(
                record_id.clone(),
                (revision, event_id.clone(), region, metric, total),
            );
        }
        records.push(activity_record(&v));
    }
    let mut expected: BTreeMap<(String, String), i64> = BTreeMap::new();
    for (_, (_, _, region, metric, value)) in facts {
        *expected.entry((region, metric)).or_default() += value;
    }
    for m in 0..n / 50 {
        let region = rng.pick(&COUNTIES).to_string();
        let team = 1 + rng.below(9) as i64;
        let days = 1 + rng.below(20) as i64;
        let start = chrono::NaiveDate::from_ymd_opt(
            2016 + rng.below(8) as i32,
            1 + rng.below(12) as u32,
            1 + rng.below(28) as u32,
        )
        .unwrap();
        let end = start + chrono::Days::new(days as u64 - 1);
        let mission = format!("m{m}");
        let d = mission_record(&dispatch(
            "h2",
            &format!("d{m}"),
            &mission,
            &region,
            team as u32,
            &start.to_string(),
            "2024-01-01T00:00:00Z",
        ));
        let c = mission_record(&completion(
            "h2",
            &format!("c{m}"),
            &mission,
            &end.to_string(),
            "2024-01-02T00:00:00Z",
        ));
        let at = rng.below(records.len() as u64 + 1) as usize;
        let at2 = rng.below(records.len() as u64 + 1) as usize;
        records.insert(at, d);
        records.insert(at2, c); // before or after its dispatch
        for (metric, v) in [
            ("missions_dispatched", 1),
            ("experts_dispatched", team),
            ("missions_completed", 1),
            ("expert_days", team * days),
        ] {
            *expected
                .entry((region.clone(), metric.to_string()))
                .or_default() += v * 100;
        }
    }
    // Local shuffles: revisions of one record arrive out of order.
    for i in 0..records.len() {
        let j = (i + rng.below(20) as usize).min(records.len() - 1);
        records.swap(i, j);
    }
    Workload {
        records,
        expected,
        bad,
    }
}

/// `daily_metrics` per region and metric, in hundredths, zeros left out.
pub async fn leaf_totals(pool: &sqlx::PgPool) -> BTreeMap<(String, String), i64> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT region_code, metric, (sum(value) * 100)::bigint::text FROM outreach.daily_metrics GROUP BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(r, m, v)| ((r, m), v.parse().unwrap()))
        .filter(|(_, v)| *v != 0)
        .collect()
}

/// Polls until a running pipeline has applied the whole workload (the leaf
/// totals equal the reference), then checks everything with `assert_matches`.
pub async fn wait_until_matches(pool: &sqlx::PgPool, w: &Workload, limit: std::time::Duration) {
    let want = w.nonzero_expected();
    let deadline = std::time::Instant::now() + limit;
    while leaf_totals(pool).await != want && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert_matches(pool, w).await;
}

/// Compares the leaf totals of `daily_metrics` with the reference, and the
/// country year totals with their sum.
pub async fn assert_matches(pool: &sqlx::PgPool, w: &Workload) {
    let quarantined: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT key) FROM outreach.quarantine")
            .fetch_one(pool)
            .await
            .unwrap();
    compare(leaf_totals(pool).await, quarantined, w);
    super::assert_consistent(pool).await;
}

/// [`assert_matches`] for the SQLite backend (REAL values: rounded to
/// hundredths; no schema prefix).
pub async fn assert_matches_sqlite(pool: &sqlx::SqlitePool, w: &Workload) {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT region_code, metric, CAST(round(sum(value) * 100) AS INTEGER) FROM daily_metrics GROUP BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let got = rows
        .into_iter()
        .map(|(r, m, v)| ((r, m), v))
        .filter(|(_, v)| *v != 0)
        .collect();
    let quarantined: i64 = sqlx::query_scalar("SELECT count(DISTINCT key) FROM quarantine")
        .fetch_one(pool)
        .await
        .unwrap();
    compare(got, quarantined, w);
    super::assert_consistent_sqlite(pool).await;
}

/// Leaf totals (zeros left out) and distinct quarantined keys against the
/// workload's reference.
fn compare(got: BTreeMap<(String, String), i64>, quarantined: i64, w: &Workload) {
    let want = w.nonzero_expected();
    assert_eq!(
        got, want,
        "daily_metrics per region and metric equals the reference fold"
    );
    assert_eq!(
        quarantined as usize, w.bad,
        "each bad message quarantined once"
    );
}
