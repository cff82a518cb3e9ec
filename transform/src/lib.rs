//! The transform stage: pure functions from a batch of accepted events and
//! the ledger rows they touch to the exact changes of every table.
//!
//! [`plan`] decides which facts win (highest revision, latest dispatch and
//! completion) and turns each change into signed cells: the new contribution
//! minus the old one. [`Rollup`] sums those cells with polars at the finest
//! grain and rolls them up to every ancestor region and to the program, per
//! day (the databases derive weeks, months, quarters and years from the
//! days). No IO here: this crate depends on neither rdkafka nor sqlx.

mod contribution;
mod plan;
mod rollup;

pub use contribution::{Contribution, activity_cells, mission_cells};
pub use plan::{FactKey, Plan, Prior, plan};
pub use rollup::Rollup;

use schemas::{Changes, Event, Regions};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("roll-up failed in polars: {0}")]
    Polars(#[from] polars::error::PolarsError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The whole stage: ledger decisions, then the roll-up.
pub struct Transform {
    rollup: Rollup,
}

/// What a batch does to the tables, and what it refuses on second look.
#[derive(Debug, Default)]
pub struct Outcome<'e> {
    /// Its activity facts borrow their text from the batch's events.
    pub changes: Changes<'e>,
    /// Events of the batch (by index) refused once the ledger was known, such
    /// as a completion whose end is before its mission's start.
    pub rejected: Vec<(usize, schemas::Rejection)>,
    /// Accepted events that changed nothing: redeliveries, older revisions.
    pub unchanged: usize,
}

impl Transform {
    pub fn new(regions: &Regions) -> Result<Transform> {
        Ok(Transform {
            rollup: Rollup::new(regions)?,
        })
    }

    pub fn apply<'e, E: std::borrow::Borrow<Event>>(
        &self,
        events: &'e [E],
        prior: &Prior,
    ) -> Result<Outcome<'e>> {
        let planned = plan(events, prior);
        let (daily, regional, program) = self.rollup.roll_up(&planned.contributions())?;
        let Plan {
            mut changes,
            rejected,
            unchanged,
            ..
        } = planned;
        changes.daily = daily;
        changes.regional = regional;
        changes.program = program;
        Ok(Outcome {
            changes,
            rejected,
            unchanged,
        })
    }
}
