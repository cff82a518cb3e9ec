//! TLS to both services, against servers that require it: a Postgres
//! cluster of the test's own that accepts only `hostssl` connections, and
//! tansu reachable only through a TLS terminator that asks for a client
//! certificate. The whole pipeline runs over both (publish, run, rebuild,
//! grant-analyst, report, migrate, bench), with the passwords read from
//! files.

mod support;

use std::path::{Path, PathBuf};

use rdkafka::ClientConfig;
use support::tls::{PgCluster, Pki, TlsBroker, set_mode};
use support::*;

/// The client's TLS settings for `brokers`, as a settings file.
fn kafka_options(pki: &Pki, ca: &str, with_client_cert: bool) -> String {
    let mut options = format!(
        "\"security.protocol\" = \"SSL\"\n\"ssl.ca.location\" = \"{}\"\n",
        pki.path(&format!("{ca}.pem")).display()
    );
    if with_client_cert {
        options.push_str(&format!(
            "\"ssl.certificate.location\" = \"{}\"\n\"ssl.key.location\" = \"{}\"\n",
            pki.path("client.pem").display(),
            pki.path("client.key").display()
        ));
    }
    options
}

/// A settings file in the PKI's directory.
fn settings_file(pki: &Pki, name: &str, text: &str) -> PathBuf {
    let path = pki.path(name);
    std::fs::write(&path, text).unwrap();
    path
}

async fn tls_topics(pki: &Pki, broker: &TlsBroker) {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &broker.tls.addr)
        .set("security.protocol", "SSL")
        .set("ssl.ca.location", pki.path("ca.pem").to_str().unwrap())
        .set(
            "ssl.certificate.location",
            pki.path("client.pem").to_str().unwrap(),
        )
        .set("ssl.key.location", pki.path("client.key").to_str().unwrap());
    create_topics(
        config,
        &[
            (schemas::MISSIONS_TOPIC, 2),
            (schemas::ACTIVITIES_TOPIC, 2),
            (schemas::DEADLETTER_TOPIC, 1),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_pipeline_runs_over_tls_to_kafka_and_postgres() {
    let pki = Pki::new("report_reader");
    let pg = PgCluster::start(&pki, true, "report_reader");
    let kafka = TlsBroker::start(&pki);
    tls_topics(&pki, &kafka).await;

    // Secrets in files, as Docker and Kubernetes mount them.
    let password = pki.path("pg-password");
    std::fs::write(&password, format!("{}\n", pg.password)).unwrap();
    set_mode(&password, 0o600);
    let config = settings_file(
        &pki,
        "tls.toml",
        &format!(
            "[kafka.options]\n{}\n[database]\npassword_file = \"{}\"\n",
            kafka_options(&pki, "ca", true),
            password.display()
        ),
    );
    let ca = pki.path("ca.pem");
    let url = pg.url(
        "postgres",
        None,
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    );
    let brokers = &kafka.tls.addr;
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample-events.jsonl");
    let sample = sample.to_str().unwrap();

    ok(
        "publish",
        &outreach(
            brokers,
            &url,
            &config,
            &["publish", "--include-invalid", sample],
        ),
    );
    let log = ok(
        "run",
        &outreach(brokers, &url, &config, &["run", "--until-caught-up"]),
    );
    assert!(!log.contains(&pg.password), "{log}");
    ok("rebuild", &outreach(brokers, &url, &config, &["rebuild"]));
    ok("migrate", &outreach(brokers, &url, &config, &["migrate"]));
    ok(
        "grant-analyst",
        &outreach(
            brokers,
            &url,
            &config,
            &["grant-analyst", "report_reader", "--all"],
        ),
    );

    // The analyst logs in with its client certificate alone (`cert` in
    // pg_hba.conf), no password.
    let key = pki.path("client.key");
    let analyst_url = pg.url(
        "report_reader",
        None,
        "localhost",
        &format!(
            "sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
            ca.display(),
            pki.path("client.pem").display(),
            key.display()
        ),
    );
    let no_secrets = settings_file(&pki, "plain.toml", "");
    let html = pki.path("report.html");
    ok(
        "report",
        &outreach(
            brokers,
            &analyst_url,
            &no_secrets,
            &["report", "--out", html.to_str().unwrap()],
        ),
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("surgeries"), "the report has figures");

    // A private key that others can read is worth a warning.
    set_mode(&key, 0o644);
    let log = ok(
        "report with a readable key",
        &outreach(
            brokers,
            &analyst_url,
            &no_secrets,
            &["report", "--out", html.to_str().unwrap()],
        ),
    );
    assert!(
        log.contains("can be read by other users (mode 0644)") && log.contains("chmod 600"),
        "{log}"
    );
    set_mode(&key, 0o600);

    // bench: its own database on the same cluster, its own topics, TLS to both.
    let out = outreach(
        brokers,
        &url,
        &config,
        &["bench", "--events", "3000", "--json"],
    );
    let log = ok("bench", &out);
    assert!(!log.contains(&pg.password), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_way_of_getting_tls_wrong_is_one_line_and_exit_code_1() {
    let pki = Pki::new("nobody");
    let pg = PgCluster::start(&pki, true, "nobody");
    let plain_pg = PgCluster::start(&pki, false, "nobody");
    let kafka = TlsBroker::start(&pki);
    tls_topics(&pki, &kafka).await;
    let password = pki.path("pg-password");
    std::fs::write(&password, &pg.password).unwrap();
    let with = |name: &str, kafka: &str| {
        settings_file(
            &pki,
            name,
            &format!(
                "[kafka.options]\n{kafka}\n[database]\npassword_file = \"{}\"\n",
                password.display()
            ),
        )
    };
    let good = with("good.toml", &kafka_options(&pki, "ca", true));
    let ca = pki.path("ca.pem");
    let other = pki.path("other-ca.pem");
    let url = |host: &str, query: &str| pg.url("postgres", None, host, query);
    let nowhere = "127.0.0.1:1";

    // Postgres.
    fails(
        "an untrusted server certificate",
        nowhere,
        &url(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={}", other.display()),
        ),
        &good,
        &["migrate"],
        &["localhost:", "not trusted", "sslrootcert"],
    );
    fails(
        "a host name the certificate does not hold",
        nowhere,
        &url(
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
        ),
        &good,
        &["migrate"],
        &["127.0.0.1", "does not match", "verify-ca"],
    );
    fails(
        "sslmode=disable against a server that accepts TLS only",
        nowhere,
        &url("localhost", "sslmode=disable"),
        &good,
        &["migrate"],
        &["only TLS", "sslmode"],
    );
    fails(
        "sslmode=require against a server without TLS",
        nowhere,
        &plain_pg.url("postgres", None, "localhost", "sslmode=require"),
        &good,
        &["migrate"],
        &["does not offer TLS", "sslmode"],
    );
    let wrong = pki.path("wrong-password");
    std::fs::write(&wrong, "not-it").unwrap();
    fails(
        "a wrong password from a file",
        nowhere,
        &url(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
        ),
        &settings_file(
            &pki,
            "wrong.toml",
            &format!("[database]\npassword_file = \"{}\"\n", wrong.display()),
        ),
        &["migrate"],
        &["authentication failed", "password"],
    );
    fails_with(
        2,
        "a password file that is not there",
        nowhere,
        &url("localhost", "sslmode=require"),
        &settings_file(
            &pki,
            "missing.toml",
            "[database]\npassword_file = \"/nonexistent/pw\"\n",
        ),
        &["migrate"],
        &["database.password_file", "/nonexistent/pw", "cannot read"],
    );

    // Kafka: `publish` asks the cluster for metadata first.
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tallies.csv");
    let publish = ["publish", sample.to_str().unwrap()];
    let good_url = url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    );
    let tls = &kafka.tls.addr;
    fails(
        "an untrusted broker certificate",
        tls,
        &good_url,
        &with("k-ca.toml", &kafka_options(&pki, "other-ca", true)),
        &publish,
        &[tls.as_str(), "not trusted", "ssl.ca.location"],
    );
    let elsewhere = support::tls::Terminator::start(&pki, "elsewhere", true, &kafka.plain);
    fails(
        "a broker certificate for another host",
        &elsewhere.addr,
        &good_url,
        &good,
        &publish,
        &[elsewhere.addr.as_str(), "does not match"],
    );
    fails(
        "TLS to a plaintext listener",
        &kafka.plain,
        &good_url,
        &good,
        &publish,
        &[kafka.plain.as_str(), "security.protocol"],
    );
    fails(
        "plaintext to a TLS listener",
        tls,
        &good_url,
        &settings_file(&pki, "k-plain.toml", ""),
        &publish,
        &[tls.as_str(), "security.protocol"],
    );
    fails(
        "no client certificate where one is required",
        tls,
        &good_url,
        &with("k-nocert.toml", &kafka_options(&pki, "ca", false)),
        &publish,
        &[tls.as_str(), "ssl.certificate.location"],
    );
    // The consumer gives up as fast as the producer.
    fails(
        "run, with an untrusted broker certificate",
        tls,
        &good_url,
        &with("k-ca-run.toml", &kafka_options(&pki, "other-ca", true)),
        &["run", "--until-caught-up"],
        &[tls.as_str(), "not trusted"],
    );
    fails(
        "run without --until-caught-up, with an untrusted broker certificate",
        tls,
        &good_url,
        &with("k-ca-follow.toml", &kafka_options(&pki, "other-ca", true)),
        &["run"],
        &[tls.as_str(), "not trusted"],
    );
}
