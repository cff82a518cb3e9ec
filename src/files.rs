//! `outreach validate` and `outreach publish`: files of events checked with
//! the pipeline's own validator, one line at a time.
//!
//! A file is JSON Lines, one structured-mode CloudEvent per line (blank lines
//! are skipped).

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use schemas::{Decoder, Event, Header, Message};

use crate::settings::Settings;

/// What a run over the files found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub good: u64,
    pub bad: u64,
}

const STRUCTURED: [Header<'static>; 1] = [Header {
    key: "content-type",
    value: Some(b"application/cloudevents+json"),
}];

/// One non-blank line, decoded or refused; refusals are printed on stderr
/// as `file:line: code: detail`.
struct Line {
    event: Option<Event>,
    bytes: Vec<u8>,
}

/// Reads every file line by line, counting and reporting as it goes.
struct Lines<'a> {
    decoder: &'a Decoder,
    files: std::slice::Iter<'a, PathBuf>,
    current: Option<(
        PathBuf,
        std::iter::Enumerate<std::io::Split<BufReader<std::fs::File>>>,
    )>,
    tally: Tally,
    progress: Progress,
}

impl<'a> Lines<'a> {
    fn new(decoder: &'a Decoder, files: &'a [PathBuf]) -> Self {
        Lines {
            decoder,
            files: files.iter(),
            current: None,
            tally: Tally::default(),
            progress: Progress::new(),
        }
    }

    fn next_line(&mut self) -> anyhow::Result<Option<Line>> {
        loop {
            if self.current.is_none() {
                let Some(path) = self.files.next() else {
                    self.progress.clear();
                    return Ok(None);
                };
                let file = std::fs::File::open(path)
                    .with_context(|| format!("opening {}", path.display()))?;
                self.current = Some((path.clone(), BufReader::new(file).split(b'\n').enumerate()));
            }
            let (path, lines) = self.current.as_mut().expect("set above");
            let Some((i, line)) = lines.next() else {
                self.current = None;
                continue;
            };
            let mut bytes = line.with_context(|| format!("reading {}", path.display()))?;
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let event = match self.decoder.decode(&Message {
                headers: &STRUCTURED,
                value: Some(&bytes),
            }) {
                Ok(e) => {
                    self.tally.good += 1;
                    Some(e)
                }
                Err(r) => {
                    self.tally.bad += 1;
                    self.progress.clear();
                    eprintln!("{}:{}: {}: {}", path.display(), i + 1, r.code, r.detail);
                    None
                }
            };
            self.progress.tick(&self.tally);
            return Ok(Some(Line { event, bytes }));
        }
    }
}

pub fn validate(settings: &Settings, files: &[PathBuf]) -> anyhow::Result<Tally> {
    let decoder = decoder(settings)?;
    let mut lines = Lines::new(&decoder, files);
    while lines.next_line()?.is_some() {}
    eprintln!("{} valid, {} invalid", lines.tally.good, lines.tally.bad);
    Ok(lines.tally)
}

/// Validates and produces the good lines; bad lines are reported, and sent
/// only with `include_invalid`.
pub async fn publish(
    settings: &Settings,
    files: &[PathBuf],
    include_invalid: bool,
) -> anyhow::Result<Tally> {
    let decoder = decoder(settings)?;
    let publisher = ingest::Publisher::new(&settings.kafka).context("creating the producer")?;
    let mut lines = Lines::new(&decoder, files);
    let mut pending = Vec::new();
    while let Some(line) = lines.next_line()? {
        match &line.event {
            Some(event) => pending.push(publisher.send(event, &line.bytes).await?),
            None if include_invalid => pending.push(publisher.send_raw(&line.bytes).await?),
            None => {}
        }
        if pending.len() >= 10_000 {
            for d in pending.drain(..) {
                ingest::delivered(d)
                    .await
                    .context("the broker refused an event")?;
            }
        }
    }
    for d in pending {
        ingest::delivered(d)
            .await
            .context("the broker refused an event")?;
    }
    publisher.flush(Duration::from_secs(30))?;
    let t = lines.tally;
    let skipped = if include_invalid {
        "sent as they are"
    } else {
        "not sent"
    };
    eprintln!(
        "{} events published to {}; {} invalid lines {skipped}",
        t.good, settings.kafka.brokers, t.bad
    );
    Ok(t)
}

fn decoder(settings: &Settings) -> anyhow::Result<Decoder> {
    Ok(Decoder::new(
        Arc::new(settings.regions()?),
        settings.ingest.max_message_bytes,
    ))
}

/// A progress line on a terminal, redrawn at most ten times a second.
struct Progress {
    on: bool,
    last: Instant,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            on: std::io::stderr().is_terminal(),
            last: Instant::now(),
        }
    }

    fn tick(&mut self, t: &Tally) {
        if self.on && self.last.elapsed() > Duration::from_millis(100) {
            self.last = Instant::now();
            eprint!("\r{} valid, {} invalid…", t.good, t.bad);
            let _ = std::io::stderr().flush();
        }
    }

    fn clear(&self) {
        if self.on {
            eprint!("\r\x1b[2K");
        }
    }
}
