//! Reaching the database: connect (waiting while it starts), migrate or
//! check the schema, write the region table; and the stored-offset look-up
//! the rebalance callback makes on a runtime of its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ingest::OffsetLookup;
use sink::Sink;
use tracing::warn;

use crate::settings::Settings;

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
pub(super) fn offset_lookup(settings: sink::Settings) -> OffsetLookup {
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
