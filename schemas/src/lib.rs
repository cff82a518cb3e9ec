//! The event contract of `docs/contract.md`, as Rust types.
//!
//! Everything the stages exchange lives here and nowhere else: the decoded
//! events, the validator that turns Kafka bytes into them (or into a
//! [`Rejection`] with a stable code), the metric and region catalogues, and the
//! ledger rows the sink stores and the transform reasons about. No IO.

pub mod decode;
pub mod event;
pub mod ledger;
pub mod metric;
pub mod number;
pub mod offsets;
pub mod regions;
pub mod rejection;

pub use decode::{Decoder, Header, Message};
pub use event::{Activity, Body, Completion, Dims, Dispatch, Event, EventType, Id};
pub use ledger::{
    ActivityFact, Cell, Changes, CompletionFact, DispatchFact, MissionFact, Period, ProgramCell,
    RegionalCell,
};
pub use metric::{DimError, Metric, Specialty};
pub use number::Amount;
pub use offsets::OffsetRange;
pub use regions::{Level, Region, Regions};
pub use rejection::{ErrorCode, Rejection};

/// The contract's default topic names.
pub const MISSIONS_TOPIC: &str = "outreach.missions.v1";
pub const ACTIVITIES_TOPIC: &str = "outreach.activities.v1";
pub const DEADLETTER_TOPIC: &str = "outreach.deadletter.v1";
