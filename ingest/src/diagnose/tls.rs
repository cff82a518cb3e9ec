//! A TLS handshake with a listener, with the client's own librdkafka
//! settings (CAs, client certificate, name check) loaded into OpenSSL, and
//! what its failure says: an untrusted certificate, one for another name, a
//! refused client certificate, or no TLS at all.

use std::net::TcpStream;

use openssl::pkey::PKey;
use openssl::ssl::{HandshakeError, SslConnector, SslMethod, SslStream, SslVerifyMode};
use openssl::x509::{X509, X509VerifyResult};

use super::{Problem, connect};
use crate::KafkaSettings;

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

/// How a TLS handshake went.
pub(super) enum Handshake {
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
pub(super) struct Client {
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
    pub(super) fn new(settings: &KafkaSettings) -> Option<Client> {
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

    pub(super) fn handshake(&self, address: &str) -> Option<Handshake> {
        handshake(&self.connector, address, Some(self.verify_name))
    }

    /// The problem an error from the server's side says about the client's
    /// certificate, if any.
    pub(super) fn refused_certificate(&self, error: &str) -> Option<Problem> {
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
pub(super) fn speaks_tls(address: &str) -> bool {
    let Ok(builder) = SslConnector::builder(SslMethod::tls_client()) else {
        return false;
    };
    matches!(
        handshake(&builder.build(), address, None),
        Some(Handshake::Up(_) | Handshake::Rejected { .. })
    )
}

/// What a failed verification of the broker's certificate says: it is for
/// another name than `address`'s, or it is not trusted.
pub(super) fn certificate_problem(
    settings: &KafkaSettings,
    address: &str,
    verify: X509VerifyResult,
) -> Problem {
    if NAME_MISMATCH.contains(&verify.as_raw()) {
        Problem::NameMismatch {
            host: host_of(address).to_owned(),
        }
    } else {
        Problem::Untrusted {
            reason: verify.error_string().to_owned(),
            ca: settings.option("ssl.ca.location").map(str::to_owned),
        }
    }
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
    fn the_host_is_what_the_certificate_must_name() {
        assert_eq!(host_of("kafka.example.org:9093"), "kafka.example.org");
        assert_eq!(host_of("[::1]:9093"), "::1");
        assert_eq!(host_of("127.0.0.1:9093"), "127.0.0.1");
    }
}
