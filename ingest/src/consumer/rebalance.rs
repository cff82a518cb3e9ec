//! What the loop does when the group moves partitions: on a revoke, send
//! the batch in progress and settle before reading again; on an assignment,
//! place each partition where the rebalance callback found it resumes
//! (`context.rs`), and, draining, learn the end offsets to drain to.

use std::time::Instant;

use tokio::sync::mpsc;

use super::context::{Assignment, Rebalance};
use super::partitions::{Key, Resume};
use super::{Ingest, Mode};
use crate::Result;
use crate::batch::Batch;

impl Ingest {
    /// Counts the rebalance and applies it to where each partition stands.
    pub(super) async fn on_rebalance(
        &mut self,
        ev: Rebalance,
        out: &mpsc::Sender<Batch>,
    ) -> Result<()> {
        self.summary.rebalances += 1;
        metrics::counter!("outreach_rebalances_total").increment(1);
        match ev {
            Rebalance::Revoked => {
                self.flush(out).await?;
                self.parts.revoke();
                // An empty assignment is not a drained one: wait for the next.
                self.assigned = false;
                self.publish_assignment();
                self.settling = true;
            }
            Rebalance::Assigned(list) => {
                self.assigned = true;
                self.others_end.clear();
                // The drain's quiet period counts from here: the end offsets
                // some brokers report are too low, so only silence after the
                // assignment says the partitions are empty.
                self.last_message = Instant::now();
                let list: Vec<(Key, Resume)> = list
                    .into_iter()
                    .map(|a: Assignment| (Key::new(self.topic(&a.topic), a.partition), a.resume))
                    .collect();
                self.parts.assign(list);
                if self.mode == Mode::UntilCaughtUp {
                    self.fetch_ends().await;
                    self.publish_left();
                }
                self.publish_assignment();
            }
        }
        Ok(())
    }

    /// How many partitions this member holds, for readiness and the gauge.
    fn publish_assignment(&self) {
        let n = if self.assigned { self.parts.len() } else { 0 };
        self.assigned_gauge
            .store(n, std::sync::atomic::Ordering::Relaxed);
        metrics::gauge!("outreach_assigned_partitions").set(n as f64);
    }
}
