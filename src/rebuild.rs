//! `outreach rebuild`: recomputes every analyst table from the ledger (the
//! latest accepted version of each fact), for after a region table change,
//! a code fix, or a doubt. One transaction: running pipelines wait at their
//! next claim, readers keep reading the old contents until the commit
//! swaps in the new ones. The ledger is read, rolled up and written in
//! chunks of [`CHUNK`] activity facts and [`MISSION_CHUNK`] missions
//! (Postgres: a cursor in region and day order, so chunks collapse well;
//! the deltas are folded once at the end), so memory does not grow with
//! the ledger.

use std::time::Instant;

use anyhow::Context;
use schemas::{Changes, Regions};
use transform::{Rollup, activity_cells, mission_cells};

use crate::progress::Progress;
use crate::settings::{LogFormat, Settings};

/// Facts read, transformed and written at a time: memory stays bounded
/// whatever the size of the ledger.
const CHUNK: usize = 50_000;

/// Missions read at a time: a completed mission makes a cell per on-site
/// day, so a chunk of 50,000 missions peaked at 434 MiB in a rebuild of
/// 10 M facts whose activity chunks stayed under 80 MiB.
const MISSION_CHUNK: usize = 5_000;

/// What a rebuild did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rebuilt {
    pub activities: usize,
    pub missions: usize,
    pub chunks: usize,
    /// Roll-up rows written (cells, or deltas folded at the end).
    pub rows: usize,
}

pub async fn rebuild(settings: &Settings) -> anyhow::Result<Rebuilt> {
    let started = Instant::now();
    let regions = settings.regions()?;
    let sink = crate::pipeline::open_database(settings, &regions).await?;
    let rollup = Rollup::new(&regions).context("building the region closure")?;

    let mut tx = sink.begin().await?;
    tx.lock_out_writers().await?;
    tx.clear_derived().await?;
    let (activities, missions) = tx.ledger_size().await.context("counting the ledger")?;
    let mut chunks = Chunks {
        tx: &mut tx,
        rollup: &rollup,
        regions: &regions,
        progress: Progress::new(
            "rebuild",
            "chunks",
            settings.log.format == LogFormat::Pretty,
        ),
        total: activities.div_ceil(CHUNK as u64) + missions.div_ceil(MISSION_CHUNK as u64),
        done: Rebuilt::default(),
    };
    chunks.progress.set(0, chunks.total);
    chunks.activities().await?;
    chunks.missions().await?;
    let done = chunks.done;
    drop(chunks);
    tracing::info!(
        rows = done.rows,
        "folding the rebuilt roll-ups into their cells (the last step)"
    );
    tx.settle().await.context("folding the rebuilt tables")?;
    tx.commit().await?;
    tracing::info!(
        activities = done.activities,
        missions = done.missions,
        chunks = done.chunks,
        rows = done.rows,
        ms = started.elapsed().as_millis() as u64,
        "analyst tables rebuilt"
    );
    Ok(done)
}

/// The ledger read, rolled up and written chunk by chunk, in the
/// rebuild's one transaction.
struct Chunks<'a> {
    tx: &'a mut sink::Batch,
    rollup: &'a Rollup,
    regions: &'a Regions,
    progress: Progress,
    /// Chunks the ledger makes, for the progress bar.
    total: u64,
    done: Rebuilt,
}

impl Chunks<'_> {
    async fn activities(&mut self) -> anyhow::Result<()> {
        loop {
            let facts = self
                .tx
                .next_activities(CHUNK)
                .await
                .context("reading the ledger")?;
            if facts.is_empty() {
                return Ok(());
            }
            known_regions(self.regions, facts.iter().map(|f| &*f.region_code))?;
            let mut cells = Vec::new();
            for f in &facts {
                activity_cells(f, 1, &mut cells);
            }
            self.done.rows += add(self.tx, self.rollup, &cells, &[]).await?;
            self.done.activities += facts.len();
            self.chunk_done();
        }
    }

    async fn missions(&mut self) -> anyhow::Result<()> {
        loop {
            let facts = self
                .tx
                .next_missions(MISSION_CHUNK)
                .await
                .context("reading the ledger")?;
            if facts.is_empty() {
                return Ok(());
            }
            let dispatched = facts
                .iter()
                .filter_map(|m| m.dispatch.as_ref().map(|d| d.region_code.as_str()));
            known_regions(self.regions, dispatched)?;
            let mut cells = Vec::new();
            for m in &facts {
                mission_cells(m, 1, &mut cells);
            }
            self.done.rows += add(self.tx, self.rollup, &cells, &facts).await?;
            self.done.missions += facts.len();
            self.chunk_done();
        }
    }

    fn chunk_done(&mut self) {
        self.done.chunks += 1;
        self.progress.set(self.done.chunks as u64, self.total);
    }
}

/// Rolls up one chunk's cells and adds them (and the chunk's mission rows).
async fn add(
    tx: &mut sink::Batch,
    rollup: &Rollup,
    cells: &[transform::Contribution<'_>],
    missions: &[schemas::MissionFact],
) -> anyhow::Result<usize> {
    let (daily, regional, program) = rollup.roll_up(cells)?;
    let changes = Changes {
        daily,
        regional,
        program,
        ..Changes::default()
    };
    tx.add_rebuilt(&changes, missions)
        .await
        .context("writing the rebuilt tables")?;
    Ok(changes.daily.len() + changes.regional.len() + changes.program.len())
}

/// A fact in a region this process does not know would silently vanish
/// from the regional roll-up: refuse instead.
fn known_regions<'a>(
    regions: &Regions,
    codes: impl Iterator<Item = &'a str>,
) -> anyhow::Result<()> {
    let unknown: std::collections::BTreeSet<&str> =
        codes.filter(|code| !regions.contains(code)).collect();
    if !unknown.is_empty() {
        anyhow::bail!(
            "the ledger has facts in regions missing from this process's region table ({}): \
             run rebuild with the same regions.extra_file as the pipelines",
            unknown.into_iter().take(10).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(())
}
