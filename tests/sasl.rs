//! SASL to Kafka (issue 26), against a broker that requires it: tansu
//! behind the gateway of `support::sasl`, which authenticates PLAIN,
//! SCRAM-SHA-256 and SCRAM-SHA-512 and, for SASL_SSL, sits behind a TLS
//! terminator. The real binary publishes and runs over each mechanism to
//! the right totals; a client without SASL, or with a wrong password, gets
//! nothing.

mod support;

use std::path::{Path, PathBuf};
use std::time::Instant;

use rdkafka::ClientConfig;
use schemas::{Metric, Period};
use serde_json::json;
use support::app::regional;
use support::events::activity;
use support::sasl::{Accounts, Mechanism, SaslBroker};
use support::tls::{Pki, set_mode};
use support::*;

const USER: &str = "outreach";
const PASSWORD: &str = "correct horse battery staple";
/// Every event below is in this county on this day.
const COUNTY: &str = "620921";
const DAY: &str = "2024-01-01";

/// Three surgeries events of 1, 2 and 3 (6 in all), ids prefixed `tag`
/// (lowercase: ids are `[a-z0-9._:-]`), as a file for `outreach publish`.
fn events_file(dir: &Path, tag: &str) -> PathBuf {
    let lines: Vec<String> = (1..=3)
        .map(|n| {
            let id = format!("{tag}-{n}");
            activity("h1", &id, &id, "surgeries", json!(n), DAY, COUNTY).to_string()
        })
        .collect();
    let path = dir.join(format!("{tag}.jsonl"));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `[kafka.options]` logging in with `mechanism` and `password`.
fn sasl_options(mechanism: Mechanism, password: &str) -> String {
    format!(
        "[kafka.options]\n\"security.protocol\" = \"SASL_PLAINTEXT\"\n\"sasl.mechanism\" = \"{}\"\n\"sasl.username\" = \"{USER}\"\n\"sasl.password\" = \"{password}\"\n",
        mechanism.name()
    )
}

async fn contract_topics(config: ClientConfig) {
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

async fn surgeries(db: &Db) -> String {
    let pool = db.pool().await;
    let total = regional(&pool, COUNTY, Period::Day, DAY, Metric::Surgeries).await;
    assert_consistent(&pool).await;
    format!("{total:?}")
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_and_run_reach_the_right_totals_over_plain_scram_sha_256_and_scram_sha_512() {
    let kafka = SaslBroker::start(Accounts::one(USER, PASSWORD));
    contract_topics(kafka.client(Mechanism::ScramSha256, USER, PASSWORD)).await;
    let db = Db::new().await;
    let dir = tempfile::tempdir().unwrap();
    let brokers = &kafka.broker.addr;

    // One database throughout: each run reads on from where the last one
    // stopped, so each total says that run's mechanism carried its events.
    for (i, mechanism) in Mechanism::ALL.into_iter().enumerate() {
        let started = Instant::now();
        let name = mechanism.name();
        let config = write(
            dir.path(),
            &format!("{name}.toml"),
            &sasl_options(mechanism, PASSWORD),
        );
        let events = events_file(dir.path(), &name.to_lowercase());
        ok(
            &format!("publish over {name}"),
            &outreach(
                brokers,
                &db.url,
                &config,
                &["publish", events.to_str().unwrap()],
            ),
        );
        ok(
            &format!("run over {name}"),
            &outreach(brokers, &db.url, &config, &["run", "--until-caught-up"]),
        );
        let expected = 6 * (i + 1);
        assert_eq!(
            surgeries(&db).await,
            expected.to_string(),
            "after the run over {name}"
        );
        eprintln!("{name}: publish and run in {:?}", started.elapsed());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn scram_sha_512_over_tls_with_the_password_in_a_file_as_the_readme_shows() {
    let pki = Pki::new("nobody");
    let kafka = SaslBroker::start_tls(&pki, Accounts::one(USER, PASSWORD));
    let ca = pki.path("ca.pem");
    let mut admin = kafka.client(Mechanism::ScramSha512, USER, PASSWORD);
    admin.set("ssl.ca.location", ca.to_str().unwrap());
    contract_topics(admin).await;
    let db = Db::new().await;

    let password = write(&pki.dir, "kafka_password", &format!("{PASSWORD}\n"));
    set_mode(&password, 0o600);
    // The README's worked example, with this test's address and paths;
    // `kafka.brokers` comes from the file alone.
    let config = write(
        &pki.dir,
        "sasl-ssl.toml",
        &format!(
            r#"[kafka]
brokers = "{}"
[kafka.options]
"security.protocol" = "SASL_SSL"
"sasl.mechanism" = "SCRAM-SHA-512"
"sasl.username" = "{USER}"
"ssl.ca.location" = "{}"
[kafka.secret_files]
"sasl.password" = "{}"
"#,
            kafka.broker.addr,
            ca.display(),
            password.display()
        ),
    );
    let events = events_file(&pki.dir, "sasl-ssl");
    let outreach = |args: &[&str]| {
        outreach_command_at("", &db.url, &unique("g"))
            .env_remove("OUTREACH__KAFKA__BROKERS")
            .env("OUTREACH_CONFIG", &config)
            .args(args)
            .output()
            .unwrap()
    };
    ok("publish", &outreach(&["publish", events.to_str().unwrap()]));
    let log = ok("run", &outreach(&["run", "--until-caught-up"]));
    assert!(!log.contains(PASSWORD), "{log}");
    assert_eq!(surgeries(&db).await, "6");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_without_sasl_or_with_a_wrong_password_is_refused() {
    let kafka = SaslBroker::start(Accounts::one(USER, PASSWORD));
    contract_topics(kafka.client(Mechanism::ScramSha256, USER, PASSWORD)).await;
    let db = Db::new().await;
    let dir = tempfile::tempdir().unwrap();
    let brokers = &kafka.broker.addr;
    let events = events_file(dir.path(), "refused");
    let events = events.to_str().unwrap();

    // Something to read, sent by a client that logged in.
    let good = write(
        dir.path(),
        "good.toml",
        &sasl_options(Mechanism::ScramSha256, PASSWORD),
    );
    ok(
        "publish",
        &outreach(brokers, &db.url, &good, &["publish", events]),
    );

    let wrong = |mechanism: Mechanism| {
        write(
            dir.path(),
            &format!("wrong-{}.toml", mechanism.name()),
            &sasl_options(mechanism, "not the password"),
        )
    };
    for mechanism in Mechanism::ALL {
        fails(
            &format!("publish with a wrong password over {}", mechanism.name()),
            brokers,
            &db.url,
            &wrong(mechanism),
            &["publish", events],
            &[
                brokers.as_str(),
                "refused SASL authentication",
                "sasl.password",
            ],
        );
        assert!(
            kafka.gateway.refused().contains(&mechanism),
            "the broker itself refused the {} login",
            mechanism.name()
        );
    }
    for run in [&["run", "--until-caught-up"][..], &["run"]] {
        fails(
            &format!("{run:?} with a wrong password"),
            brokers,
            &db.url,
            &wrong(Mechanism::ScramSha512),
            run,
            &[brokers.as_str(), "refused SASL authentication"],
        );
    }
    let plaintext = write(
        dir.path(),
        "plaintext.toml",
        "[kafka.options]\n\"security.protocol\" = \"PLAINTEXT\"\n",
    );
    fails(
        "publish without SASL",
        brokers,
        &db.url,
        &plaintext,
        &["publish", events],
        &[brokers.as_str(), "requires SASL", "security.protocol"],
    );
    fails(
        "run without SASL",
        brokers,
        &db.url,
        &plaintext,
        &["run", "--until-caught-up"],
        &[brokers.as_str(), "requires SASL"],
    );
    // The runs refused read nothing of what was there.
    assert_eq!(surgeries(&db).await, "0");
}

#[test]
fn librdkafka_is_built_with_tls_and_the_sasl_mechanisms() {
    let native = ClientConfig::new().create_native_config().unwrap();
    let features = native.get("builtin.features").unwrap();
    let features: Vec<&str> = features.split(',').collect();
    for wanted in ["ssl", "sasl_plain", "sasl_scram", "sasl_oauthbearer"] {
        assert!(features.contains(&wanted), "{wanted} in {features:?}");
    }
}
