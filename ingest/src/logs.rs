//! What librdkafka says, in tracing: its log lines and its errors, with
//! failures to reach a broker collapsed. librdkafka retries a broker it
//! cannot reach every few hundred milliseconds and reports each attempt
//! two or three times (a `FAIL` log line, a transport error, "all brokers
//! down"): hundreds of lines a minute that bury the one thing to know. Here
//! the first failure for a broker is one warning naming its address, the
//! setting and what happened; while it goes on failing, one line a
//! [`REMIND_EVERY`] says for how long; the rest goes to debug. (librdkafka
//! itself mutes identical reports for 30 s, so attempts cannot be counted.)
//!
//! Every client of this crate (the consumer, the dead-letter producer,
//! `publish`'s producer, the admin and raw-read clients of `bench`) uses
//! [`Logs`], and they share one record of failures per process: a broker
//! down is the same news whichever client tried it, and it is said once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tracing::{debug, error, info, warn};

/// While a broker stays unreachable, a line says so this often.
pub const REMIND_EVERY: Duration = Duration::from_secs(30);
/// A failure after this long without one starts a new outage: said again
/// as a first failure. librdkafka retries at least every 10 s
/// (`reconnect.backoff.max.ms`) but mutes a repeated report for 30 s.
/// (The probe also calls [`reachable`] when the cluster answers again.)
const NEW_OUTAGE_AFTER: Duration = Duration::from_secs(120);
/// Failures reported this soon after the cluster answered again are old.
const AFTER_RECOVERY: Duration = Duration::from_secs(15);
/// The setting, as a file key and as an environment variable.
pub const SETTING: &str = "kafka.brokers / OUTREACH__KAFKA__BROKERS";

/// The context of every Kafka client this crate makes: routes librdkafka's
/// logs and errors into tracing (target `librdkafka`).
#[derive(Clone, Copy, Default)]
pub struct Logs;

impl ClientContext for Logs {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self::error(&error, reason);
    }
}

impl ConsumerContext for Logs {}

/// Why a broker could not be reached, as librdkafka said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Refused,
    TimedOut,
    /// The host name does not resolve.
    NameNotFound,
    /// SASL: the broker refused the credentials.
    Authentication(String),
    /// TLS: the handshake failed (certificates, or a plaintext listener).
    Tls(String),
    /// The connection closed before it was set up (a listener expecting TLS
    /// or SASL, a proxy with nothing behind it...).
    Disconnected,
    /// Anything else (disconnected, reset by peer...), in librdkafka's words.
    Other(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Refused => f.write_str("connection refused"),
            Failure::TimedOut => f.write_str("timed out"),
            Failure::NameNotFound => f.write_str("name not found"),
            Failure::Authentication(m) => write!(f, "authentication failed ({m})"),
            Failure::Tls(m) => write!(f, "TLS failed ({m})"),
            Failure::Disconnected => f.write_str("disconnected while connecting"),
            Failure::Other(m) => f.write_str(m),
        }
    }
}

impl Failure {
    /// What to check, for the end of a line.
    pub fn advice(&self) -> &'static str {
        match self {
            Failure::Refused => "check that a broker listens at that address",
            Failure::TimedOut => "check the host, the port and any firewall between",
            Failure::NameNotFound => "check the host name",
            Failure::Authentication(_) => "check sasl.username / sasl.password under kafka.options",
            Failure::Tls(_) => {
                "check security.protocol and ssl.* under kafka.options, and that the listener speaks TLS"
            }
            Failure::Disconnected => {
                "check that the broker runs, and security.protocol under kafka.options if its listener expects TLS or SASL"
            }
            Failure::Other(_) => "check the address and that the broker runs",
        }
    }
}

/// A librdkafka report of a failed connection, `ADDRESS/ID: TEXT`
/// (`127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed:
/// Connection refused (after 0ms in state CONNECT)`), as (address, failure).
/// A log line's `[thrd:...]: ` prefix and a `sasl_ssl://` scheme are
/// dropped; `None` when the text names no broker.
pub fn parse(text: &str) -> Option<(String, Failure)> {
    let text = match text.strip_prefix("[thrd:") {
        Some(rest) => rest.split_once("]: ")?.1,
        None => text,
    };
    let (name, mut what) = text.split_once(": ")?;
    let name = name.split_once("://").map_or(name, |(_, n)| n);
    let mut address = name.rsplit_once('/').map_or(name, |(a, _)| a);
    // A logical broker ("GroupCoordinator: 127.0.0.1:9092: Disconnected")
    // names the address it was using after its own name.
    if !address.contains(':')
        && let Some((a, rest)) = what.split_once(": ")
        && a.contains(':')
    {
        (address, what) = (a, rest);
    }
    if !address.contains(':') || address.contains(' ') {
        return None;
    }
    // "(after 0ms in state CONNECT, 1 identical error(s) suppressed)"
    let what = what.split(" (after ").next().unwrap_or(what).trim();
    let lower = what.to_ascii_lowercase();
    let failure = if lower.contains("connection refused") {
        Failure::Refused
    } else if lower.contains("failed to resolve") || lower.contains("name or service not known") {
        Failure::NameNotFound
    } else if lower.contains("timed out") {
        Failure::TimedOut
    } else if lower.contains("sasl") || lower.contains("authentication") {
        Failure::Authentication(what.to_owned())
    } else if lower.starts_with("disconnected") {
        // librdkafka adds guesses ("connecting to a SSL listener?"): the
        // advice covers them.
        Failure::Disconnected
    } else if lower.contains("ssl") {
        Failure::Tls(what.to_owned())
    } else {
        let mut chars = what.chars();
        let first = chars.next().map(|c| c.to_ascii_lowercase());
        Failure::Other(first.into_iter().chain(chars).collect())
    };
    Some((address.to_owned(), failure))
}

/// Whether a report is about a connection being set up (`in state
/// CONNECT`, `APIVERSION_QUERY`, `AUTH...`), not an established one that
/// closed (`in state UP`: librdkafka reconnects, and says if that fails).
/// A connection closed within a second of being up counts as one being set
/// up: the listener took ApiVersions and refused the rest (it wants SASL,
/// or is a proxy with nothing behind it), and does so at every attempt.
fn while_connecting(text: &str) -> bool {
    let Some((before, state)) = text.rsplit_once(" in state ") else {
        return true;
    };
    if state.split([',', ')']).next().unwrap_or(state) != "UP" {
        return true;
    }
    // "(after 0ms in state UP"
    before
        .rsplit_once("(after ")
        .and_then(|(_, ms)| ms.strip_suffix("ms")?.parse::<u64>().ok())
        .is_some_and(|ms| ms < 1000)
}

/// One broker's run of failures.
#[derive(Debug)]
struct Outage {
    failure: Failure,
    since: Instant,
    last: Instant,
    said: Instant,
}

/// What to say about a failure.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Say {
    /// A broker that was fine until now.
    First,
    /// Still failing, for this long.
    Still(Duration),
    Nothing,
}

/// The failures seen, per broker address.
#[derive(Debug, Default)]
pub(crate) struct Outages {
    brokers: HashMap<String, Outage>,
    /// When the cluster last answered after failures.
    recovered: Option<Instant>,
}

impl Outages {
    pub(crate) fn failed(&mut self, address: &str, failure: Failure, now: Instant) -> Say {
        match self.brokers.get_mut(address) {
            Some(o) if now.duration_since(o.last) < NEW_OUTAGE_AFTER => {
                o.last = now;
                o.failure = failure;
                if now.duration_since(o.said) >= REMIND_EVERY {
                    o.said = now;
                    Say::Still(now.duration_since(o.since))
                } else {
                    Say::Nothing
                }
            }
            // Right after the cluster answered again, another client's
            // attempt from before may still report its failure (librdkafka
            // holds repeated reports back): old news.
            _ if self
                .recovered
                .is_some_and(|r| now.duration_since(r) < AFTER_RECOVERY) =>
            {
                Say::Nothing
            }
            _ => {
                self.brokers.insert(
                    address.to_owned(),
                    Outage {
                        failure,
                        since: now,
                        last: now,
                        said: now,
                    },
                );
                Say::First
            }
        }
    }

    /// The cluster answered: a later failure starts a new outage.
    fn recovered(&mut self, now: Instant) {
        if !self.brokers.is_empty() {
            self.brokers.clear();
            self.recovered = Some(now);
        }
    }

    /// The most recent failure seen within `within`, with its address.
    fn latest(&self, now: Instant, within: Duration) -> Option<(String, Failure)> {
        self.brokers
            .iter()
            .filter(|(_, o)| now.duration_since(o.last) <= within)
            .max_by_key(|(_, o)| o.last)
            .map(|(a, o)| (a.clone(), o.failure.clone()))
    }
}

/// One per process: see the module's comment.
static OUTAGES: Mutex<Option<Outages>> = Mutex::new(None);

fn with_outages<T>(f: impl FnOnce(&mut Outages) -> T) -> T {
    let mut guard = OUTAGES.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(Outages::default))
}

/// The cluster answered: any later failure is a new outage, said as such.
pub fn reachable() {
    with_outages(|o| o.recovered(Instant::now()));
}

/// The most recent failure to reach a broker within `within`, as
/// (address, failure): why a delivery or a metadata request timed out.
pub fn last_failure(within: Duration) -> Option<(String, Failure)> {
    with_outages(|o| o.latest(Instant::now(), within))
}

/// A failed connection: one line the first time, then one a [`REMIND_EVERY`].
fn connection_failed(address: &str, failure: Failure) {
    let say = with_outages(|o| o.failed(address, failure.clone(), Instant::now()));
    match say {
        Say::First => warn!(
            target: "librdkafka",
            broker = address,
            "the broker at {address} ({SETTING}) cannot be reached: {failure}; {}; retrying",
            failure.advice()
        ),
        Say::Still(for_) => warn!(
            target: "librdkafka",
            broker = address,
            "the broker at {address} ({SETTING}) is still unreachable after {} s: {failure}; retrying",
            for_.as_secs()
        ),
        Say::Nothing => {}
    }
}

/// Errors that only say a broker is out of reach: the connection failures
/// behind them (refused, TLS, SASL) are reported once by [`Logs`], so
/// callers log these at debug.
pub fn is_connection_error(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::Resolve
                | RDKafkaErrorCode::SSL
                | RDKafkaErrorCode::Authentication
        )
    )
}

pub(crate) fn log(level: RDKafkaLogLevel, fac: &str, message: &str) {
    // A failed connection attempt comes at error level, or at info or
    // warning when the broker closed it before it was set up. An
    // established connection that closed is not news by itself (librdkafka
    // reconnects; a broker's idle reaper does that all the time).
    let severe = matches!(
        level,
        RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
    );
    if fac == "FAIL"
        && (severe || while_connecting(message))
        && !matches!(level, RDKafkaLogLevel::Debug)
        && let Some((address, failure)) = parse(message)
    {
        connection_failed(&address, failure);
        debug!(target: "librdkafka", fac, "{message}");
        return;
    }
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => error!(target: "librdkafka", fac, "{message}"),
        RDKafkaLogLevel::Warning => warn!(target: "librdkafka", fac, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            info!(target: "librdkafka", fac, "{message}")
        }
        RDKafkaLogLevel::Debug => debug!(target: "librdkafka", fac, "{message}"),
    }
}

pub(crate) fn error(error: &KafkaError, reason: &str) {
    let code = error.rdkafka_error_code();
    let reported = matches!(
        code,
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::Resolve
                | RDKafkaErrorCode::Authentication
                | RDKafkaErrorCode::SSL
        )
    )
    .then(|| parse(reason))
    .flatten();
    if let Some((address, failure)) = reported {
        connection_failed(&address, failure);
        debug!(target: "librdkafka", %error, "{reason}");
    } else if is_connection_error(error) || code == Some(RDKafkaErrorCode::UnknownTopicOrPartition)
    {
        // "1/1 brokers are down": the failures above say which and why.
        // A missing topic: the probe says it, with the setting to check.
        debug!(target: "librdkafka", %error, "{reason}");
    } else {
        warn!(target: "librdkafka", %error, "{reason}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn librdkafka_reports_give_the_address_and_what_happened() {
        for (text, address, failure) in [
            (
                "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused (after 0ms in state CONNECT)",
                "127.0.0.1:1",
                Failure::Refused,
            ),
            (
                "[thrd:nonexistent.invalid:9092/bootstrap]: nonexistent.invalid:9092/bootstrap: Failed to resolve 'nonexistent.invalid:9092': Name or service not known (after 0ms in state CONNECT, 1 identical error(s) suppressed)",
                "nonexistent.invalid:9092",
                Failure::NameNotFound,
            ),
            (
                "kafka-1:9092/1: Connection setup timed out in state CONNECT (after 30029ms in state CONNECT)",
                "kafka-1:9092",
                Failure::TimedOut,
            ),
            (
                "sasl_ssl://kafka-1:9093/bootstrap: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 20ms in state AUTH_REQ)",
                "kafka-1:9093",
                Failure::Authentication("SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512".into()),
            ),
            (
                "[::1]:9092/bootstrap: Disconnected (after 3ms in state APIVERSION_QUERY)",
                "[::1]:9092",
                Failure::Disconnected,
            ),
            (
                "127.0.0.1:4000/1: Disconnected: requesting ApiVersion: might be caused by incorrect security.protocol configuration (connecting to a SSL listener?) or broker version is < 0.10 (see api.version.request) (after 0ms in state APIVERSION_QUERY, 4 identical error(s) suppressed)",
                "127.0.0.1:4000",
                Failure::Disconnected,
            ),
            (
                "GroupCoordinator: 127.0.0.1:33331: Disconnected: connection reset by peer (after 12ms in state APIVERSION_QUERY)",
                "127.0.0.1:33331",
                Failure::Disconnected,
            ),
            (
                "b:9092/1: Receive failed: Connection reset by peer (after 5ms in state UP)",
                "b:9092",
                Failure::Other("receive failed: Connection reset by peer".into()),
            ),
        ] {
            assert_eq!(parse(text), Some((address.to_owned(), failure)), "{text}");
        }
        assert_eq!(parse("1/1 brokers are down"), None);
        assert_eq!(parse("GroupCoordinator: Disconnected"), None);
        assert!(while_connecting(
            "b:9092/1: Disconnected (after 3ms in state APIVERSION_QUERY, 1 identical error(s) suppressed)"
        ));
        assert!(!while_connecting(
            "b:9092/1: Disconnected (after 61234ms in state UP)"
        ));
        // Up, then closed at the first request: a listener that wants SASL.
        assert!(while_connecting(
            "b:9092/bootstrap: Disconnected: connection reset by peer (after 0ms in state UP, 1 identical error(s) suppressed)"
        ));
    }

    #[test]
    fn a_broker_failing_on_is_said_once_then_once_per_interval() {
        let mut o = Outages::default();
        let t0 = Instant::now();
        assert_eq!(o.failed("b:9092", Failure::Refused, t0), Say::First);
        // librdkafka retries every few hundred milliseconds, then every 10 s.
        let mut said = Vec::new();
        let mut t = t0;
        for _ in 0..200 {
            t += Duration::from_millis(500);
            match o.failed("b:9092", Failure::Refused, t) {
                Say::Nothing => {}
                other => said.push((t.duration_since(t0), other)),
            }
        }
        // 100 s of failures: one reminder per 30 s.
        assert_eq!(
            said,
            [30, 60, 90].map(|s| (Duration::from_secs(s), Say::Still(Duration::from_secs(s))))
        );
        // Another broker is news of its own.
        assert_eq!(o.failed("c:9092", Failure::TimedOut, t), Say::First);
        // A failure long after the last one is a new outage.
        let later = t + NEW_OUTAGE_AFTER + Duration::from_secs(1);
        assert_eq!(o.failed("b:9092", Failure::Refused, later), Say::First);
        assert_eq!(
            o.latest(later, Duration::from_secs(5)),
            Some(("b:9092".to_owned(), Failure::Refused))
        );
        assert_eq!(
            o.latest(later + Duration::from_secs(10), Duration::from_secs(5)),
            None
        );
        // The cluster answered: a late report is old news, a failure after
        // that is a new outage.
        let back = later + Duration::from_secs(5);
        o.recovered(back);
        let late = back + Duration::from_secs(2);
        assert_eq!(o.failed("b:9092", Failure::Refused, late), Say::Nothing);
        let again = back + AFTER_RECOVERY;
        assert_eq!(o.failed("b:9092", Failure::Refused, again), Say::First);
    }
}
