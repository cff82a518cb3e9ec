//! What the look at a listener can conclude: a setting that keeps the
//! client from ever talking to a broker, each said in one line that names
//! the setting to change. Apart from the look itself, so the words can be
//! read (and tested) in one place.

use crate::logs;

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
}
