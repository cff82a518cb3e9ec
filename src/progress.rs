//! Progress of long work (`run --until-caught-up`, `rebuild`): what is done
//! of the total, the rate and the time left. On a terminal, a bar
//! (indicatif) that log lines print above; otherwise (a file, a container's
//! log, JSON logs) one log line every [`EVERY`], with the same figures as
//! fields.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the log line comes when there is no bar.
const EVERY: Duration = Duration::from_secs(5);

/// The bar on screen, if any: log lines are written while it is hidden
/// ([`LogWriter`]), so that neither tears the other.
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Long work's progress, in `unit`s.
pub struct Progress {
    task: &'static str,
    unit: &'static str,
    bar: Option<ProgressBar>,
    started: Instant,
    last_log: Option<Instant>,
}

impl Progress {
    /// A bar when stderr is a terminal and logs are not JSON (`bar`).
    pub fn new(task: &'static str, unit: &'static str, bar: bool) -> Progress {
        let bar = (bar && std::io::stderr().is_terminal()).then(|| {
            // Hidden until the total is known (the first `set`).
            let bar = ProgressBar::hidden();
            let template = format!(
                "{task} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit} {{msg}} eta {{eta}}"
            );
            bar.set_style(
                ProgressStyle::with_template(&template)
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            *BAR.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(bar.clone());
            bar
        });
        Progress {
            task,
            unit,
            bar,
            started: Instant::now(),
            last_log: None,
        }
    }

    /// The last figures, said whenever the last line was: a drain's total
    /// grows as partitions are assigned, so the lines before may have
    /// shown less than the whole.
    pub fn finish(&mut self, done: u64, total: u64) {
        self.last_log = None;
        self.set(done, total);
    }

    /// `done` of `total` so far.
    pub fn set(&mut self, done: u64, total: u64) {
        if let Some(bar) = &self.bar {
            let per_second = figures(done, total, self.started.elapsed()).per_second;
            bar.set_message(format!("{per_second:.0}/s"));
            bar.set_length(total);
            bar.set_position(done);
            if bar.is_hidden() {
                bar.set_draw_target(ProgressDrawTarget::stderr());
            }
            return;
        }
        if self.last_log.is_some_and(|t| t.elapsed() < EVERY) {
            return;
        }
        self.last_log = Some(Instant::now());
        let Figures { per_second, eta } = figures(done, total, self.started.elapsed());
        tracing::info!(
            task = self.task,
            done,
            total,
            left = total.saturating_sub(done),
            unit = self.unit,
            per_second = per_second.round() as u64,
            eta_s = eta.map(|d| d.as_secs()),
            "{}: {done} of {total} {} ({:.0}/s{})",
            self.task,
            self.unit,
            per_second,
            eta.map(|d| format!(", about {} s left", d.as_secs()))
                .unwrap_or_default(),
        );
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            *BAR.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        }
    }
}

/// `run --until-caught-up`: follows ingest's [`ingest::Backlog`] (messages
/// read, messages left to the end offsets) until `done` fires (or its
/// sender goes), then says the last figures. Looked at twice a second;
/// [`Progress`] says it less often.
pub async fn catching_up(
    backlog: Arc<ingest::Backlog>,
    bar: bool,
    mut done: tokio::sync::oneshot::Receiver<()>,
) {
    let mut progress = Progress::new("catching up", "messages", bar);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                if let Some((read, left)) = backlog.get() {
                    progress.set(read, read + left);
                }
            }
            _ = &mut done => {
                if let Some((read, left)) = backlog.get() {
                    progress.finish(read, read + left);
                }
                return;
            }
        }
    }
}

struct Figures {
    per_second: f64,
    /// `None` until something is done.
    eta: Option<Duration>,
}

fn figures(done: u64, total: u64, elapsed: Duration) -> Figures {
    let per_second = done as f64 / elapsed.as_secs_f64().max(1e-3);
    let left = total.saturating_sub(done);
    let eta = (per_second > 0.0).then(|| Duration::from_secs_f64(left as f64 / per_second));
    Figures { per_second, eta }
}

/// The logs' writer (stderr): with a bar on screen, each line is written
/// while the bar is hidden, then the bar is drawn again below it.
#[derive(Clone, Copy)]
pub struct LogWriter;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line(Vec::new())
    }
}

/// One log line, written out when dropped.
pub struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let write = || {
            let _ = std::io::stderr().write_all(&self.0);
        };
        match &*BAR
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_time_left_follow_what_is_done() {
        let f = figures(500, 2_000, Duration::from_secs(10));
        assert_eq!(f.per_second, 50.0);
        assert_eq!(f.eta, Some(Duration::from_secs(30)));
        assert_eq!(figures(0, 2_000, Duration::from_secs(10)).eta, None);
        assert_eq!(
            figures(2_000, 2_000, Duration::from_secs(10)).eta,
            Some(Duration::ZERO)
        );
    }
}
