//! TLS to both services, against servers that require it: a Postgres
//! cluster of the test's own that accepts only `hostssl` connections, and
//! tansu reachable only through a TLS terminator that asks for a client
//! certificate. The whole pipeline runs over both (publish, run, rebuild,
//! grant-analyst, report, migrate, bench), with the passwords read from
//! files.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

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

/// `outreach ARGS` with these brokers, database URL and settings file.
fn outreach(brokers: &str, url: &str, config: &Path, args: &[&str]) -> Output {
    outreach_command_at(brokers, url, &unique("g"))
        .env("OUTREACH_CONFIG", config)
        .args(args)
        .output()
        .unwrap()
}

fn ok(what: &str, out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what}: {stderr}");
    stderr
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
