//! The operator's endpoint (`http.address`): `/metrics` in Prometheus text
//! format, `/healthz` (the process is alive), `/readyz` (the database answers,
//! a broker is connected, every subscribed topic exists and this member has
//! partitions to work on; the body says which is not so).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// What readiness is made of, updated by the stages as they go.
#[derive(Debug, Default)]
pub struct Health {
    /// Partitions assigned to this member (set by ingest).
    pub assigned: Arc<AtomicUsize>,
    /// The last database operation succeeded (set by the worker).
    pub database_ok: AtomicBool,
    /// The cluster answered the last metadata probe, and the subscribed
    /// topics it says do not exist (set by ingest).
    pub probe: ingest::probe::Findings,
}

impl Health {
    /// Whether the last database operation succeeded: readiness, and the
    /// `outreach_database_reachable` gauge that alerts watch.
    pub fn database(&self, ok: bool) {
        self.database_ok.store(ok, Ordering::Relaxed);
        metrics::gauge!("outreach_database_reachable").set(if ok { 1.0 } else { 0.0 });
    }
}

#[derive(Clone)]
struct AppState {
    metrics: PrometheusHandle,
    health: Arc<Health>,
}

/// Histogram buckets in seconds: a live batch's latency (milliseconds) up to
/// a backfill's freshness (an hour), so that neither falls into `+Inf`.
const SECONDS: [f64; 19] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1200.0, 1800.0, 3600.0,
];

/// `outreach_batch_messages` counts messages, up to `ingest.batch_max_messages`.
const MESSAGES: [f64; 9] = [
    1.0, 10.0, 100.0, 1_000.0, 2_000.0, 5_000.0, 10_000.0, 20_000.0, 50_000.0,
];

/// The HELP line of every metric, as `/metrics` shows it, one list per kind.
fn describe() {
    describe_counters();
    describe_gauges();
    describe_histograms();
}

fn describe_counters() {
    use metrics::describe_counter as counter;
    counter!(
        "outreach_messages_total",
        "Messages read from Kafka, per topic."
    );
    counter!(
        "outreach_events_accepted_total",
        "Events applied to the ledger (new records and newer revisions)."
    );
    counter!(
        "outreach_events_unchanged_total",
        "Events that changed nothing: redeliveries and superseded revisions."
    );
    counter!(
        "outreach_quarantined_total",
        "Messages refused and kept in the quarantine, per error_code."
    );
    counter!("outreach_batches_total", "Batches committed.");
    counter!(
        "outreach_batches_fenced_total",
        "Batches refused because another replica wrote their partition."
    );
    counter!(
        "outreach_batch_retries_total",
        "Batches retried after a transient database or dead-letter error."
    );
    counter!(
        "outreach_rebalances_total",
        "Consumer group rebalances seen."
    );
    counter!(
        "outreach_compactions_total",
        "Folds of pending deltas into the stored cells done by this replica."
    );
    counter!(
        "outreach_compacted_deltas_total",
        "Delta rows folded into the stored cells."
    );
    counter!(
        "outreach_compactions_skipped_total",
        "Folds skipped because another replica (or a rebuild) held the fold's lock."
    );
    counter!(
        "outreach_compaction_failures_total",
        "Folds that failed; their deltas stay visible and are folded by the next."
    );
}

fn describe_gauges() {
    use metrics::{Unit, describe_gauge as gauge};
    gauge!(
        "outreach_assigned_partitions",
        "Partitions this replica holds."
    );
    gauge!(
        "outreach_database_reachable",
        "1 when the last batch reached the database; 0 while batches retry against it."
    );
    gauge!(
        "outreach_fold_held_cells",
        "Cells whose sum would exceed a bigint: their deltas stay pending (the views stay exact) and the log names each (docs/operations.md, \"A held cell\")."
    );
    gauge!(
        "outreach_broker_reachable",
        "1 when the cluster answered the last metadata probe."
    );
    gauge!(
        "outreach_missing_topics",
        "Subscribed topics the cluster says do not exist."
    );
    gauge!(
        "outreach_consumer_lag",
        "Messages between the group's committed offset and the high watermark, per partition."
    );
    gauge!(
        "outreach_pending_deltas",
        "Delta rows waiting for the fold, per table: what readers pay for on top of the cells."
    );
    gauge!(
        "outreach_oldest_pending_delta_seconds",
        Unit::Seconds,
        "Age of the oldest pending regional or program delta (0: none)."
    );
    gauge!(
        "outreach_backpressure",
        "1 while batches wait for the fold (pending deltas over database.max_pending_deltas)."
    );
}

fn describe_histograms() {
    use metrics::{Unit, describe_histogram as histogram};
    histogram!(
        "outreach_batch_seconds",
        Unit::Seconds,
        "A batch's first message read to its commit."
    );
    histogram!(
        "outreach_transaction_seconds",
        Unit::Seconds,
        "A batch's time in the database."
    );
    histogram!("outreach_batch_messages", "Messages per batch.");
    histogram!(
        "outreach_freshness_seconds",
        Unit::Seconds,
        "Commit time minus the Kafka message timestamp, per message."
    );
    histogram!(
        "outreach_compaction_seconds",
        Unit::Seconds,
        "Duration of each fold."
    );
    histogram!(
        "outreach_backpressure_seconds",
        Unit::Seconds,
        "How long batches waited for the fold, per wait."
    );
}

/// Installs the Prometheus recorder (once per process) and returns its handle.
pub fn recorder() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&SECONDS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("outreach_batch_messages".into()),
                        &MESSAGES,
                    )
                })
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // A second recorder (tests running pipelines in one process) is ignored.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            // Histograms keep every sample until drained, which only a
            // scrape or this upkeep does: without it, a backlog nobody
            // scrapes grew memory by a sample per message.
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(std::time::Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                })
                .expect("a thread can be started");
            handle
        })
        .clone()
}

/// Binds `address` and serves until the process ends; returns the bound address.
pub async fn serve(address: &str, health: Arc<Health>) -> anyhow::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("invalid setting http.address: cannot listen on {address}"))?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(AppState {
            metrics: recorder(),
            health,
        });
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "http endpoint stopped");
        }
    });
    tracing::info!(address = %bound, "serving /metrics, /healthz, /readyz");
    Ok(bound)
}

async fn metrics(State(s): State<AppState>) -> String {
    s.metrics.render()
}

async fn ready(State(s): State<AppState>) -> (StatusCode, String) {
    let partitions = s.health.assigned.load(Ordering::Relaxed);
    let database = s.health.database_ok.load(Ordering::Relaxed);
    let broker = s.health.probe.reachable.load(Ordering::Relaxed);
    let missing = s
        .health
        .probe
        .missing
        .lock()
        .expect("not poisoned")
        .join(",");
    let mut body = format!(
        "partitions_assigned {partitions}\ndatabase_ok {database}\nbroker_reachable {broker}\nmissing_topics {}\n",
        if missing.is_empty() { "none" } else { &missing }
    );
    if !missing.is_empty() {
        body.push_str(&format!(
            "waiting for topic {missing} to be created (or for its name in kafka.missions_topic / kafka.activities_topic to be corrected)\n"
        ));
    }
    if partitions > 0 && database && broker && missing.is_empty() {
        (StatusCode::OK, body)
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, body)
    }
}
