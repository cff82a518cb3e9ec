//! The command line, as operators meet it: `--help`, settings errors that
//! name the key, secrets that never show, and a broker or database out of
//! reach said in one line that names the address and the setting.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

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
    // An unreachable database's error: `an_unreachable_database_is_one_line…`.
}

/// `outreach ARGS` in an environment holding only `env` of its own
/// settings (none inherited from the caller's shell).
fn outreach_only(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_outreach"));
    c.args(args);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy()
            .to_ascii_uppercase()
            .starts_with("OUTREACH")
        {
            c.env_remove(k);
        }
    }
    c.envs(env.iter().copied());
    c.output().unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", text(o));
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// The line of `file` that sets `key` (`batch_max_messages = `).
fn line<'a>(file: &'a str, key: &str) -> &'a str {
    file.lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in\n{file}"))
}

fn temp_file(name: &str, contents: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("outreach-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn check_config_prints_a_settings_file_that_loads_back_the_same() {
    let file = temp_file(
        "layer.toml",
        "[ingest]\nbatch_linger_ms = 250\n\n[kafka.options]\n\"security.protocol\" = \"SASL_SSL\"\n",
    );
    let first = stdout(&outreach_only(
        &["--config", file.to_str().unwrap(), "check-config"],
        &[
            ("OUTREACH__INGEST__BATCH_MAX_MESSAGES", "1234"),
            ("OUTREACH__DATABASE__MIGRATE", "false"),
        ],
    ));
    let effective: toml::Table = toml::from_str(&first).unwrap_or_else(|e| panic!("{e}\n{first}"));
    assert_eq!(
        effective["ingest"]["batch_max_messages"].as_integer(),
        Some(1234)
    );
    assert_eq!(
        effective["ingest"]["batch_linger_ms"].as_integer(),
        Some(250)
    );
    assert_eq!(effective["database"]["migrate"].as_bool(), Some(false));
    assert_eq!(
        effective["kafka"]["options"]["security.protocol"].as_str(),
        Some("SASL_SSL")
    );

    // Saved and loaded alone, with nothing in the environment: the same
    // values, now all from the file.
    let saved = temp_file("saved.toml", &first);
    let saved_name = saved.to_str().unwrap();
    let second = stdout(&outreach_only(
        &["--config", saved_name, "check-config"],
        &[],
    ));
    let reloaded: toml::Table = toml::from_str(&second).unwrap();
    assert_eq!(reloaded, effective, "first:\n{first}\nsecond:\n{second}");
    for l in second.lines().filter(|l| l.contains(" = ")) {
        assert!(l.ends_with(&format!("# from file {saved_name}")), "{l}");
    }
    std::fs::remove_file(file).unwrap();
    std::fs::remove_file(saved).unwrap();
}

#[test]
fn check_config_says_where_each_value_came_from() {
    let file = temp_file("origins.toml", "[kafka]\ngroup_id = \"from-the-file\"\n");
    let name = file.to_str().unwrap();
    let out = stdout(&outreach_only(
        &["--config", name, "check-config"],
        &[("OUTREACH__KAFKA__BROKERS", "kafka-1:9092,kafka-2:9092")],
    ));
    let brokers = line(&out, "brokers");
    assert!(
        brokers.starts_with("brokers = \"kafka-1:9092,kafka-2:9092\" ")
            && brokers.ends_with("  # from environment OUTREACH__KAFKA__BROKERS"),
        "{out}"
    );
    assert!(
        line(&out, "group_id").ends_with(&format!("# from file {name}")),
        "{out}"
    );
    // Built-in defaults, from DEFAULTS and from the types' own defaults.
    assert!(line(&out, "url").ends_with("# default"), "{out}");
    assert!(
        line(&out, "batch_max_messages").ends_with("# default"),
        "{out}"
    );
    assert!(
        out.contains("\n[kafka]\n") && out.contains("\n[database]\n"),
        "{out}"
    );
    std::fs::remove_file(file).unwrap();
}

#[test]
fn check_config_masks_secrets_and_says_so() {
    let file = temp_file(
        "secrets.toml",
        "[kafka.options]\n\"sasl.username\" = \"outreach\"\n\"sasl.password\" = \"kafka-s3cr3t\"\n",
    );
    let o = outreach_only(
        &["--config", file.to_str().unwrap(), "check-config"],
        &[(
            "OUTREACH__DATABASE__URL",
            "postgres://writer:db-s3cr3t@db:5432/outreach?password=query-s3cr3t",
        )],
    );
    let all = text(&o);
    let out = stdout(&o);
    for secret in ["kafka-s3cr3t", "db-s3cr3t", "query-s3cr3t"] {
        assert!(!all.contains(secret), "{secret} shown:\n{all}");
    }
    let url = line(&out, "url");
    assert!(
        url.starts_with("url = \"postgres://writer:***@db:5432/outreach?password=***\" ")
            && url.ends_with("  # from environment OUTREACH__DATABASE__URL (secret masked)"),
        "{out}"
    );
    assert!(
        line(&out, "\"sasl.password\"").starts_with("\"sasl.password\" = \"***\""),
        "{out}"
    );
    assert!(line(&out, "\"sasl.username\"").starts_with("\"sasl.username\" = \"outreach\""));
    std::fs::remove_file(file).unwrap();
}

/// `127.0.0.1:PORT` where nothing listens (a port just freed).
fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// The lines of stderr, and the one among them that is the error.
fn error_line(o: &Output) -> (Vec<String>, String) {
    let lines: Vec<String> = String::from_utf8_lossy(&o.stderr)
        .lines()
        .map(str::to_owned)
        .collect();
    let errors: Vec<&String> = lines.iter().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "one error line:\n{}", lines.join("\n"));
    let e = errors[0].clone();
    (lines, e)
}

#[test]
fn publish_and_bench_give_up_on_an_unreachable_broker_in_one_line_within_the_delivery_timeout() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample-events.jsonl");
    for (args, broker) in [
        (&["publish", sample][..], closed_port()),
        (&["bench", "--events", "100"][..], closed_port()),
        (
            &["publish", sample][..],
            "nonexistent.invalid:9092".to_owned(),
        ),
    ] {
        let started = Instant::now();
        let o = outreach_only(
            args,
            &[
                ("OUTREACH__KAFKA__BROKERS", &broker),
                ("OUTREACH__KAFKA__DELIVERY_TIMEOUT_MS", "3000"),
            ],
        );
        let took = started.elapsed();
        let (lines, e) = error_line(&o);
        let all = lines.join("\n");
        assert_eq!(o.status.code(), Some(1), "{args:?}: {all}");
        // The wait is kafka.delivery_timeout_ms, then a second or so.
        assert!(took < Duration::from_secs(15), "{args:?} took {took:?}");
        // The broker said once as it retries, then the error: not one line
        // per connection attempt (there were ~250 in 30 s).
        assert!(lines.len() <= 3, "{args:?}: {all}");
        let what = if broker.starts_with("nonexistent") {
            "name not found"
        } else {
            "connection refused"
        };
        for part in [
            &format!("the broker at {broker} "),
            "kafka.brokers / OUTREACH__KAFKA__BROKERS",
            "could not be reached within 3 s (kafka.delivery_timeout_ms)",
            what,
        ] {
            assert!(e.contains(part), "{args:?}: {part:?} not in {e}");
        }
        assert!(
            !all.contains("MessageTimedOut") && !all.contains("refused an event"),
            "{all}"
        );
    }
}

#[test]
fn an_unreachable_database_is_one_line_naming_database_url_and_the_address() {
    let port = closed_port();
    let url = format!("postgres://writer:s3cr3t-db@{port}/outreach");
    // No retry: the error alone. With retries: said once while retrying
    // (the next reminder would come after 30 s), then the error.
    for (retry, expect_lines) in [("0", 1), ("3", 2)] {
        let o = outreach_only(
            &["migrate"],
            &[
                ("OUTREACH__DATABASE__URL", &url),
                ("OUTREACH__DATABASE__CONNECT_TIMEOUT_SECS", "1"),
                ("OUTREACH__DATABASE__CONNECT_RETRY_SECS", retry),
            ],
        );
        let (lines, e) = error_line(&o);
        let all = lines.join("\n");
        assert_eq!(o.status.code(), Some(1), "{all}");
        assert_eq!(lines.len(), expect_lines, "retry {retry} s:\n{all}");
        assert!(!all.contains("s3cr3t-db"), "{all}");
        assert_eq!(
            e,
            format!(
                "error: cannot connect to the database at {port} (database.url / OUTREACH__DATABASE__URL = postgres://writer:***@{port}/outreach): connection refused; check that Postgres runs and listens at that address"
            )
        );
        if expect_lines == 2 {
            assert!(
                lines[0].contains(&e["error: ".len()..]) && lines[0].contains("retrying"),
                "{all}"
            );
        }
    }
}

#[test]
fn a_missing_database_or_an_unknown_role_fails_at_once_saying_what_to_do() {
    // The machine's Postgres (trust authentication: a wrong password
    // passes, an unknown role does not).
    let admin = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let (server, _) = admin.rsplit_once('/').unwrap();
    let host = server.rsplit_once('@').map_or(server, |(_, h)| h);
    let missing = format!("{server}/outreach_cli_no_such_db");
    let scheme = server.split_once("://").unwrap().0;
    let stranger = format!("{scheme}://no_such_role_cli:pw@{host}/postgres");
    for (url, what) in [
        (
            missing.as_str(),
            "database \"outreach_cli_no_such_db\" does not exist; create it (`CREATE DATABASE \"outreach_cli_no_such_db\"`, or `createdb outreach_cli_no_such_db`) or correct the database name in the URL",
        ),
        (
            stranger.as_str(),
            "authentication failed (role \"no_such_role_cli\" does not exist); check the user and password in the URL, and the server's pg_hba.conf",
        ),
    ] {
        let started = Instant::now();
        // The default retry (60 s) is for a database still starting; this
        // will not fix itself, so it fails at once.
        let o = outreach_only(&["migrate"], &[("OUTREACH__DATABASE__URL", url)]);
        let took = started.elapsed();
        let (lines, e) = error_line(&o);
        assert_eq!(o.status.code(), Some(1), "{}", lines.join("\n"));
        assert_eq!(lines.len(), 1, "{}", lines.join("\n"));
        assert!(took < Duration::from_secs(10), "took {took:?}");
        assert!(
            e.starts_with(&format!(
                "error: cannot connect to the database at {host} (database.url / OUTREACH__DATABASE__URL = "
            )) && e.ends_with(what)
                && !e.contains(":pw@"),
            "{e}"
        );
    }
}

#[test]
fn a_backfill_gives_up_on_an_unreachable_broker_in_one_line() {
    let dir = std::env::temp_dir().join(format!("outreach-cli-backfill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}", dir.join("x.db").display());
    let broker = closed_port();
    let started = Instant::now();
    let o = outreach_only(
        &["run", "--until-caught-up"],
        &[
            ("OUTREACH__KAFKA__BROKERS", &broker),
            ("OUTREACH__KAFKA__DELIVERY_TIMEOUT_MS", "3000"),
            ("OUTREACH__DATABASE__URL", &db),
            ("OUTREACH__HTTP__ADDRESS", "127.0.0.1:0"),
        ],
    );
    let took = started.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    let (lines, e) = error_line(&o);
    let all = lines.join("\n");
    assert_eq!(o.status.code(), Some(1), "{all}");
    // A probe round that nobody answers takes a few seconds, then the wait.
    assert!(took < Duration::from_secs(30), "took {took:?}: {all}");
    // The broker said once as it retries (not per attempt), then the error.
    let said = lines.iter().filter(|l| l.contains(&broker)).count();
    assert!(said <= 3, "{all}");
    for part in [
        &format!("the broker at {broker} "),
        "kafka.brokers / OUTREACH__KAFKA__BROKERS",
        "could not be reached within 3 s (kafka.delivery_timeout_ms)",
        "connection refused",
    ] {
        assert!(e.contains(part), "{part:?} not in {e}");
    }
}
