//! The validator's test support: Kafka records built to the contract
//! (`events`), one bad message per rule of the contract (`bad`), and the
//! record type. No broker and no database: the end-to-end tests in the
//! root package include these files and send the same records to tansu.
// Each test binary uses a part of it.
#![allow(dead_code, unused_imports)]

pub mod bad;
mod common;
pub mod events;

pub use common::{Record, cases};
