//! A deterministic stream of events with duplicates, corrections,
//! withdrawals, reordered revisions, completions before dispatches and bad
//! messages (the benchmark's generator), the reference fold of what the
//! tables must say, and the checks against it.

use std::collections::BTreeMap;

use outreach::bench::generator::{Generator, Mix};

use super::Record;
use super::events::{ACTIVITIES, MISSIONS};

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

/// County codes of the shipped catalogue, Morocco's included.
const COUNTIES: [&str; 6] = ["620921", "620922", "130184", "141032", "110101", "MA-01"];

pub struct Workload {
    pub records: Vec<Record>,
    /// Expected leaf totals: (region_code, metric) → hundredths, zeros left out.
    pub expected: BTreeMap<(String, String), i64>,
    pub bad: usize,
}

/// About `n` messages from the benchmark's own generator (so the tests and
/// `outreach bench` exercise one stream): 10 % redeliveries, 5 % corrections
/// (older revisions arriving late, withdrawals), 1 % bad messages, missions
/// whose completion comes first half the time, dates over ten years; with
/// the generator's fold of what the tables must hold.
pub fn generate(seed: u64, n: usize) -> Workload {
    let mix = Mix {
        seed,
        bad: 1.0,
        duplicates: 10.0,
        corrections: 5.0,
        programs: 3,
        late: 100.0,
        years: 10,
        recent_days: 90,
    };
    let mut g = Generator::new(mix, COUNTIES.map(String::from).to_vec());
    let records = g
        .next_batch(n)
        .into_iter()
        .map(|(mission, key, value)| Record {
            topic: if mission { MISSIONS } else { ACTIVITIES }.to_owned(),
            key: Some(key),
            value: Some(value),
            headers: Vec::new(),
            partition: None,
            timestamp_ms: None,
        })
        .collect();
    Workload {
        records,
        expected: g.expected().into_iter().collect(),
        bad: g.bad as usize,
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
    let want = &w.expected;
    let deadline = std::time::Instant::now() + limit;
    while leaf_totals(pool).await != *want && std::time::Instant::now() < deadline {
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
    assert_eq!(
        got, w.expected,
        "daily_metrics per region and metric equals the reference fold"
    );
    assert_eq!(
        quarantined as usize, w.bad,
        "each bad message quarantined once"
    );
}
