//! What a run did: the figures the worker and the folder add up, for the
//! run's last log line, `outreach run --report FILE` and the benchmark.

use std::time::{Duration, Instant};

use tracing::info;

use crate::batch::Timings;
use sink::fold::Compaction;

/// What a run did, for the last log line, the benchmark and tests.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub ingest: ingest::Summary,
    pub batches: u64,
    pub accepted: u64,
    pub unchanged: u64,
    pub quarantined: u64,
    /// Time in the transform stage (ledger plan and polars roll-up).
    pub transform: Duration,
    /// Time in the database for committed batches: claim, load, write, commit.
    pub database: Duration,
    /// The database time of the writes, per table group.
    pub writes: sink::WriteTimings,
    /// Opening the batch's transaction: on SQLite, waiting for the write
    /// lock, which a fold's write phase holds while it runs.
    pub begin: Duration,
    /// Claiming offsets and loading the ledger rows.
    pub load: Duration,
    /// From the first batch's first message to the last commit.
    pub busy: Duration,
    /// When the first batch's first message arrived.
    pub first: Option<Instant>,
    /// Commit time minus Kafka message timestamp, per message.
    pub freshness: Freshness,
    /// Compactions this process ran, the delta rows they folded, and the
    /// time they took (beside the batches, on a connection of their own).
    pub compaction: Compaction,
    /// From the first batch's first message to the end of the fold that
    /// followed the last commit (`--until-caught-up`); zero otherwise.
    pub settled: Duration,
    /// Time batches waited for the fold, the pending deltas being over
    /// `database.max_pending_deltas`.
    pub backpressure: Duration,
}

/// A run's figures as one value: the fields of its last log line, and what
/// `outreach run --report FILE` writes (read back by `outreach bench`).
/// Times in milliseconds.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Figures {
    pub messages: u64,
    pub accepted: u64,
    pub unchanged: u64,
    pub quarantined: u64,
    pub batches: u64,
    pub fenced: u64,
    pub rebalances: u64,
    /// From the first batch's first message to the last commit.
    pub busy_ms: u64,
    pub decode_ms: u64,
    pub transform_ms: u64,
    pub database_ms: u64,
    /// The database time split: opening transactions, claiming and
    /// loading, then the writes per table group.
    pub begin_ms: u64,
    pub load_ms: u64,
    pub ledger_ms: u64,
    pub daily_ms: u64,
    pub regional_ms: u64,
    pub program_ms: u64,
    /// Commit time minus Kafka message timestamp.
    pub freshness_p50_ms: u64,
    pub freshness_p99_ms: u64,
    pub freshness_max_ms: u64,
    pub compactions: u64,
    pub compacted_deltas: u64,
    pub compaction_ms: u64,
    /// To the end of the fold after the last commit (`--until-caught-up`).
    pub settled_ms: u64,
    /// Batches' wait for the fold (pending deltas over budget).
    #[serde(default)]
    pub backpressure_ms: u64,
}

impl Report {
    /// A committed batch's timings, added up.
    pub fn add(&mut self, t: &Timings) {
        self.begin += t.begin;
        self.load += t.load;
        self.transform += t.transform;
        self.database += t.database;
        self.writes += t.writes;
    }

    /// The run's figures as one value.
    pub fn figures(&self) -> Figures {
        let ms = |d: Duration| d.as_millis() as u64;
        Figures {
            messages: self.ingest.messages,
            accepted: self.accepted,
            unchanged: self.unchanged,
            quarantined: self.quarantined,
            batches: self.batches,
            fenced: self.ingest.fenced,
            rebalances: self.ingest.rebalances,
            busy_ms: ms(self.busy),
            decode_ms: self.ingest.decode_ns / 1_000_000,
            transform_ms: ms(self.transform),
            database_ms: ms(self.database),
            begin_ms: ms(self.begin),
            load_ms: ms(self.load),
            ledger_ms: ms(self.writes.ledger),
            daily_ms: ms(self.writes.daily),
            regional_ms: ms(self.writes.regional),
            program_ms: ms(self.writes.program),
            freshness_p50_ms: self.freshness.quantile(0.50),
            freshness_p99_ms: self.freshness.quantile(0.99),
            freshness_max_ms: self.freshness.max(),
            compactions: self.compaction.runs,
            compacted_deltas: self.compaction.deltas,
            compaction_ms: ms(self.compaction.time),
            settled_ms: ms(self.settled),
            backpressure_ms: ms(self.backpressure),
        }
    }

    pub(super) fn log(&self) {
        let f = self.figures();
        info!(
            messages = f.messages,
            accepted = f.accepted,
            unchanged = f.unchanged,
            quarantined = f.quarantined,
            batches = f.batches,
            fenced = f.fenced,
            rebalances = f.rebalances,
            busy_ms = f.busy_ms,
            decode_ms = f.decode_ms,
            transform_ms = f.transform_ms,
            database_ms = f.database_ms,
            begin_ms = f.begin_ms,
            load_ms = f.load_ms,
            ledger_ms = f.ledger_ms,
            daily_ms = f.daily_ms,
            regional_ms = f.regional_ms,
            program_ms = f.program_ms,
            freshness_p50_ms = f.freshness_p50_ms,
            freshness_p99_ms = f.freshness_p99_ms,
            freshness_max_ms = f.freshness_max_ms,
            compactions = f.compactions,
            compacted_deltas = f.compacted_deltas,
            compaction_ms = f.compaction_ms,
            settled_ms = f.settled_ms,
            backpressure_ms = f.backpressure_ms,
            "pipeline stopped"
        );
    }
}

/// A histogram of milliseconds: 1 ms buckets up to a minute, then one
/// bucket for everything slower. Fixed size, whatever the backlog.
#[derive(Debug, Clone)]
pub struct Freshness {
    buckets: Vec<u64>,
    max: u64,
}

impl Default for Freshness {
    fn default() -> Self {
        Freshness {
            buckets: vec![0; 60_001],
            max: 0,
        }
    }
}

impl Freshness {
    pub fn record(&mut self, ms: u64) {
        self.buckets[(ms as usize).min(60_000)] += 1;
        self.max = self.max.max(ms);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The smallest value with at least `q` of the samples at or below it.
    pub fn quantile(&self, q: f64) -> u64 {
        let n = self.count();
        if n == 0 {
            return 0;
        }
        let want = ((n as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (ms, c) in self.buckets.iter().enumerate() {
            seen += c;
            if seen >= want {
                return ms as u64;
            }
        }
        self.max
    }

    pub fn max(&self) -> u64 {
        self.max
    }
}
