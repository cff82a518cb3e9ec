//! Why a cluster does not answer, when librdkafka cannot say: a look at the
//! listener itself.
//!
//! librdkafka reports an untrusted certificate and a host name mismatch in
//! the same words, says nothing at all when it speaks TLS to a plaintext
//! listener (which then waits for the rest of a "request" 369 MB long), and
//! retries each of these for as long as it may: `kafka.delivery_timeout_ms`,
//! or for ever in `run`. They are configuration mistakes that no retry
//! fixes. So once a cluster that has never answered stays silent for
//! [`AFTER`], each bootstrap address is looked at, with the client's
//! own settings: a TLS handshake, a plaintext ApiVersions request. The
//! verdict is one line naming the setting to change ([`Misconfigured`]).
//! A listener that wants SASL from a client without it closes the
//! connection too, and is told apart the same way: it answers ApiVersions
//! (asked before the SASL handshake) and closes at the next request.
//!
//! Only positive evidence gives a verdict: a listener that answers as
//! configured, or does not answer at all, gives none, and the usual wait
//! and its message follow. A certificate verdict also needs librdkafka to
//! have failed the same way, so that this check's trust store (OpenSSL's
//! defaults) never overrules librdkafka's.
//!
//! Here the decision; beside it, `problem.rs` (the verdicts and their one
//! line each), `tls.rs` (a handshake with the client's TLS settings) and
//! `kafka.rs` (Kafka requests written by hand).

mod kafka;
mod problem;
mod tls;

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use openssl::x509::X509VerifyResult;

use crate::KafkaSettings;
use crate::logs::{self, Failure};
use kafka::{Conversation, converse, speaks_kafka};
pub use problem::{Misconfigured, Problem};
use tls::{Client, Handshake, certificate_problem, speaks_tls};

/// A cluster silent this long since start is looked at.
pub const AFTER: Duration = Duration::from_secs(2);
/// ...and again this long after, while it stays silent.
const AGAIN: Duration = Duration::from_secs(10);
/// For each connection, read and write of the look.
const WAIT: Duration = Duration::from_secs(3);

/// Looks why a cluster that never answered is silent: after [`AFTER`],
/// then every [`AGAIN`] (a look that timed out on a loaded machine is not
/// the last word).
pub(crate) struct Doctor {
    settings: KafkaSettings,
    next: Duration,
}

impl Doctor {
    pub(crate) fn new(settings: &KafkaSettings) -> Doctor {
        Doctor {
            settings: settings.clone(),
            next: AFTER,
        }
    }

    /// Called while the cluster has never answered, `silent` for this long.
    pub(crate) async fn verdict(&mut self, silent: Duration) -> Option<Misconfigured> {
        let reported = logs::last_failure(silent + Duration::from_secs(10));
        // A refused login is said precisely by librdkafka itself.
        if let Some((address, Failure::Authentication(words))) = &reported {
            return Some(Misconfigured {
                address: address.clone(),
                problem: Problem::Sasl(words.clone()),
            });
        }
        if silent < self.next {
            return None;
        }
        self.next = silent + AGAIN;
        let settings = self.settings.clone();
        let found = tokio::task::spawn_blocking(move || look_at_cluster(&settings))
            .await
            .ok()
            .flatten()?;
        let librdkafka_agrees = matches!(
            &reported,
            Some((_, Failure::Tls(words))) if words.contains("verify failed")
        );
        match found.problem {
            Problem::Untrusted { .. } | Problem::NameMismatch { .. } if !librdkafka_agrees => None,
            _ => Some(found),
        }
    }
}

/// The first bootstrap address with a problem.
fn look_at_cluster(settings: &KafkaSettings) -> Option<Misconfigured> {
    settings
        .brokers
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .find_map(|address| {
            // `SSL://host:9093` is accepted by librdkafka too.
            let target = address.split_once("://").map_or(address, |(_, a)| a);
            look(settings, target).map(|problem| Misconfigured {
                address: address.to_owned(),
                problem,
            })
        })
}

fn look(settings: &KafkaSettings, address: &str) -> Option<Problem> {
    let protocol = settings
        .option("security.protocol")
        .unwrap_or("plaintext")
        .to_ascii_lowercase();
    let sasl = protocol.starts_with("sasl");
    let wants_sasl =
        |c: Conversation| (c == Conversation::WantsSasl && !sasl).then_some(Problem::SaslRequired);
    if !protocol.ends_with("ssl") {
        let mut tcp = connect(address)?;
        return match converse(&mut tcp).unwrap_or(Conversation::NotKafka) {
            Conversation::NotKafka => speaks_tls(address).then_some(Problem::ExpectsTls),
            c => wants_sasl(c),
        };
    }
    let client = Client::new(settings)?;
    match client.handshake(address)? {
        // TLS 1.3 refuses a client certificate after the handshake, in
        // answer to the first request.
        Handshake::Up(mut tls) => match converse(&mut tls) {
            Ok(c) => wants_sasl(c),
            Err(error) => {
                tracing::debug!(address, %error, "diagnose: TLS up, then the request failed");
                client.refused_certificate(&error)
            }
        },
        Handshake::Rejected { verify, .. } if verify != X509VerifyResult::OK => {
            Some(certificate_problem(settings, address, verify))
        }
        Handshake::Rejected { error, .. } => {
            tracing::debug!(address, %error, "diagnose: TLS handshake failed");
            client
                .refused_certificate(&error)
                .or_else(|| speaks_kafka(address)?.then_some(Problem::Plaintext))
        }
        Handshake::NotTls => speaks_kafka(address)?.then_some(Problem::Plaintext),
    }
}

/// A TCP connection to `address` with the look's time-outs; `None` when it
/// cannot be reached.
fn connect(address: &str) -> Option<TcpStream> {
    let addr = address.to_socket_addrs().ok()?.next()?;
    let tcp = TcpStream::connect_timeout(&addr, WAIT).ok()?;
    tcp.set_read_timeout(Some(WAIT)).ok()?;
    tcp.set_write_timeout(Some(WAIT)).ok()?;
    Some(tcp)
}
