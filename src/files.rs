//! `outreach validate` and `outreach publish`: files of events checked with
//! the pipeline's own validator, one line at a time.
//!
//! A file is JSON Lines, one structured-mode CloudEvent per line (blank lines
//! are skipped), or, when its name ends in `.csv`, a CSV of activity
//! tallies with a header row (see [`Tallies`]): each row becomes the
//! activity event it stands for, and is checked and sent as such.

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
    current: Option<(PathBuf, Reader)>,
    tally: Tally,
    progress: Progress,
}

enum Reader {
    Jsonl(std::iter::Enumerate<std::io::Split<BufReader<std::fs::File>>>),
    Csv(Tallies),
}

/// A CSV of activity tallies, one row per reported fact. Columns (header
/// row, any order): `institution_id`, `record_id`, `program_id`,
/// `facility_id`, `region_code`, `occurred_on`, `metric`, `value` required;
/// `revision` (default 1), `mission_id`, `dims` (`key=value;key=value`),
/// `event_id` (default `<institution_id>:<record_id>:<revision>`, so that
/// sending a file twice changes nothing) and `time` (default noon UTC of
/// `occurred_on`) optional.
struct Tallies {
    rows: csv::StringRecordsIntoIter<std::fs::File>,
    columns: Vec<String>,
}

const TALLY_REQUIRED: [&str; 8] = [
    "institution_id",
    "record_id",
    "program_id",
    "facility_id",
    "region_code",
    "occurred_on",
    "metric",
    "value",
];
const TALLY_OPTIONAL: [&str; 5] = ["revision", "mission_id", "dims", "event_id", "time"];

impl Tallies {
    fn open(path: &std::path::Path) -> anyhow::Result<Tallies> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let columns: Vec<String> = reader
            .headers()
            .with_context(|| format!("reading the header row of {}", path.display()))?
            .iter()
            .map(|c| c.trim().to_owned())
            .collect();
        for c in &columns {
            if !TALLY_REQUIRED.contains(&c.as_str()) && !TALLY_OPTIONAL.contains(&c.as_str()) {
                anyhow::bail!(
                    "{}: unknown column {c:?}; expected {} and optionally {}",
                    path.display(),
                    TALLY_REQUIRED.join(", "),
                    TALLY_OPTIONAL.join(", ")
                );
            }
        }
        if let Some(missing) = TALLY_REQUIRED
            .iter()
            .find(|c| !columns.iter().any(|h| h == *c))
        {
            anyhow::bail!("{}: the header row has no {missing} column", path.display());
        }
        Ok(Tallies {
            rows: reader.into_records(),
            columns,
        })
    }

    /// The next row as (line number, the event it stands for as JSON), or
    /// the reason it cannot be one.
    fn next_row(&mut self) -> Option<(u64, Result<Vec<u8>, String>)> {
        let row = self.rows.next()?;
        Some(match row {
            Err(e) => (
                e.position().map_or(0, |p| p.line()),
                Err(format!("csv: {e}")),
            ),
            Ok(r) => {
                let line = r.position().map_or(0, |p| p.line());
                (line, self.event(&r))
            }
        })
    }

    /// A row as the CloudEvent it stands for, as JSON: the envelope here,
    /// the fields in [`Tallies::data`].
    fn event(&self, r: &csv::StringRecord) -> Result<Vec<u8>, String> {
        if r.len() != self.columns.len() {
            return Err(format!(
                "csv: {} fields where the header has {}",
                r.len(),
                self.columns.len()
            ));
        }
        let get = |name: &str| self.get(r, name);
        let (institution, record) = (get("institution_id"), get("record_id"));
        let revision = get("revision").unwrap_or("1");
        let day = get("occurred_on").unwrap_or_default();
        let data = self.data(r)?;
        let id = get("event_id").map_or_else(
            || {
                format!(
                    "{}:{}:{revision}",
                    institution.unwrap_or_default(),
                    record.unwrap_or_default()
                )
            },
            str::to_owned,
        );
        let event = serde_json::json!({
            "specversion": "1.0",
            "id": id,
            "source": format!("urn:outreach:institution:{}", institution.unwrap_or_default()),
            "type": "org.outreach.activity.recorded.v1",
            "time": get("time").map_or_else(|| format!("{day}T12:00:00Z"), str::to_owned),
            "data": data,
        });
        Ok(serde_json::to_vec(&event).expect("JSON values serialise"))
    }

    /// The event's `data`: the row's columns, `dims` parsed from
    /// `key=value;key=value`.
    fn data(&self, r: &csv::StringRecord) -> Result<serde_json::Value, String> {
        let get = |name: &str| self.get(r, name);
        let mut data = serde_json::json!({
            "record_id": get("record_id"),
            "revision": number(get("revision").unwrap_or("1")),
            "program_id": get("program_id"),
            "facility_id": get("facility_id"),
            "region_code": get("region_code"),
            "occurred_on": get("occurred_on").unwrap_or_default(),
            "metric": get("metric"),
            "value": get("value").map(number),
        });
        if let Some(m) = get("mission_id") {
            data["mission_id"] = m.into();
        }
        if let Some(dims) = get("dims") {
            let mut map = serde_json::Map::new();
            for pair in dims.split(';').map(str::trim).filter(|p| !p.is_empty()) {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("csv: dims {pair:?} is not key=value"))?;
                map.insert(k.trim().to_owned(), v.trim().into());
            }
            data["dims"] = map.into();
        }
        Ok(data)
    }

    /// The row's value in column `name`, trimmed; `None` when the column
    /// is absent or the cell empty.
    fn get<'r>(&self, r: &'r csv::StringRecord, name: &str) -> Option<&'r str> {
        self.columns
            .iter()
            .position(|c| c == name)
            .map(|i| r[i].trim())
            .filter(|v| !v.is_empty())
    }
}

/// A cell as a JSON number where it reads as one, else as the text: numbers
/// keep their text, so the validator judges them as written.
fn number(text: &str) -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .filter(serde_json::Value::is_number)
        .unwrap_or_else(|| serde_json::Value::from(text))
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
                self.current = Some((path.clone(), Reader::open(path)?));
            }
            let (path, reader) = self.current.as_mut().expect("set above");
            let (number, bytes) = match reader.next_raw(path)? {
                Next::Line(number, bytes) => (number, bytes),
                Next::Blank => continue,
                Next::End => {
                    self.current = None;
                    continue;
                }
                Next::Refused(number, reason) => {
                    self.tally.bad += 1;
                    self.progress.clear();
                    eprintln!("{}:{number}: {reason}", path.display());
                    return Ok(Some(Line {
                        event: None,
                        bytes: Vec::new(),
                    }));
                }
            };
            let event = match self.decoder.decode(&Message {
                headers: &STRUCTURED,
                value: Some(&bytes),
                timestamp_ms: None,
            }) {
                Ok(e) => {
                    self.tally.good += 1;
                    Some(e)
                }
                Err(r) => {
                    self.tally.bad += 1;
                    self.progress.clear();
                    eprintln!("{}:{number}: {}: {}", path.display(), r.code, r.detail);
                    None
                }
            };
            self.progress.tick(&self.tally);
            return Ok(Some(Line { event, bytes }));
        }
    }
}

/// What a file gives next, before the decoder sees it.
enum Next {
    /// A line (or a CSV row as its event) and its line number.
    Line(u64, Vec<u8>),
    /// A CSV row that stands for no event, and why.
    Refused(u64, String),
    /// A blank line of JSON Lines: skipped, never counted.
    Blank,
    /// The end of the file.
    End,
}

impl Reader {
    /// A `.csv` file as tallies, any other as JSON Lines.
    fn open(path: &std::path::Path) -> anyhow::Result<Reader> {
        Ok(
            if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
            {
                Reader::Csv(Tallies::open(path)?)
            } else {
                let file = std::fs::File::open(path)
                    .with_context(|| format!("opening {}", path.display()))?;
                Reader::Jsonl(BufReader::new(file).split(b'\n').enumerate())
            },
        )
    }

    /// The next line of `path`, this reader's file.
    fn next_raw(&mut self, path: &std::path::Path) -> anyhow::Result<Next> {
        match self {
            Reader::Jsonl(lines) => {
                let Some((i, line)) = lines.next() else {
                    return Ok(Next::End);
                };
                let mut bytes = line.with_context(|| format!("reading {}", path.display()))?;
                if bytes.last() == Some(&b'\r') {
                    bytes.pop();
                }
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    return Ok(Next::Blank);
                }
                Ok(Next::Line(i as u64 + 1, bytes))
            }
            Reader::Csv(tallies) => Ok(match tallies.next_row() {
                None => Next::End,
                Some((number, Ok(bytes))) => Next::Line(number, bytes),
                Some((number, Err(reason))) => Next::Refused(number, reason),
            }),
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
    // A broker out of reach is one error now, not a timeout per event later.
    publisher.connect().await?;
    let mut lines = Lines::new(&decoder, files);
    let mut pending = Vec::new();
    while let Some(line) = lines.next_line()? {
        match &line.event {
            Some(event) => pending.push(publisher.send(event, &line.bytes).await?),
            None if include_invalid && !line.bytes.is_empty() => {
                pending.push(publisher.send_raw(&line.bytes).await?)
            }
            None => {}
        }
        if pending.len() >= 10_000 {
            for d in pending.drain(..) {
                publisher.delivered(d).await?;
            }
        }
    }
    for d in pending {
        publisher.delivered(d).await?;
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
