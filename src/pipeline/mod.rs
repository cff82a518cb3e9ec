//! The pipeline: ingest feeds batches through a bounded channel to the
//! worker, which applies each one in a single database transaction and
//! answers with an [`Ack`](ingest::Ack) that moves Kafka's offset hint
//! forward; beside them the folder folds the roll-ups' deltas (`sink::fold`
//! decides when). This file wires the tasks together; `database` connects,
//! `worker` applies batches, `report` adds up what a run did.

mod database;
mod report;
mod worker;

pub use database::{connect, open_database};
pub use report::{Figures, Freshness, Report};

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ingest::{DeadLetters, Mode};
use schemas::Decoder;
use sink::Sink;
use sink::fold::{Budget, Compaction, Pressure, fold_every, settle};
use tokio::sync::mpsc;
use tracing::info;
use transform::Transform;

use crate::settings::Settings;

/// Connects, migrates, and runs until `shutdown` (or drained, per `mode`).
pub async fn run(
    settings: &Settings,
    mode: Mode,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<Report> {
    let regions = Arc::new(settings.regions()?);
    let sink = open_database(settings, &regions).await?;
    let transform = Arc::new(Transform::new(&regions).context("building the region closure")?);
    let decoder = Decoder::new(regions, settings.ingest.max_message_bytes);
    let dead_letters =
        DeadLetters::new(&settings.kafka).context("creating the dead-letter producer")?;
    let health = serve_health(settings).await?;
    let budget = budget(settings, mode);
    let folder = Folder::start(&sink, settings, budget);
    let (batches_tx, batches_rx) = mpsc::channel(settings.ingest.channel_capacity);
    let (acks_tx, acks_rx) = mpsc::unbounded_channel();
    // A worker that stops (a fatal error, a panic) also stops ingest, which
    // would otherwise wait for acknowledgements that never come.
    let worker_done = Arc::new(tokio::sync::Notify::new());
    let worker = spawn_notifying(
        worker_done.clone(),
        worker::apply_all(
            sink.clone(),
            transform,
            dead_letters,
            batches_rx,
            acks_tx,
            health.clone(),
            Pressure::new(folder.measure.clone(), budget),
        ),
    );
    let shutdown = async move {
        tokio::select! {
            _ = shutdown => {}
            _ = worker_done.notified() => {}
        }
    };
    let links = ingest::Links {
        batches: batches_tx,
        acks: acks_rx,
        assigned: health.assigned.clone(),
        probe: health.probe.clone(),
        backlog: Arc::new(ingest::Backlog::default()),
    };
    let ingested = ingest(settings, mode, decoder, links, shutdown).await;
    let mut report = worker.await.context("the batch worker panicked")??;
    if mode == Mode::UntilCaughtUp {
        info!("caught up: finishing the fold in progress, if any, then folding the rest");
    }
    report.compaction = folder.stop().await?;
    report.ingest = ingested.context("ingest stopped")?;
    if mode == Mode::UntilCaughtUp {
        settle_backfill(&sink, &mut report).await?;
    }
    report.log();
    Ok(report)
}

/// A backfill leaves the tables folded, not only visible: one last fold
/// after the last commit, counted in the run's figures.
async fn settle_backfill(sink: &Sink, report: &mut Report) -> anyhow::Result<()> {
    let t = Instant::now();
    let done = settle(sink).await.context("folding the last deltas")?;
    report.compaction.add(done, t.elapsed());
    report.settled = report.first.map(|f| f.elapsed()).unwrap_or_default();
    Ok(())
}

/// A backfill does not wait for the fold: it ends with one, and one large
/// fold costs less per row than many (1.14 M messages applied and folded
/// in 178 s waiting at the default budget, 64 s when the budget let it run
/// ahead). The budget bounds what a live load leaves pending for readers.
fn budget(settings: &Settings, mode: Mode) -> Budget {
    match mode {
        Mode::Follow => Budget(settings.database.max_pending_deltas),
        Mode::UntilCaughtUp => Budget(0),
    }
}

/// The folder task ([`fold_every`]), and the pending deltas it measures.
struct Folder {
    task: tokio::task::JoinHandle<Compaction>,
    stop: tokio::sync::oneshot::Sender<()>,
    measure: sink::fold::Measure,
}

impl Folder {
    fn start(sink: &Sink, settings: &Settings, budget: Budget) -> Folder {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (measured, measure) = tokio::sync::watch::channel(None);
        let task = tokio::spawn(fold_every(
            sink.clone(),
            Duration::from_millis(settings.database.compact_interval_ms.max(1)),
            budget,
            measured,
            stopped,
        ));
        Folder {
            task,
            stop,
            measure,
        }
    }

    /// Stops it after the fold in progress, if any; what it folded.
    async fn stop(self) -> anyhow::Result<Compaction> {
        let _ = self.stop.send(());
        self.task.await.context("the compactor panicked")
    }
}

/// Runs ingest until `shutdown` or caught up, with the progress bar of a
/// backfill (`mode` until caught up).
async fn ingest(
    settings: &Settings,
    mode: Mode,
    decoder: Decoder,
    links: ingest::Links,
    shutdown: impl Future<Output = ()>,
) -> Result<ingest::Summary, ingest::Error> {
    let (ingest_done, progress_done) = tokio::sync::oneshot::channel();
    let progress = (mode == Mode::UntilCaughtUp).then(|| {
        tokio::spawn(crate::progress::catching_up(
            links.backlog.clone(),
            settings.log.format == crate::settings::LogFormat::Pretty,
            progress_done,
        ))
    });
    let ingested = ingest::run(
        &settings.kafka,
        &settings.ingest,
        decoder,
        database::offset_lookup(settings.database.clone()),
        links,
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
    ingested
}

/// The operator's endpoint (`http.address`; none if empty) and the
/// metrics recorder.
async fn serve_health(settings: &Settings) -> anyhow::Result<Arc<crate::http::Health>> {
    let health = Arc::new(crate::http::Health::default());
    crate::http::recorder();
    health.database(true);
    if !settings.http.address.is_empty() {
        crate::http::serve(&settings.http.address, health.clone()).await?;
    }
    Ok(health)
}

/// Spawns `work`, and wakes `done` when it ends, however it ends.
fn spawn_notifying<T: Send + 'static>(
    done: Arc<tokio::sync::Notify>,
    work: impl Future<Output = T> + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    let done = NotifyOnDrop(done);
    tokio::spawn(async move {
        let _done = done;
        work.await
    })
}

/// Wakes whoever waits on the `Notify` when dropped, however the owner ends.
struct NotifyOnDrop(Arc<tokio::sync::Notify>);

impl Drop for NotifyOnDrop {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}
