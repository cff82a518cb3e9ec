//! The ledger: the latest accepted version of every fact, as the sink stores
//! it and the transform compares incoming events against it, and the cell, the
//! finest grain of `daily_metrics`.
//!
//! A fact's contribution to the tables is a pure function of its ledger row,
//! so the change an event makes is always "new contribution minus old".

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use crate::event::{Dims, Id};
use crate::metric::Metric;
use crate::number::Amount;

/// The winning revision of one `(institution, record_id)`. Its text is
/// borrowed from the event that won when a batch makes it (a batch builds
/// tens of thousands, and the sink only reads them), and owned when it is
/// read back from the ledger (`ActivityFact<'static>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityFact<'a> {
    pub institution: Cow<'a, Id>,
    pub record_id: Cow<'a, Id>,
    pub revision: i32,
    /// CloudEvents id of the winning event: breaks ties between two events of
    /// the same revision, so the winner never depends on arrival order.
    pub event_id: Cow<'a, str>,
    pub program_id: Cow<'a, Id>,
    pub mission_id: Option<Cow<'a, Id>>,
    pub facility_id: Cow<'a, Id>,
    pub region_code: Cow<'a, str>,
    pub day: NaiveDate,
    pub metric: Metric,
    pub dims: Cow<'a, Dims>,
    /// Zero after a withdrawal.
    pub value: Amount,
    /// The earliest arrival ([`crate::Event::arrived`]) of any revision of
    /// this fact, and of its winning revision: redeliveries and replays
    /// are not new arrivals, and the order messages come in does not
    /// matter. `None` (the smallest: it stays) where unknown: a message
    /// without a timestamp, or a fact stored before arrivals were kept.
    pub first_arrived: Option<DateTime<Utc>>,
    pub revision_arrived: Option<DateTime<Utc>>,
}

impl ActivityFact<'_> {
    /// Higher wins: revision first, then event id.
    pub fn version(&self) -> (i32, &str) {
        (self.revision, &self.event_id)
    }

    /// The same fact with its own text, as the ledger holds it.
    pub fn into_owned(self) -> ActivityFact<'static> {
        fn own<T: ?Sized + ToOwned>(c: Cow<'_, T>) -> Cow<'static, T> {
            Cow::Owned(c.into_owned())
        }
        ActivityFact {
            institution: own(self.institution),
            record_id: own(self.record_id),
            revision: self.revision,
            event_id: own(self.event_id),
            program_id: own(self.program_id),
            mission_id: self.mission_id.map(own),
            facility_id: own(self.facility_id),
            region_code: own(self.region_code),
            day: self.day,
            metric: self.metric,
            dims: own(self.dims),
            value: self.value,
            first_arrived: self.first_arrived,
            revision_arrived: self.revision_arrived,
        }
    }
}

/// The winning dispatch of a mission (the latest by event time, then id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchFact {
    pub time: DateTime<Utc>,
    pub event_id: String,
    pub program_id: Id,
    pub program_name: Option<String>,
    pub host_facility_id: Id,
    pub host_facility_name: Option<String>,
    pub region_code: String,
    pub team_size: i32,
    pub specialties: Vec<String>,
    pub start_date: NaiveDate,
    pub planned_end_date: Option<NaiveDate>,
}

impl DispatchFact {
    pub fn version(&self) -> (DateTime<Utc>, &str) {
        (self.time, &self.event_id)
    }
}

/// The winning completion of a mission; may exist before any dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletionFact {
    pub time: DateTime<Utc>,
    pub event_id: String,
    pub end_date: NaiveDate,
}

impl CompletionFact {
    pub fn version(&self) -> (DateTime<Utc>, &str) {
        (self.time, &self.event_id)
    }
}

/// Everything known about one `(institution, mission_id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissionFact {
    pub institution: Id,
    pub mission_id: Id,
    pub dispatch: Option<DispatchFact>,
    pub completion: Option<CompletionFact>,
}

/// The longest on-site span a completed mission may have; a longer one is a
/// producer's mistake that would spread `expert_days` over decades.
pub const MAX_MISSION_DAYS: i64 = 5 * 366;

impl MissionFact {
    /// The completion that applies: there is a dispatch, and the end lies
    /// within [`MAX_MISSION_DAYS`] on or after its start.
    pub fn effective_end(&self) -> Option<NaiveDate> {
        let d = self.dispatch.as_ref()?;
        let c = self.completion.as_ref()?;
        let span = (c.end_date - d.start_date).num_days();
        (0..MAX_MISSION_DAYS).contains(&span).then_some(c.end_date)
    }
}

/// One signed change to one `daily_metrics` cell. Its strings are shared
/// with the batch's other cells: a batch makes tens of thousands of cells
/// from a few thousand institutions, facilities, regions and dims. They
/// are the text of facts already checked ([`Id`]s, region codes, canonical
/// [`Dims`]), interned once per batch by the roll-up; the value is signed
/// (a change, not an [`Amount`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cell {
    pub day: NaiveDate,
    pub institution: Arc<str>,
    pub program_id: Arc<str>,
    pub mission_id: Option<Arc<str>>,
    pub facility_id: Arc<str>,
    pub region_code: Arc<str>,
    pub metric: Metric,
    pub dims: Arc<str>,
    /// Hundredths of the metric's unit.
    pub value: i64,
}

/// The period types of `regional_metrics` and `program_metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl Period {
    pub const ALL: [Period; 5] = [
        Period::Day,
        Period::Week,
        Period::Month,
        Period::Quarter,
        Period::Year,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Quarter => "quarter",
            Period::Year => "year",
        }
    }

    pub fn parse(s: &str) -> Option<Period> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The first day of the period holding `day` (ISO weeks start on Monday):
    /// the reference the tests hold each database's own rule to (Postgres'
    /// `outreach.period_starts` in its views and `date_trunc` in its fold,
    /// SQLite's date functions in its views and fold), which is where the
    /// pipeline computes periods.
    pub fn start(self, day: NaiveDate) -> NaiveDate {
        use chrono::Datelike;
        let ymd = |y, m| NaiveDate::from_ymd_opt(y, m, 1).expect("first of a month exists");
        match self {
            Period::Day => day,
            Period::Week => day - chrono::Days::new(day.weekday().num_days_from_monday() as u64),
            Period::Month => ymd(day.year(), day.month()),
            Period::Quarter => ymd(day.year(), (day.month0() / 3) * 3 + 1),
            Period::Year => ymd(day.year(), 1),
        }
    }
}

/// A signed change to one region's day of one metric: the `day` row of
/// `regional_metrics`. The databases derive the other periods' rows from
/// the days (they are the sums of their days).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegionalCell {
    /// Shared with the region table: a batch makes hundreds of thousands of
    /// these cells from a few thousand regions.
    pub region_code: Arc<str>,
    pub level: crate::regions::Level,
    pub day: NaiveDate,
    pub metric: Metric,
    pub value: i64,
}

/// A signed change to one program's day of one metric: the `day` row of
/// `program_metrics`, the other periods derived as for [`RegionalCell`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProgramCell {
    pub program_id: Arc<str>,
    pub day: NaiveDate,
    pub metric: Metric,
    pub value: i64,
}

/// A row of the analyst table `missions`, derived from a [`MissionFact`]
/// that has a dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissionRow<'a> {
    pub fact: &'a MissionFact,
    pub dispatch: &'a DispatchFact,
    pub end_date: Option<NaiveDate>,
}

impl MissionFact {
    pub fn row(&self) -> Option<MissionRow<'_>> {
        Some(MissionRow {
            fact: self,
            dispatch: self.dispatch.as_ref()?,
            end_date: self.effective_end(),
        })
    }
}

/// Everything one batch changes, ready for the sink to write in one
/// transaction. Facts are split by whether the sink saw them in the ledger,
/// so that it can refuse an insert that races another worker's. `'a` is
/// the batch's events, which the activity facts borrow from.
#[derive(Debug, Default)]
pub struct Changes<'a> {
    pub activities_new: Vec<ActivityFact<'a>>,
    pub activities_replaced: Vec<ActivityFact<'a>>,
    /// Facts that keep their version and their figures, but of which this
    /// batch saw an earlier delivery: only their arrival times move.
    pub activities_restamped: Vec<ActivityFact<'a>>,
    pub missions_new: Vec<MissionFact>,
    pub missions_replaced: Vec<MissionFact>,
    /// `(program_id, name)`: every program seen, with a name when a dispatch gave one.
    pub programs: Vec<(Id, Option<String>)>,
    pub daily: Vec<Cell>,
    pub regional: Vec<RegionalCell>,
    pub program: Vec<ProgramCell>,
}
