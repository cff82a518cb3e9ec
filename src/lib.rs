//! The `outreach` binary's library: command line, settings, logging, and the
//! wiring of the three stages (ingest → transform → sink) into a pipeline.

pub mod allocator;
pub mod analysts;
pub mod batch;
pub mod bench;
pub mod check_config;
pub mod cli;
pub mod demo;
pub mod files;
pub mod http;
pub mod pipeline;
pub mod progress;
pub mod rebuild;
pub mod report;
pub mod settings;
pub mod telemetry;
