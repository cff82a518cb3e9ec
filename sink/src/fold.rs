//! When the fold runs, whichever the backend, and what batches do while it
//! lags (each backend's `fold` module says how it folds). The folder task
//! folds the roll-ups' pending deltas into their stored cells beside the
//! batches, measures what is left after each try, and the worker waits
//! before a batch while that is over `database.max_pending_deltas`.
//!
//! Why a budget: analysts' views add the pending deltas to the stored
//! cells at every read, so their cost grows with what is pending. Under an
//! offered load the fold cannot keep up with, batches would otherwise pile
//! up deltas without end (measured: 5.2 M regional deltas after 90 s at
//! 20,000 events/s, the dashboard's province query 5× slower). With the
//! budget, ingest slows to the fold's pace instead, and Kafka holds the
//! rest: consumer lag grows, visibly, instead of readers' cost.

use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

use crate::{Compacted, Error, Pending, Result, Share, Sink};

/// Compactions this process ran, the delta rows they folded, and the time
/// they took (beside the batches, on a connection of their own).
#[derive(Debug, Default, Clone, Copy)]
pub struct Compaction {
    pub runs: u64,
    pub deltas: u64,
    pub cells: u64,
    pub time: Duration,
}

impl Compaction {
    pub fn add(&mut self, done: Compacted, took: Duration) {
        self.runs += 1;
        self.deltas += done.deltas;
        self.cells += done.cells;
        self.time += took;
    }
}

/// After a fold that took `d`, the next starts no sooner than
/// `FOLD_SPACING × d`: under a backlog, folds come rarer and larger (a key's
/// deltas from many batches collapse into one upsert) and the database
/// spends at most a third of its time folding. (4 instead of 2 made no
/// difference measured on 200,000 uniform events: the last fold dominates.)
/// Over the pending budget there is no spacing: batches are waiting.
const FOLD_SPACING: u32 = 2;

/// Over the budget while another worker holds the fold's lock: how soon to
/// look again (its fold takes our deltas too).
const RETRY_OVER_BUDGET: Duration = Duration::from_millis(250);

/// How often a worker that waits for the fold says so again.
const REMIND: Duration = Duration::from_secs(30);

/// The pending deltas as the folder last measured them (`None` before its
/// first measurement or when it failed).
pub type Measure = watch::Receiver<Option<Pending>>;

/// `database.max_pending_deltas`: 0 is no bound.
#[derive(Debug, Clone, Copy)]
pub struct Budget(pub u64);

impl Budget {
    /// Whether `rows` pending (`None`: not counted) are over the budget.
    fn exceeded(self, rows: Option<u64>) -> bool {
        self.0 > 0 && rows.is_some_and(|n| n > self.0)
    }
}

/// The folder: folds pending deltas every `interval` until `stop`, and
/// publishes what is left after each try to `measured`. A fold that fails
/// is logged and tried again at the next tick (batches are not affected:
/// they only append). After a long fold it waits [`FOLD_SPACING`] times as
/// long as that fold took, unless the pending deltas are over `budget`:
/// then it folds again at once, in two lanes, since batches wait for it
/// (measured at 20,000 events/s offered over a 1 M history: the fold moved
/// 1.17× and 1.27× the deltas per second it moved in one lane, and batches
/// waited 14 % and 20 % less; docs/performance.md, "Twentieth session").
pub async fn fold_every(
    sink: Sink,
    interval: Duration,
    budget: Budget,
    measured: watch::Sender<Option<Pending>>,
    mut stop: oneshot::Receiver<()>,
) -> Compaction {
    let mut done = Compaction::default();
    let mut wait = interval;
    // Over the budget, batches wait for the fold and leave the database
    // their core: the fold takes both lanes (`Share::Alone`) to bring
    // them back sooner. Under it, one lane beside the batches.
    let mut over = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut stop => return done,
        }
        let t = Instant::now();
        let share = if over { Share::Alone } else { Share::Beside };
        let result = sink.compact(share).await;
        let took = t.elapsed();
        // Progress: a fold that moved deltas (one that only tried a held
        // cell again moved none, and is no reason to fold again at once).
        let folded = matches!(result, Ok(Some(c)) if c.deltas > 0);
        record(result, took, &mut done);
        // What is left for the next fold, whoever folded: what readers pay
        // for, what an operator watches and what the budget bounds.
        let pending = count(&sink).await;
        over = budget.exceeded(pending.as_ref().map(Pending::rows));
        measured.send_replace(pending);
        wait = match (over, folded) {
            (true, true) => Duration::ZERO,
            (true, false) => RETRY_OVER_BUDGET.min(interval),
            (false, _) => interval.max(took * FOLD_SPACING),
        };
    }
}

/// One try's outcome, added to `done`, counted and logged.
fn record(result: Result<Option<Compacted>>, took: Duration, done: &mut Compaction) {
    match result {
        Ok(Some(c)) => {
            done.add(c, took);
            metrics::counter!("outreach_compactions_total").increment(1);
            metrics::counter!("outreach_compacted_deltas_total").increment(c.deltas);
            metrics::histogram!("outreach_compaction_seconds").record(took.as_secs_f64());
            if c.deltas > 0 {
                tracing::debug!(
                    deltas = c.deltas,
                    cells = c.cells,
                    ms = took.as_millis() as u64,
                    "compacted"
                );
            }
        }
        // Another worker is folding; it takes our deltas too.
        Ok(None) => {
            metrics::counter!("outreach_compactions_skipped_total", "reason" => "locked")
                .increment(1);
            tracing::debug!("compaction skipped: another worker (or a rebuild) holds the lock");
        }
        Err(e) => {
            metrics::counter!("outreach_compaction_failures_total").increment(1);
            warn!(error = %e, "compaction failed; the deltas stay visible and are folded at the next try");
        }
    }
}

/// The pending deltas, into the gauges (`None`: counting failed, said).
async fn count(sink: &Sink) -> Option<Pending> {
    let p = match sink.pending().await {
        Ok(p) => p,
        Err(e) => {
            warn!(error = %e, "counting the pending deltas failed");
            return None;
        }
    };
    for (table, rows) in p.tables() {
        metrics::gauge!("outreach_pending_deltas", "table" => table).set(rows as f64);
    }
    metrics::gauge!("outreach_oldest_pending_delta_seconds")
        .set(p.oldest.unwrap_or_default().as_secs_f64());
    metrics::gauge!("outreach_fold_held_cells").set(p.held as f64);
    Some(p)
}

/// A worker's view of the pending deltas: the folder's last count plus
/// the rows this worker has appended since. The count comes after each
/// fold, which under load takes seconds; without the worker's own rows the
/// budget was overshot by what batches wrote meanwhile (measured: 2.0 M
/// pending against a budget of 1 M at 19,000 events/s offered).
pub struct Pressure {
    measure: Measure,
    budget: Budget,
    appended: u64,
}

impl Pressure {
    pub fn new(measure: Measure, budget: Budget) -> Pressure {
        Pressure {
            measure,
            budget,
            appended: 0,
        }
    }

    /// A batch committed `rows` delta rows.
    pub fn appended(&mut self, rows: u64) {
        self.appended += rows;
    }

    /// The pending rows as this worker reckons them, taking in a new count
    /// if the folder has published one (it includes what we appended).
    fn reckon(&mut self) -> Option<u64> {
        if self.measure.has_changed().unwrap_or(false) {
            self.measure.borrow_and_update();
            self.appended = 0;
        }
        let counted = self.measure.borrow().map(|p| p.rows());
        counted.map(|n| n + self.appended)
    }

    fn over(&mut self) -> bool {
        let rows = self.reckon();
        self.budget.exceeded(rows)
    }

    /// Before a batch: waits while the pending deltas are over the budget,
    /// and says so (a warning, again every 30 s, the `outreach_backpressure`
    /// gauge). Returns how long it waited. A folder that stopped ends the
    /// wait.
    pub async fn wait(&mut self) -> Duration {
        if !self.over() {
            return Duration::ZERO;
        }
        let t = Instant::now();
        metrics::gauge!("outreach_backpressure").set(1.0);
        let say = |p: &mut Pressure| {
            warn!(
                pending = p.reckon().unwrap_or_default(),
                max_pending_deltas = p.budget.0,
                waited_s = t.elapsed().as_secs(),
                "pending deltas over database.max_pending_deltas: batches wait for the fold"
            );
        };
        say(self);
        loop {
            match tokio::time::timeout(REMIND, self.measure.changed()).await {
                Ok(Ok(())) => {
                    self.appended = 0;
                    if !self.over() {
                        break;
                    }
                }
                Ok(Err(_)) => break,
                Err(_) => say(self),
            }
        }
        let waited = t.elapsed();
        metrics::gauge!("outreach_backpressure").set(0.0);
        metrics::histogram!("outreach_backpressure_seconds").record(waited.as_secs_f64());
        info!(
            waited_ms = waited.as_millis() as u64,
            "pending deltas under budget: batches resume"
        );
        waited
    }
}

/// One fold that starts after this process's last commit, waiting while
/// another worker holds the compaction lock (its fold may have started
/// before our last batch committed).
pub async fn settle(sink: &Sink) -> Result<Compacted> {
    // The last step of a backfill can take a while (a minute after a
    // million events): say what it is doing.
    if let Ok(pending) = sink.pending().await {
        info!(
            deltas = pending.rows(),
            "folding the pending deltas into the cells (the last step)"
        );
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(600);
    let mut delay = Duration::from_millis(50);
    loop {
        match sink.compact(Share::Alone).await {
            Ok(Some(done)) => {
                info!(
                    deltas = done.deltas,
                    cells = done.cells,
                    ms = started.elapsed().as_millis() as u64,
                    "folded"
                );
                return Ok(done);
            }
            Ok(None) if Instant::now() < deadline => {}
            Ok(None) => return Err(Error::FoldLocked(deadline - started)),
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                warn!(error = %e, retry_in = ?delay, "final compaction failed; retrying");
            }
            Err(e) => return Err(e),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(rows: u64) -> Pending {
        Pending {
            regional: rows,
            oldest: Some(Duration::from_secs(1)),
            ..Default::default()
        }
    }

    #[test]
    fn a_zero_budget_is_no_bound() {
        assert!(!Budget(0).exceeded(Some(u64::MAX / 2)));
        assert!(!Budget(10).exceeded(Some(10)));
        assert!(Budget(10).exceeded(Some(11)));
        assert!(!Budget(10).exceeded(None), "unmeasured: no wait");
    }

    #[tokio::test]
    async fn batches_wait_until_a_measurement_is_under_budget() {
        let (tx, rx) = watch::channel(Some(pending(500)));
        let mut pressure = Pressure::new(rx, Budget(100));
        let waiter = tokio::spawn(async move { pressure.wait().await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        tx.send_replace(Some(pending(300)));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiter.is_finished(), "still over budget");
        tx.send_replace(Some(pending(50)));
        let waited = waiter.await.unwrap();
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
    }

    #[tokio::test]
    async fn rows_appended_since_the_count_count_until_the_next() {
        let (tx, rx) = watch::channel(Some(pending(60)));
        let mut pressure = Pressure::new(rx, Budget(100));
        assert_eq!(pressure.wait().await, Duration::ZERO);
        pressure.appended(30);
        assert!(!pressure.over(), "90 of 100");
        pressure.appended(30);
        assert!(pressure.over(), "120 of 100, though the count says 60");
        tx.send_replace(Some(pending(70)));
        assert!(!pressure.over(), "a new count includes what was appended");
    }

    #[tokio::test]
    async fn a_stopped_folder_ends_the_wait() {
        let (tx, rx) = watch::channel(Some(pending(500)));
        drop(tx);
        let mut pressure = Pressure::new(rx, Budget(100));
        assert!(pressure.wait().await < Duration::from_secs(1));
    }
}
