//! The metadata probe: every few seconds, asks the cluster about each
//! subscribed topic. It tells readiness whether a broker answers, and which
//! topics do not exist. A probe of its own, because the consumer's
//! callbacks stop while backpressure holds the loop, and because a consumer
//! subscribed to a missing topic says so once and then waits in silence.
//!
//! `run` goes on waiting for a missing topic (it may be created later) and
//! says so at a bounded rate; `run --until-caught-up` stops with an error
//! (see [`crate::Error::MissingTopics`]), and also when no broker has
//! answered for `kafka.delivery_timeout_ms` ([`crate::Error::Unreachable`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::metadata::Metadata;
use rdkafka::types::RDKafkaRespErr;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::diagnose::{Doctor, Misconfigured};

/// Time between two rounds of metadata requests.
const EVERY: Duration = Duration::from_secs(2);
/// How long one metadata request may take.
const TIMEOUT: Duration = Duration::from_secs(3);
/// A topic is missing once this many answers in a row said so: a topic
/// created a moment ago may not be in every broker's metadata yet.
const ANSWERS: u32 = 2;
/// While a topic is missing, the warning is repeated this often.
const REMIND_EVERY: Duration = Duration::from_secs(60);

/// A subscribed topic and the setting that names it (`kafka.missions_topic`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub name: String,
    pub setting: &'static str,
}

impl Topic {
    /// `OUTREACH__KAFKA__MISSIONS_TOPIC` for `kafka.missions_topic`.
    pub fn variable(&self) -> String {
        format!(
            "OUTREACH__{}",
            self.setting.replace('.', "__").to_ascii_uppercase()
        )
    }
}

/// What the probe found, for readiness and for the consumer loop.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    /// The cluster answered the last round.
    pub reachable: Arc<AtomicBool>,
    /// Subscribed topics the cluster says do not exist (for `/readyz`).
    pub missing: Arc<Mutex<Vec<String>>>,
    /// Since when no round was answered (`None` while the cluster answers).
    pub unanswered_since: Arc<Mutex<Option<Instant>>>,
}

/// Runs until aborted; sends the missing topics on `missing_tx` whenever
/// that list changes, and with `waiting` (`run` without
/// `--until-caught-up`) logs that it waits for them. While the cluster has
/// never answered, `doctor` looks into why, and a setting at fault is sent
/// on `misconfigured_tx`, in every mode: no wait fixes it. (Once the
/// cluster has answered, a later failure is an outage, and is waited out.)
pub(crate) async fn run<C>(
    consumer: Arc<StreamConsumer<C>>,
    topics: Vec<Topic>,
    findings: Findings,
    missing_tx: watch::Sender<Vec<Topic>>,
    mut doctor: Doctor,
    misconfigured_tx: watch::Sender<Option<Misconfigured>>,
    waiting: bool,
) where
    C: rdkafka::consumer::ConsumerContext + 'static,
{
    let mut missing = Missing::new(waiting);
    let started = Instant::now();
    let mut answered_once = false;
    loop {
        let answer = ask(&consumer, &topics).await;
        answered_once |= answer.is_some();
        if !answered_once && let Some(m) = doctor.verdict(started.elapsed()).await {
            misconfigured_tx.send_replace(Some(m));
            return;
        }
        findings.answered(answer.is_some());
        if let Some(exists) = answer {
            missing.count(&topics, &exists);
            missing.publish(&topics, &findings, &missing_tx);
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// One round: whether each topic exists, or `None` where the cluster did
/// not answer. One request per topic: asking for every topic of a large
/// cluster would cost more than the answer is worth.
async fn ask<C>(consumer: &Arc<StreamConsumer<C>>, topics: &[Topic]) -> Option<Vec<bool>>
where
    C: rdkafka::consumer::ConsumerContext + 'static,
{
    let (c, names) = (
        consumer.clone(),
        topics.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
    );
    tokio::task::spawn_blocking(move || {
        names
            .iter()
            .map(|t| c.fetch_metadata(Some(t), TIMEOUT).map(|md| exists(&md, t)))
            .collect::<Result<Vec<bool>, _>>()
            .ok()
    })
    .await
    .unwrap_or(None)
}

impl Findings {
    /// Records whether the cluster answered this round, and says when that
    /// changes.
    fn answered(&self, ok: bool) {
        {
            let mut since = self.unanswered_since.lock().expect("not poisoned");
            *since = if ok {
                None
            } else {
                since.or(Some(Instant::now()))
            };
        }
        let before = self.reachable.swap(ok, Ordering::Relaxed);
        metrics::gauge!("outreach_broker_reachable").set(if ok { 1.0 } else { 0.0 });
        if before && !ok {
            warn!("no broker reachable: waiting for the cluster to come back");
        } else if ok && !before {
            info!("brokers reachable");
            crate::logs::reachable();
        }
    }
}

/// The topics found missing: how many answers in a row said so of each
/// (one is not enough, see [`ANSWERS`]), and when the wait for them was
/// last said.
struct Missing {
    misses: HashMap<String, u32>,
    reminded: Instant,
    /// `run` waits for missing topics and says so; a drain stops instead.
    waiting: bool,
}

impl Missing {
    fn new(waiting: bool) -> Missing {
        Missing {
            misses: HashMap::new(),
            reminded: Instant::now(),
            waiting,
        }
    }

    /// Counts one answer: whether each of `topics` exists.
    fn count(&mut self, topics: &[Topic], exists: &[bool]) {
        for (t, e) in topics.iter().zip(exists) {
            if *e {
                self.misses.remove(&t.name);
            } else {
                *self.misses.entry(t.name.clone()).or_default() += 1;
            }
        }
    }

    /// Says which topics appeared and which are awaited (new ones at once,
    /// the others every [`REMIND_EVERY`]), and hands the list on when it
    /// changed: to readiness, the gauge, and the loop.
    fn publish(
        &mut self,
        topics: &[Topic],
        findings: &Findings,
        missing_tx: &watch::Sender<Vec<Topic>>,
    ) {
        let missing: Vec<Topic> = topics
            .iter()
            .filter(|t| self.misses.get(&t.name).is_some_and(|n| *n >= ANSWERS))
            .cloned()
            .collect();
        let previous = missing_tx.borrow().clone();
        for t in previous.iter().filter(|t| !missing.contains(t)) {
            info!(topic = %t.name, "topic exists now: the consumer joins it within seconds");
        }
        let new = missing.iter().any(|t| !previous.contains(t));
        if self.waiting && (new || (!missing.is_empty() && self.reminded.elapsed() >= REMIND_EVERY))
        {
            self.reminded = Instant::now();
            for t in &missing {
                warn!(
                    topic = %t.name,
                    setting = t.setting,
                    "topic does not exist: waiting for it to be created (or correct {} / {} if the name is wrong)",
                    t.setting,
                    t.variable()
                );
            }
        }
        if missing != previous {
            *findings.missing.lock().expect("not poisoned") =
                missing.iter().map(|t| t.name.clone()).collect();
            metrics::gauge!("outreach_missing_topics").set(missing.len() as f64);
            missing_tx.send_replace(missing);
        }
    }
}

/// Whether the answer describes `topic` as existing: not unknown, and with
/// partitions. Other errors (no leader yet...) pass: they are transient.
fn exists(md: &Metadata, topic: &str) -> bool {
    match md.topics().iter().find(|t| t.name() == topic) {
        None => false,
        Some(t) => match t.error() {
            Some(e) => e != RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
            None => !t.partitions().is_empty(),
        },
    }
}

/// One line for `--until-caught-up`: which topics, and what to do.
pub fn missing_message(brokers: &str, topics: &[Topic]) -> String {
    let names: Vec<String> = topics
        .iter()
        .map(|t| format!("{} ({})", t.name, t.setting))
        .collect();
    let (subject, verb) = if topics.len() == 1 {
        ("topic", "does")
    } else {
        ("topics", "do")
    };
    let create = topics
        .first()
        .map(|t| {
            format!(
                "kafka-topics.sh --bootstrap-server {brokers} --create --topic {} --partitions 6",
                t.name
            )
        })
        .unwrap_or_default();
    let variables: Vec<String> = topics
        .iter()
        .map(|t| format!("{} / {}", t.setting, t.variable()))
        .collect();
    format!(
        "{subject} {} {verb} not exist on the cluster at {brokers}: create {} (e.g. `{create}`), or correct {} if the name is wrong",
        names.join(", "),
        if topics.len() == 1 { "it" } else { "them" },
        variables.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_topic_the_setting_and_the_fix_on_one_line() {
        let t = Topic {
            name: "outreach.missions.v1".into(),
            setting: "kafka.missions_topic",
        };
        let m = missing_message("b:9092", std::slice::from_ref(&t));
        assert_eq!(
            m,
            "topic outreach.missions.v1 (kafka.missions_topic) does not exist on the cluster at b:9092: create it (e.g. `kafka-topics.sh --bootstrap-server b:9092 --create --topic outreach.missions.v1 --partitions 6`), or correct kafka.missions_topic / OUTREACH__KAFKA__MISSIONS_TOPIC if the name is wrong"
        );
        let two = [
            t,
            Topic {
                name: "a".into(),
                setting: "kafka.activities_topic",
            },
        ];
        let m = missing_message("b:9092", &two);
        assert!(m.starts_with("topics outreach.missions.v1 (kafka.missions_topic), a (kafka.activities_topic) do not exist"), "{m}");
        assert!(!m.contains('\n'));
    }
}
