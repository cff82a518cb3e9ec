//! The pipeline: ingest feeds batches through a bounded channel to the
//! worker, which applies each one in a single database transaction and
//! answers with an [`Ack`] that moves Kafka's offset hint forward.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ingest::{Ack, Batch, DeadLetters, Mode, OffsetLookup};
use schemas::Decoder;
use sink::Sink;
use tokio::sync::mpsc;
use tracing::{info, warn};
use transform::Transform;

use crate::batch::{Applied, ApplyError, Timings, apply};
use crate::fold::Compaction;
use crate::fold::{Budget, Pressure, fold_every, settle};
use crate::settings::Settings;

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

    fn log(&self) {
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

/// Connects, migrates, and runs until `shutdown` (or drained, per `mode`).
pub async fn run(
    settings: &Settings,
    mode: Mode,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<Report> {
    let regions = Arc::new(settings.regions()?);
    let sink = open_database(settings, &regions).await?;
    let transform = Arc::new(
        Transform::for_periods(&regions, sink.periods()).context("building the region closure")?,
    );
    let decoder = Decoder::new(regions, settings.ingest.max_message_bytes);
    let dead_letters =
        DeadLetters::new(&settings.kafka).context("creating the dead-letter producer")?;

    let health = Arc::new(crate::http::Health::default());
    crate::http::recorder();
    health.database(true);
    if !settings.http.address.is_empty() {
        crate::http::serve(&settings.http.address, health.clone()).await?;
    }

    let (stop_compacting, stopped) = tokio::sync::oneshot::channel::<()>();
    // A backfill does not wait for the fold: it ends with one, and one
    // large fold costs less per row than many (1.14 M messages applied and
    // folded in 178 s waiting at the default budget, 64 s when the budget
    // let it run ahead). The budget bounds what a live load leaves pending
    // for readers.
    let budget = match mode {
        Mode::Follow => Budget(settings.database.max_pending_deltas),
        Mode::UntilCaughtUp => Budget(0),
    };
    let (measured, measure) = tokio::sync::watch::channel(None);
    let compactor = tokio::spawn(fold_every(
        sink.clone(),
        Duration::from_millis(settings.database.compact_interval_ms.max(1)),
        budget,
        measured,
        stopped,
    ));
    let (batches_tx, batches_rx) = mpsc::channel(settings.ingest.channel_capacity);
    let (acks_tx, acks_rx) = mpsc::unbounded_channel();
    // A worker that stops (a fatal error, a panic) also stops ingest, which
    // would otherwise wait for acknowledgements that never come.
    let worker_done = Arc::new(tokio::sync::Notify::new());
    let worker = tokio::spawn({
        let done = NotifyOnDrop(worker_done.clone());
        let work = apply_all(
            sink.clone(),
            transform,
            dead_letters,
            batches_rx,
            acks_tx,
            health.clone(),
            Pressure::new(measure, budget),
        );
        async move {
            let _done = done;
            work.await
        }
    });
    let shutdown = async move {
        tokio::select! {
            _ = shutdown => {}
            _ = worker_done.notified() => {}
        }
    };
    let backlog = Arc::new(ingest::Backlog::default());
    let (ingest_done, progress_done) = tokio::sync::oneshot::channel();
    let progress = (mode == Mode::UntilCaughtUp).then(|| {
        tokio::spawn(crate::progress::catching_up(
            backlog.clone(),
            settings.log.format == crate::settings::LogFormat::Pretty,
            progress_done,
        ))
    });
    let ingested = ingest::run(
        &settings.kafka,
        &settings.ingest,
        decoder,
        offset_lookup(settings.database.clone()),
        ingest::Links {
            batches: batches_tx,
            acks: acks_rx,
            assigned: health.assigned.clone(),
            probe: health.probe.clone(),
            backlog,
        },
        mode,
        shutdown,
    )
    .await;
    if let Some(progress) = progress {
        // The last figures said, and awaited, so that the bar is off the
        // screen before anything else (an error) is printed.
        let _ = ingest_done.send(());
        let _ = progress.await;
    }
    let mut report = worker.await.context("the batch worker panicked")??;
    let _ = stop_compacting.send(());
    if mode == Mode::UntilCaughtUp {
        info!("caught up: finishing the fold in progress, if any, then folding the rest");
    }
    report.compaction = compactor.await.context("the compactor panicked")?;
    report.ingest = ingested.context("ingest stopped")?;
    if mode == Mode::UntilCaughtUp {
        // A backfill leaves the tables folded, not only visible.
        let t = Instant::now();
        let done = settle(&sink).await?;
        report.compaction.add(done, t.elapsed());
        report.settled = report.first.map(|f| f.elapsed()).unwrap_or_default();
    }
    report.log();
    Ok(report)
}

/// Wakes whoever waits on the `Notify` when dropped, however the owner ends.
struct NotifyOnDrop(Arc<tokio::sync::Notify>);

impl Drop for NotifyOnDrop {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

/// Connects, migrates (or, with `database.migrate = false`, checks the
/// schema's version) and writes the region table.
pub async fn open_database(
    settings: &Settings,
    regions: &schemas::Regions,
) -> anyhow::Result<Sink> {
    let sink = connect(&settings.database).await?;
    if settings.database.migrate {
        sink.migrate().await.context("applying migrations")?;
    } else {
        sink.check_migrated().await?;
    }
    sink.sync_regions(regions)
        .await
        .context("writing the region table")?;
    Ok(sink)
}

/// Connects to the database, waiting for it while it starts
/// (`database.connect_retry_secs`); says so once, then every 30 s.
pub async fn connect(settings: &sink::Settings) -> anyhow::Result<Sink> {
    let mut delay = Duration::from_millis(500);
    let deadline = Instant::now() + Duration::from_secs(settings.connect_retry_secs);
    let mut said: Option<Instant> = None;
    loop {
        match Sink::connect(settings).await {
            Ok(s) => return Ok(s),
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                if said.is_none_or(|t| t.elapsed() >= Duration::from_secs(30)) {
                    said = Some(Instant::now());
                    let left = deadline.saturating_duration_since(Instant::now()).as_secs();
                    warn!("{e}; retrying for up to {left} s (database.connect_retry_secs)");
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            // It names the address and the setting already.
            Err(e @ sink::Error::Connect { .. }) => return Err(e.into()),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("connecting to the database at {}", settings.redacted_url())
                });
            }
        }
    }
}

/// Reads stored offsets on a thread and runtime of its own: the rebalance
/// callback that calls it runs inside the Kafka client's poll.
fn offset_lookup(settings: sink::Settings) -> OffsetLookup {
    Arc::new(move |parts: &[(String, i32)]| {
        let (settings, parts) = (settings.clone(), parts.to_vec());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            Ok(rt.block_on(Sink::read_offsets(&settings, &parts))?)
        })
        .join()
        .unwrap_or_else(|_| Err("offset look-up thread panicked".into()))
    })
}

/// The worker: one transaction per batch, retried while the failure is
/// transient; a fenced batch is dropped and reported.
async fn apply_all(
    sink: Sink,
    transform: Arc<Transform>,
    mut dead_letters: DeadLetters,
    mut batches: mpsc::Receiver<Batch>,
    acks: mpsc::UnboundedSender<Ack>,
    health: Arc<crate::http::Health>,
    mut pressure: Pressure,
) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let mut first: Option<Instant> = None;
    while let Some(batch) = batches.recv().await {
        report.backpressure += pressure.wait().await;
        let first = *first.get_or_insert(batch.started);
        report.first = Some(first);
        let mut delay = Duration::from_millis(100);
        loop {
            match apply(&sink, &transform, Some(&mut dead_letters), &batch).await {
                Ok(done) => {
                    report.add(&done.timings);
                    pressure.appended(done.cells as u64);
                    report.batches += 1;
                    report.busy = first.elapsed();
                    health.database(true);
                    record_metrics(&batch, &done);
                    let now_ms = chrono::Utc::now().timestamp_millis();
                    let freshness = metrics::histogram!("outreach_freshness_seconds");
                    let stamps = batch
                        .accepted
                        .iter()
                        .map(|a| &a.position)
                        .chain(batch.rejected.iter().map(|r| &r.position));
                    for ts in stamps.filter_map(|p| p.timestamp_ms) {
                        let ms = now_ms.saturating_sub(ts).max(0) as u64;
                        report.freshness.record(ms);
                        freshness.record(ms as f64 / 1000.0);
                    }
                    report.accepted += done.accepted;
                    report.unchanged += done.unchanged;
                    report.quarantined += done.quarantined;
                    info!(
                        messages = batch.len(),
                        accepted = done.accepted,
                        unchanged = done.unchanged,
                        quarantined = done.quarantined,
                        cells = done.cells,
                        ms = batch.started.elapsed().as_millis() as u64,
                        "batch committed"
                    );
                    let _ = acks.send(Ack::Committed(batch.ranges.clone()));
                    break;
                }
                Err(ApplyError::Sink(e @ sink::Error::Fenced { .. })) => {
                    warn!(error = %e, "batch fenced");
                    metrics::counter!("outreach_batches_fenced_total").increment(1);
                    let _ = acks.send(Ack::Fenced);
                    break;
                }
                Err(e) if e.is_retryable() => {
                    warn!(error = %e, retry_in = ?delay, "batch failed; retrying");
                    metrics::counter!("outreach_batch_retries_total").increment(1);
                    if matches!(e, ApplyError::Sink(_)) {
                        health.database(false);
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                Err(e) => return Err(anyhow::Error::new(e).context("applying a batch")),
            }
        }
    }
    Ok(report)
}

/// Counters and latencies of one committed batch.
fn record_metrics(batch: &Batch, done: &Applied) {
    metrics::counter!("outreach_batches_total").increment(1);
    metrics::counter!("outreach_events_accepted_total").increment(done.accepted);
    metrics::counter!("outreach_events_unchanged_total").increment(done.unchanged);
    for code in &done.codes {
        metrics::counter!("outreach_quarantined_total", "error_code" => code.as_str()).increment(1);
    }
    metrics::histogram!("outreach_batch_seconds").record(batch.started.elapsed().as_secs_f64());
    metrics::histogram!("outreach_transaction_seconds")
        .record(done.timings.transaction().as_secs_f64());
    metrics::histogram!("outreach_batch_messages").record(batch.len() as f64);
}
