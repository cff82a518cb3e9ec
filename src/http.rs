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
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

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

#[derive(Clone)]
struct AppState {
    metrics: PrometheusHandle,
    health: Arc<Health>,
}

/// Installs the Prometheus recorder (once per process) and returns its handle.
pub fn recorder() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets(&buckets)
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // A second recorder (tests running pipelines in one process) is ignored.
            let _ = metrics::set_global_recorder(recorder);
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
