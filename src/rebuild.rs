//! `outreach rebuild`: recomputes every analyst table from the ledger (the
//! latest accepted version of each fact), for after a region table change,
//! a code fix, or a doubt. One transaction: running pipelines wait at their
//! next claim, readers keep reading the old contents until the commit
//! swaps in the new ones.

use std::time::Instant;

use anyhow::Context;
use schemas::Changes;
use transform::{Rollup, activity_cells, mission_cells};

use crate::settings::Settings;

/// What a rebuild did.
#[derive(Debug, Clone, Copy)]
pub struct Rebuilt {
    pub activities: usize,
    pub missions: usize,
    pub daily: usize,
    pub regional: usize,
    pub program: usize,
}

pub async fn rebuild(settings: &Settings) -> anyhow::Result<Rebuilt> {
    let started = Instant::now();
    let regions = settings.regions()?;
    let sink = crate::pipeline::open_database(settings, &regions).await?;
    let rollup = Rollup::new(&regions).context("building the region closure")?;

    let mut tx = sink.begin().await?;
    tx.lock_out_writers().await?;
    let (activities, missions) = tx.load_all().await.context("reading the ledger")?;
    tracing::info!(
        activities = activities.len(),
        missions = missions.len(),
        "ledger read; recomputing"
    );
    // A fact in a region this process does not know would silently vanish
    // from the regional roll-up: refuse instead.
    let unknown: std::collections::BTreeSet<&str> = activities
        .iter()
        .map(|a| a.region_code.as_str())
        .chain(
            missions
                .iter()
                .filter_map(|m| m.dispatch.as_ref().map(|d| d.region_code.as_str())),
        )
        .filter(|code| !regions.contains(code))
        .collect();
    if !unknown.is_empty() {
        anyhow::bail!(
            "the ledger has facts in regions missing from this process's region table ({}): \
             run rebuild with the same regions.extra_file as the pipelines",
            unknown.into_iter().take(10).collect::<Vec<_>>().join(", ")
        );
    }
    let mut cells = Vec::new();
    for f in &activities {
        activity_cells(f, 1, &mut cells);
    }
    for m in &missions {
        mission_cells(m, 1, &mut cells);
    }
    let (daily, regional, program) = rollup.roll_up(cells)?;
    let changes = Changes {
        daily,
        regional,
        program,
        ..Changes::default()
    };
    tx.replace_aggregates(&changes, &missions)
        .await
        .context("writing the rebuilt tables")?;
    tx.commit().await?;
    let done = Rebuilt {
        activities: activities.len(),
        missions: missions.len(),
        daily: changes.daily.len(),
        regional: changes.regional.len(),
        program: changes.program.len(),
    };
    tracing::info!(
        activities = done.activities,
        missions = done.missions,
        daily_cells = done.daily,
        regional_cells = done.regional,
        program_cells = done.program,
        ms = started.elapsed().as_millis() as u64,
        "analyst tables rebuilt"
    );
    Ok(done)
}
