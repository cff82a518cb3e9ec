//! `outreach report`: the analyst tables as one self-contained HTML file
//! (CSS and SVG charts inline, no network fetch), for the people who read
//! outreach reports rather than SQL: per program, the headline figures as
//! sentences and as a table, the monthly trend, the regions that received
//! the work, the outcome indicators with their numerators and
//! denominators, how timely each program's and institution's reporting
//! was, and a data-quality panel; in English or in Simplified Chinese.
//!
//! Three steps, one module each: the sink reads the rows
//! ([`sink::Sink::report_rows`], both backends), [`figures`] sums them
//! (pure, unit-tested), [`page`] renders them (askama template
//! `templates/report.html`, escaped by default, one for every language:
//! the words are [`lang`]'s; charts from [`charts`]).

mod charts;
pub mod figures;
pub mod lang;
mod page;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sink::Sink;
use sink::report::ReportQuery;

pub use figures::{Figures, Filter};
pub use lang::Lang;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "region {0} is not in the regions table: give a code of the shipped table or of regions.extra_file (e.g. 620000 for Gansu, CN for China)"
    )]
    UnknownRegion(String),
    #[error(transparent)]
    Sink(#[from] sink::Error),
    #[error("drawing a chart: {0}")]
    Chart(String),
    #[error("rendering the report: {0}")]
    Render(#[from] askama::Error),
    #[error("writing {}: {cause}; choose another file with --out", path.display())]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
}

/// What [`write`] produced.
#[derive(Debug)]
pub struct Written {
    pub path: PathBuf,
    pub lang: Lang,
    pub programs: usize,
    pub bytes: usize,
}

/// Reads the analyst tables under `filter` and writes the report to `out`
/// in `lang` (through a temporary file beside it, so a reader never sees
/// half a report). `now` is printed as the generation time.
pub async fn write(
    sink: &Sink,
    filter: &Filter,
    lang: Lang,
    out: &Path,
    now: DateTime<Utc>,
) -> Result<Written, Error> {
    let written = write_all(sink, filter, &[(lang, out)], now).await?;
    Ok(written
        .into_iter()
        .next()
        .expect("one page asked, one written"))
}

/// As [`write`], a page per `(language, file)`, every one from the same
/// rows read once: the pages' figures are the same figures.
pub async fn write_all(
    sink: &Sink,
    filter: &Filter,
    pages: &[(Lang, &Path)],
    now: DateTime<Utc>,
) -> Result<Vec<Written>, Error> {
    let query = ReportQuery {
        programs: filter.programs.clone(),
        from: filter.from,
        to: filter.to,
    };
    let rows = sink.report_rows(&query).await?;
    let figures = Figures::compute(&rows, filter)?;
    pages
        .iter()
        .map(|(lang, out)| {
            let html = page::render(&figures, *lang, now)?;
            persist(&html, out)?;
            Ok(Written {
                path: out.to_path_buf(),
                lang: *lang,
                programs: figures.programs.len(),
                bytes: html.len(),
            })
        })
        .collect()
}

/// `html` into `out`, whole or not at all.
fn persist(html: &str, out: &Path) -> Result<(), Error> {
    let failed = |cause| Error::Write {
        path: out.to_owned(),
        cause,
    };
    // Beside `out` (a rename does not cross file systems), created
    // exclusively under a random name: a file or symlink planted under a
    // predictable name cannot redirect the write.
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".outreach-report-")
        .tempfile_in(dir)
        .map_err(failed)?;
    tmp.write_all(html.as_bytes()).map_err(failed)?;
    // Readable as any file the user writes (a temporary file is 0600).
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(failed)?;
    tmp.persist(out).map_err(|e| failed(e.error))?;
    Ok(())
}
