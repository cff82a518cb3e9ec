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

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use openssl::pkey::PKey;
use openssl::ssl::{HandshakeError, SslConnector, SslMethod, SslStream, SslVerifyMode};
use openssl::x509::{X509, X509VerifyResult};

use crate::KafkaSettings;
use crate::logs::{self, Failure};

/// A cluster silent this long since start is looked at.
pub const AFTER: Duration = Duration::from_secs(2);
/// ...and again this long after, while it stays silent.
const AGAIN: Duration = Duration::from_secs(10);
/// For each connection, read and write of the look.
const WAIT: Duration = Duration::from_secs(3);
/// OpenSSL's `X509_V_ERR_HOSTNAME_MISMATCH` and `X509_V_ERR_IP_ADDRESS_MISMATCH`.
const NAME_MISMATCH: [i32; 2] = [62, 64];
/// Client certificate settings other than a PEM file pair: this check does
/// not load them, so it says nothing about client certificates then.
const OTHER_CLIENT_CERTS: [&str; 4] = [
    "ssl.keystore.location",
    "ssl.certificate.pem",
    "ssl.key.pem",
    "ssl.engine.id",
];

/// A setting that keeps the client from ever talking to a broker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the broker at {address} ({}) {problem}", logs::SETTING)]
pub struct Misconfigured {
    pub address: String,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The broker's certificate does not chain to a CA the client trusts:
    /// OpenSSL's reason, and `ssl.ca.location` if set.
    Untrusted { reason: String, ca: Option<String> },
    /// It chains, but is for another name than the one connected to.
    NameMismatch { host: String },
    /// The listener asks for a client certificate and none is set.
    ClientCertificateRequired,
    /// The listener refused the client certificate given (its alert).
    ClientCertificateRefused(String),
    /// A TLS client at a plaintext listener.
    Plaintext,
    /// A plaintext client at a TLS listener.
    ExpectsTls,
    /// The broker refused SASL authentication (librdkafka's words).
    Sasl(String),
    /// The listener wants SASL and the client does not speak it.
    SaslRequired,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Untrusted { reason, ca } => {
                write!(
                    f,
                    "presents a certificate that is not trusted ({reason}): set \"ssl.ca.location\" under kafka.options to the file of the CA that signed it"
                )?;
                match ca {
                    Some(ca) => write!(f, " (it is {ca} now)"),
                    None => f.write_str(" (unset now: the system's CAs are used)"),
                }
            }
            Problem::NameMismatch { host } => write!(
                f,
                "presents a certificate that does not match the name {host}: connect by a name the certificate holds (kafka.brokers, or the brokers' advertised.listeners)"
            ),
            Problem::ClientCertificateRequired => f.write_str(
                "requires a client certificate: set \"ssl.certificate.location\" and \"ssl.key.location\" under kafka.options",
            ),
            Problem::ClientCertificateRefused(alert) => write!(
                f,
                "refused the client certificate ({alert}): check \"ssl.certificate.location\" and \"ssl.key.location\" under kafka.options, and that the brokers trust its CA"
            ),
            Problem::Plaintext => f.write_str(
                "speaks plaintext, not TLS: set \"security.protocol\" under kafka.options to PLAINTEXT or SASL_PLAINTEXT, or use the cluster's TLS listener",
            ),
            Problem::ExpectsTls => f.write_str(
                "expects TLS: set \"security.protocol\" under kafka.options to SSL or SASL_SSL, with \"ssl.ca.location\"",
            ),
            Problem::SaslRequired => f.write_str(
                "requires SASL authentication: set \"security.protocol\" under kafka.options to SASL_SSL (or SASL_PLAINTEXT), with \"sasl.mechanism\", \"sasl.username\" and \"sasl.password\"",
            ),
            Problem::Sasl(words) => write!(
                f,
                "refused SASL authentication ({words}): check \"sasl.mechanism\", \"sasl.username\" and \"sasl.password\" under kafka.options (or kafka.secret_files)"
            ),
        }
    }
}

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
            Some(if NAME_MISMATCH.contains(&verify.as_raw()) {
                Problem::NameMismatch {
                    host: host_of(address).to_owned(),
                }
            } else {
                Problem::Untrusted {
                    reason: verify.error_string().to_owned(),
                    ca: settings.option("ssl.ca.location").map(str::to_owned),
                }
            })
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

/// How a TLS handshake went.
enum Handshake {
    Up(SslStream<TcpStream>),
    /// The server answered in TLS and the handshake failed: the result of
    /// verifying its certificate, and OpenSSL's error (an alert...).
    Rejected {
        verify: X509VerifyResult,
        error: String,
    },
    /// No TLS answer: closed, silent, or something else than TLS.
    NotTls,
}

/// The client's side of TLS, built from its librdkafka settings.
struct Client {
    connector: SslConnector,
    verify_name: bool,
    /// A client certificate is loaded.
    has_certificate: bool,
    /// The settings name client certificates in a form not loaded here.
    other_certificate: bool,
}

impl Client {
    /// `None` when the settings cannot be loaded as given (librdkafka
    /// says what is wrong with them, at start).
    fn new(settings: &KafkaSettings) -> Option<Client> {
        let mut builder = SslConnector::builder(SslMethod::tls_client()).ok()?;
        match settings.option("ssl.ca.location") {
            Some(ca) if std::path::Path::new(ca).is_dir() => builder
                .load_verify_locations(None, Some(ca.as_ref()))
                .ok()?,
            Some(ca) => builder.set_ca_file(ca).ok()?,
            None => system_cas(&mut builder),
        }
        if let Some(pem) = settings.option("ssl.ca.pem") {
            let cert = X509::from_pem(pem.as_bytes()).ok()?;
            builder.cert_store_mut().add_cert(cert).ok()?;
        }
        let mut has_certificate = false;
        if let (Some(cert), Some(key)) = (
            settings.option("ssl.certificate.location"),
            settings.option("ssl.key.location"),
        ) {
            builder.set_certificate_chain_file(cert).ok()?;
            let pem = std::fs::read(key).ok()?;
            let key = match settings.option("ssl.key.password") {
                Some(p) => PKey::private_key_from_pem_passphrase(&pem, p.as_bytes()),
                None => PKey::private_key_from_pem(&pem),
            }
            .ok()?;
            builder.set_private_key(&key).ok()?;
            has_certificate = true;
        }
        let verify_name = settings
            .option("ssl.endpoint.identification.algorithm")
            .is_none_or(|a| !a.eq_ignore_ascii_case("none"));
        let other_certificate = OTHER_CLIENT_CERTS
            .iter()
            .any(|k| settings.option(k).is_some());
        Some(Client {
            connector: builder.build(),
            verify_name,
            has_certificate,
            other_certificate,
        })
    }

    fn handshake(&self, address: &str) -> Option<Handshake> {
        handshake(&self.connector, address, Some(self.verify_name))
    }

    /// The problem an error from the server's side says about the client's
    /// certificate, if any.
    fn refused_certificate(&self, error: &str) -> Option<Problem> {
        if self.other_certificate {
            return None;
        }
        if !self.has_certificate && error.contains("certificate required") {
            return Some(Problem::ClientCertificateRequired);
        }
        let alert = [
            "unknown ca",
            "bad certificate",
            "certificate unknown",
            "certificate expired",
            "certificate revoked",
            "unsupported certificate",
        ]
        .into_iter()
        .find(|a| error.contains(a))?;
        self.has_certificate
            .then(|| Problem::ClientCertificateRefused(alert.to_owned()))
    }
}

/// A handshake with `address`, checking the certificate (and the name it
/// holds, if `verify_name` says so) or not at all (`None`); `None` when the
/// address cannot be reached.
fn handshake(
    connector: &SslConnector,
    address: &str,
    verify_name: Option<bool>,
) -> Option<Handshake> {
    let tcp = connect(address)?;
    let mut config = connector.configure().ok()?;
    config.set_verify_hostname(verify_name.unwrap_or(false));
    if verify_name.is_none() {
        config.set_verify(SslVerifyMode::NONE);
    }
    Some(match config.connect(host_of(address), tcp) {
        Ok(tls) => Handshake::Up(tls),
        Err(HandshakeError::Failure(mid)) => {
            let error = mid.error().to_string();
            // Something else than TLS answered, or nothing did.
            if error.contains("wrong version number")
                || error.contains("packet length too long")
                || error.contains("unexpected eof")
                || mid.error().ssl_error().is_none()
            {
                Handshake::NotTls
            } else {
                Handshake::Rejected {
                    verify: mid.ssl().verify_result(),
                    error,
                }
            }
        }
        Err(_) => Handshake::NotTls,
    })
}

/// Without `ssl.ca.location`, librdkafka looks for the system's CA bundle
/// in the usual places; a vendored OpenSSL's own default is elsewhere.
fn system_cas(builder: &mut openssl::ssl::SslConnectorBuilder) {
    const BUNDLES: [&str; 4] = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem",
        "/etc/ssl/cert.pem",
    ];
    for bundle in BUNDLES {
        if std::path::Path::new(bundle).exists() && builder.set_ca_file(bundle).is_ok() {
            return;
        }
    }
    let _ = builder.set_default_verify_paths();
}

/// Whether the listener answers a TLS ClientHello in TLS (whatever it
/// thinks of the client).
fn speaks_tls(address: &str) -> bool {
    let Ok(builder) = SslConnector::builder(SslMethod::tls_client()) else {
        return false;
    };
    matches!(
        handshake(&builder.build(), address, None),
        Some(Handshake::Up(_) | Handshake::Rejected { .. })
    )
}

/// What a Kafka conversation shows of a listener.
#[derive(Debug, PartialEq, Eq)]
enum Conversation {
    /// No answer in Kafka's protocol.
    NotKafka,
    /// ApiVersions answered, then the connection closed at Metadata: the
    /// listener wants SASL first.
    WantsSasl,
    Answers,
}

fn converse<S: Read + Write>(s: &mut S) -> Result<Conversation, String> {
    if !request_api_versions(s)? {
        return Ok(Conversation::NotKafka);
    }
    Ok(match request_metadata(s) {
        Ok(true) => Conversation::Answers,
        _ => Conversation::WantsSasl,
    })
}

/// Whether the listener answers a plaintext ApiVersions request as a Kafka
/// broker would; `None` when it cannot be reached.
fn speaks_kafka(address: &str) -> Option<bool> {
    let mut tcp = connect(address)?;
    Some(request_api_versions(&mut tcp).unwrap_or(false))
}

/// Sends ApiVersions v0 (no body) and reads the answer: `Ok(true)` for an
/// answer to it, `Ok(false)` for something else, `Err` for an error on the
/// connection (a TLS alert, in OpenSSL's words).
fn request_api_versions<S: Read + Write>(s: &mut S) -> Result<bool, String> {
    request(s, 18, 0, &[])
}

/// Sends Metadata v1 for no topic and reads the answer. A listener that
/// requires SASL answers ApiVersions (clients ask it before the SASL
/// handshake) and closes the connection at this one.
fn request_metadata<S: Read + Write>(s: &mut S) -> Result<bool, String> {
    request(s, 3, 1, &0i32.to_be_bytes())
}

/// One request with header v1 (`outreach` as client id) and its whole
/// answer, whose correlation id must match.
fn request<S: Read + Write>(
    s: &mut S,
    api: i16,
    version: i16,
    body: &[u8],
) -> Result<bool, String> {
    const CORRELATION: i32 = 0x6f75_7472;
    let client = b"outreach";
    let mut request = Vec::with_capacity(22 + body.len());
    request.extend_from_slice(&((10 + client.len() + body.len()) as i32).to_be_bytes());
    request.extend_from_slice(&api.to_be_bytes());
    request.extend_from_slice(&version.to_be_bytes());
    request.extend_from_slice(&CORRELATION.to_be_bytes());
    request.extend_from_slice(&(client.len() as i16).to_be_bytes());
    request.extend_from_slice(client);
    request.extend_from_slice(body);
    s.write_all(&request).map_err(|e| error_text(&e))?;
    let mut header = [0u8; 8];
    s.read_exact(&mut header).map_err(|e| error_text(&e))?;
    let size = i32::from_be_bytes(header[..4].try_into().expect("4 bytes"));
    let correlation = i32::from_be_bytes(header[4..].try_into().expect("4 bytes"));
    if !(4..1 << 20).contains(&size) || correlation != CORRELATION {
        return Ok(false);
    }
    let mut rest = vec![0u8; size as usize - 4];
    s.read_exact(&mut rest).map_err(|e| error_text(&e))?;
    Ok(true)
}

/// An IO error's words, with OpenSSL's reason where it has one (a TLS
/// alert comes as an IO error wrapping an SSL error).
fn error_text(e: &std::io::Error) -> String {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<openssl::ssl::Error>())
        .map_or_else(|| e.to_string(), |ssl| ssl.to_string())
}

fn connect(address: &str) -> Option<TcpStream> {
    let addr = address.to_socket_addrs().ok()?.next()?;
    let tcp = TcpStream::connect_timeout(&addr, WAIT).ok()?;
    tcp.set_read_timeout(Some(WAIT)).ok()?;
    tcp.set_write_timeout(Some(WAIT)).ok()?;
    Some(tcp)
}

/// `host` of `host:port` (`[::1]:9093` gives `::1`).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_problem_is_one_line_naming_the_address_and_the_setting() {
        let m = |problem| {
            Misconfigured {
                address: "b:9093".into(),
                problem,
            }
            .to_string()
        };
        let untrusted = m(Problem::Untrusted {
            reason: "self-signed certificate in certificate chain".into(),
            ca: Some("/etc/ca.pem".into()),
        });
        assert_eq!(
            untrusted,
            "the broker at b:9093 (kafka.brokers / OUTREACH__KAFKA__BROKERS) presents a certificate that is not trusted (self-signed certificate in certificate chain): set \"ssl.ca.location\" under kafka.options to the file of the CA that signed it (it is /etc/ca.pem now)"
        );
        for (problem, words) in [
            (
                Problem::NameMismatch { host: "b".into() },
                "does not match the name b",
            ),
            (
                Problem::ClientCertificateRequired,
                "\"ssl.certificate.location\"",
            ),
            (Problem::Plaintext, "PLAINTEXT or SASL_PLAINTEXT"),
            (Problem::ExpectsTls, "SSL or SASL_SSL"),
            (Problem::Sasl("invalid credentials".into()), "sasl.password"),
            (Problem::SaslRequired, "SASL_SSL (or SASL_PLAINTEXT)"),
        ] {
            let line = m(problem);
            assert!(line.contains(words) && !line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn the_host_is_what_the_certificate_must_name() {
        assert_eq!(host_of("kafka.example.org:9093"), "kafka.example.org");
        assert_eq!(host_of("[::1]:9093"), "::1");
        assert_eq!(host_of("127.0.0.1:9093"), "127.0.0.1");
    }
}
