//! The command line, as operators meet it: `--help`, settings errors that
//! name the key, and secrets that never show.

use std::process::{Command, Output};

fn outreach(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_outreach"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn help_lists_the_commands() {
    let o = outreach(&["--help"], &[]);
    assert!(o.status.success());
    let t = text(&o);
    for cmd in ["run", "migrate", "check-config"] {
        assert!(t.contains(cmd), "{t}");
    }
    assert!(text(&outreach(&["run", "--help"], &[])).contains("--until-caught-up"));
}

#[test]
fn a_wrong_setting_fails_at_start_naming_the_key() {
    for (key, value, expect) in [
        (
            "OUTREACH__INGEST__BATCH_MAX_MESSAGES",
            "many",
            "ingest.batch_max_messages",
        ),
        (
            "OUTREACH__INGEST__BATCH_MAX_MESSAGES",
            "0",
            "ingest.batch_max_messages",
        ),
        (
            "OUTREACH__INGEST__BATCH_MAX_BYTES",
            "0",
            "ingest.batch_max_bytes",
        ),
        ("OUTREACH__KAFKA__BROKERS", " ", "kafka.brokers"),
        ("OUTREACH__DATABASE__URL", "mysql://db/x", "database.url"),
        ("OUTREACH__LOG__FORMAT", "xml", "log.format"),
        ("OUTREACH__KAFKA__BROKER", "typo:9092", "broker"),
        (
            "OUTREACH__REGIONS__EXTRA_FILE",
            "/nonexistent/regions.csv",
            "regions.extra_file",
        ),
    ] {
        let o = outreach(&["check-config"], &[(key, value)]);
        assert_eq!(o.status.code(), Some(2), "{key}={value}: {}", text(&o));
        assert!(
            text(&o).contains(expect),
            "{key}={value} should name {expect}: {}",
            text(&o)
        );
    }
    let o = outreach(&["check-config", "--config", "/nonexistent.toml"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("/nonexistent.toml"));
}

#[test]
fn secrets_never_appear_in_check_config_or_errors() {
    let o = outreach(
        &["check-config"],
        &[
            (
                "OUTREACH__DATABASE__URL",
                "postgres://writer:s3cr3t-db@db:5432/outreach",
            ),
            ("OUTREACH__KAFKA__BROKERS", "kafka:9093"),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(!t.contains("s3cr3t-db"), "{t}");
    assert!(t.contains("writer:***@db:5432"), "{t}");

    // An unreachable database: the error names the host, not the password.
    let o = outreach(
        &["migrate"],
        &[
            (
                "OUTREACH__DATABASE__URL",
                "postgres://writer:s3cr3t-db@127.0.0.1:1/outreach",
            ),
            ("OUTREACH__DATABASE__CONNECT_TIMEOUT_SECS", "1"),
            ("OUTREACH__DATABASE__CONNECT_RETRY_SECS", "0"),
        ],
    );
    assert!(!o.status.success());
    let t = text(&o);
    assert!(!t.contains("s3cr3t-db"), "{t}");
    assert!(t.contains("127.0.0.1:1"), "{t}");
}
