//! Structured logs through tracing: `log.format = pretty | json`, the level
//! from `RUST_LOG` when set, else `log.level`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::settings::{LogFormat, LogSettings};

pub fn init(log: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},librdkafka=warn,sqlx=warn", log.level)));
    // Colours only on a terminal: a log file or a test reads plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        // stderr, above the progress bar when there is one.
        .with_writer(crate::progress::LogWriter);
    let _ = match log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}
