//! Least privilege and what analysts read: the pipeline runs as the writer
//! role and cannot change the schema; the analyst role reads the contract's
//! tables and views and writes nothing; an analyst login sees no
//! institution's rows until granted, then only those it was granted; an
//! upgrade keeps what existing logins saw; the views' indicators are ratios
//! of sums.

mod support;

use serde_json::json;
use sqlx::{Connection, PgConnection};
use support::analysts::*;
use support::app::App;
use support::events::*;
use support::*;

fn events() -> Vec<Record> {
    let act = |inst: &str, id: &str, metric: &str, v: i64, dims: serde_json::Value| {
        let mut e = activity(inst, id, id, metric, json!(v), "2024-03-05", "620921");
        if dims.as_object().is_some_and(|d| !d.is_empty()) {
            e = with(e, "dims", dims);
        }
        activity_record(&e)
    };
    vec![
        mission_record(&dispatch(
            "h1",
            "d1",
            "m1",
            "620921",
            3,
            "2024-03-04",
            "2024-03-01T00:00:00Z",
        )),
        mission_record(&completion(
            "h1",
            "c1",
            "m1",
            "2024-03-08",
            "2024-03-09T00:00:00Z",
        )),
        act("h1", "a1", "outpatient_visits", 30, json!({})),
        act("h1", "a2", "surgeries", 2, json!({"role": "performed"})),
        act("h1", "a3", "surgeries", 1, json!({"role": "supervised"})),
        act("h2", "a4", "surgeries", 1, json!({"role": "assisted"})),
        act("h2", "a5", "techniques_introduced", 4, json!({})),
        act("h2", "a6", "techniques_localized", 1, json!({})),
        mission_record(&dispatch(
            "h2",
            "d2",
            "m2",
            "620922",
            2,
            "2024-03-04",
            "2024-03-01T00:00:00Z",
        )),
        // Refused (unknown region): quarantined with h2's raw payload.
        activity_record(&activity(
            "h2",
            "bad1",
            "bad1",
            "lectures",
            json!(1),
            "2024-03-05",
            "999999",
        )),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_writer_cannot_change_the_schema_analysts_only_read_and_see_their_institution() {
    let app = App::spawn(2).await;
    let (broker, db) = (&app.broker, &app.db);
    let status = outreach_command(broker, db, "unused")
        .arg("migrate")
        .status()
        .unwrap();
    assert!(status.success(), "migrate as the schema owner");
    let (logins, names) = Logins::create(
        &db.url,
        &[
            ("w", "outreach_writer"),
            ("a", "outreach_analyst"),
            ("a_h1", "outreach_analyst"),
        ],
    )
    .await;
    let (writer, analyst, scoped) = (&names[0], &names[1], &names[2]);

    // The writer: rows yes, schema no.
    let mut w = PgConnection::connect(&as_user(&db.url, writer))
        .await
        .unwrap();
    for sql in [
        "CREATE TABLE outreach.evil (i int)",
        "CREATE TABLE public.evil (i int)",
        "ALTER TABLE outreach.daily_cells ADD COLUMN evil int",
        "DROP TABLE outreach.quarantine",
        "TRUNCATE outreach.regional_cells",
        "CREATE INDEX evil ON outreach.missions (status)",
        "DROP POLICY writer_all ON outreach.missions",
        "INSERT INTO outreach.analyst_scope VALUES ('anyone', 'h1')",
    ] {
        denied(&mut w, sql).await;
    }
    w.close().await.unwrap();

    // The pipeline itself runs as the writer, without migrating.
    broker.producer().send(&events()).await;
    let out = outreach_command_to(broker, &as_user(&db.url, writer), &unique("g"))
        .args(["run", "--until-caught-up"])
        .env("OUTREACH__DATABASE__MIGRATE", "false")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the pipeline as the writer: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Analysts read the tables and views, and write nothing.
    let mut a = PgConnection::connect(&as_user(&db.url, analyst))
        .await
        .unwrap();
    for object in sink::roles::ANALYST_TABLES
        .iter()
        .chain(&sink::roles::ANALYST_VIEWS)
    {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT * FROM outreach.{object} LIMIT 1"
        )))
        .execute(&mut a)
        .await
        .unwrap_or_else(|e| panic!("analyst reads outreach.{object}: {e}"));
    }
    for sql in [
        "INSERT INTO outreach.programs (program_id) VALUES ('evil')",
        "UPDATE outreach.daily_cells SET value = 0",
        "INSERT INTO outreach.regional_deltas (region_code, region_level, day, metric, value) VALUES ('CN', 'country', '2020-01-01', 'surgeries', 1)",
        "DELETE FROM outreach.missions",
        "SELECT * FROM outreach.activity_facts",
        "SELECT * FROM outreach.mission_facts",
        "INSERT INTO outreach.analyst_scope VALUES (current_user, 'h2')",
    ] {
        denied(&mut a, sql).await;
    }
    // Deny by default: in the analyst role but granted nothing, a login
    // sees no institution's rows, and every shared aggregate.
    assert_eq!(
        seen(&mut a).await,
        ["", "", "0"],
        "an analyst granted nothing"
    );
    let shared: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM outreach.regional_metrics) + (SELECT count(*) FROM outreach.program_summary)",
    )
    .fetch_one(&mut a)
    .await
    .unwrap();
    assert!(shared > 0, "the shared aggregates are every analyst's");

    // One line each: every institution, or one.
    let said = grant(broker, db, &["grant-analyst", analyst, "--all"]);
    assert!(said.contains("sees every institution's rows"), "{said}");
    let said = grant(
        broker,
        db,
        &["grant-analyst", scoped, "--institution", "h1"],
    );
    assert!(said.contains("of h1,"), "{said}");
    let mut s = PgConnection::connect(&as_user(&db.url, scoped))
        .await
        .unwrap();
    assert_eq!(seen(&mut a).await, ["h1,h2", "h1,h2", "1"], "granted --all");
    // Scoping follows the login, also after switching to the group role.
    for switch in ["RESET ROLE", "SET ROLE outreach_analyst"] {
        sqlx::query(switch).execute(&mut s).await.unwrap();
        assert_eq!(
            seen(&mut s).await,
            ["h1", "h1", "0"],
            "granted h1 ({switch}): no quarantine, which holds every institution's payloads"
        );
    }
    sqlx::query("RESET ROLE").execute(&mut s).await.unwrap();
    let roles: (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT sum(performed)::text, sum(assisted)::text FROM outreach.surgery_roles",
    )
    .fetch_one(&mut s)
    .await
    .unwrap();
    assert_eq!(
        roles,
        (Some("2".into()), None),
        "views read as the analyst: RLS applies"
    );

    // Indicators are ratios of sums over the period (March 2024, the county).
    let row: (String, String, String, String, String) = sqlx::query_as(
        "SELECT region_name, expert_days::text, outpatients_per_expert_day::float8::text,
                techniques_localized_per_introduced::float8::text, surgeries_per_completed_mission::float8::text
         FROM outreach.region_summary
         WHERE region_code = '620921' AND period_type = 'month' AND period_start = '2024-03-01'",
    )
    .fetch_one(&mut a)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            "金塔县".to_string(),
            "15".to_string(),
            "2".to_string(),
            "0.25".to_string(),
            "4".to_string()
        )
    );
    let share: String = sqlx::query_scalar(
        "SELECT performed_or_supervised_share::float8::text FROM outreach.surgery_roles",
    )
    .fetch_one(&mut a)
    .await
    .unwrap();
    assert_eq!(share, "0.75", "(2 performed + 1 supervised) / 4");
    let program: (String, String) = sqlx::query_as(
        "SELECT program_name, outpatients_per_expert_day::float8::text FROM outreach.program_summary
         WHERE period_type = 'year' AND period_start = '2024-01-01'",
    )
    .fetch_one(&mut a)
    .await
    .unwrap();
    assert_eq!(program, ("2023 Healthy China Tour".into(), "2".into()));

    // Taking back: one institution leaves nothing; everything leaves the role.
    let said = grant(
        broker,
        db,
        &["revoke-analyst", scoped, "--institution", "h1"],
    );
    assert!(said.contains("sees no institution's rows"), "{said}");
    assert_eq!(seen(&mut s).await, ["", "", "0"], "h1 revoked");
    let said = grant(broker, db, &["revoke-analyst", analyst]);
    assert!(said.contains("is no longer an analyst"), "{said}");
    denied(&mut a, "SELECT * FROM outreach.regional_metrics").await;

    // A login that does not exist: one line that says what to do.
    let out = outreach_command(broker, db, "unused")
        .args(["grant-analyst", "nobody_here", "--all"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no login role \"nobody_here\"")
            && err.contains("CREATE ROLE nobody_here LOGIN"),
        "{err}"
    );
    let human = err.lines().filter(|l| l.starts_with("error:")).count();
    assert_eq!(
        human, 1,
        "once for people (and once as a JSON log record): {err}"
    );

    a.close().await.unwrap();
    s.close().await.unwrap();
    logins.drop_all().await;
}

#[tokio::test]
async fn a_pipeline_that_may_not_migrate_refuses_an_old_schema_and_says_what_to_do() {
    let broker = Broker::start();
    let db = Db::new().await;
    let out = outreach_command(&broker, &db, "g")
        .args(["run", "--until-caught-up"])
        .env("OUTREACH__DATABASE__MIGRATE", "false")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("run `outreach migrate`"), "{err}");
}

/// The grants each earlier release made after migrating, as it ran them
/// (tests/fixtures/legacy_grants): none before roles existed (0001).
fn legacy_grants(version: u32) -> &'static str {
    match version {
        1 => "",
        2 => include_str!("fixtures/legacy_grants/0002.sql"),
        3 | 4 => include_str!("fixtures/legacy_grants/0003-0004.sql"),
        _ => unreachable!(),
    }
}

/// Two institutions' rows as the schema of `version` stores them: a cell of
/// `daily_metrics` (a table until 0003), a mission, and one quarantined
/// message.
fn legacy_rows(version: u32) -> [&'static str; 3] {
    [
        if version < 3 {
            "INSERT INTO outreach.daily_metrics VALUES ('2024-03-05', 'h1', 'p', NULL, 'f1', '620921', 'surgeries', '{}', 1), ('2024-03-05', 'h2', 'p', NULL, 'f2', '620922', 'surgeries', '{}', 2)"
        } else {
            "INSERT INTO outreach.daily_cells VALUES ('2024-03-05', 'h1', 'p', NULL, 'f1', '620921', 'surgeries', '{}', 100), ('2024-03-05', 'h2', 'p', NULL, 'f2', '620922', 'surgeries', '{}', 200)"
        },
        "INSERT INTO outreach.missions VALUES ('m1', 'h1', 'p', 'f1', '620921', 2, '{}', '2024-03-04', NULL, NULL, 'active'), ('m2', 'h2', 'p', 'f2', '620922', 2, '{}', '2024-03-04', NULL, NULL, 'active')",
        "INSERT INTO outreach.quarantine VALUES (now(), 't', 0, 0, NULL, 'x', 'invalid_json', 'x')",
    ]
}

/// A database at schema `version` (1 to 4), with the grants that release
/// made, its rows, and the readers of that time: `every` saw every
/// institution (by hand before roles existed; in the analyst role and
/// unlisted after), `h1` (from 0002, when analyst_scope came) only h1's
/// rows, `writer` is the pipeline's login and `stranger` reads nothing.
async fn legacy(db: &Db, version: u32) -> (sqlx::PgPool, Logins, Vec<String>) {
    let pool = db.pool().await;
    migrator_before("postgres", &format!("{:04}", version + 1))
        .await
        .run(&pool)
        .await
        .unwrap();
    let grants = legacy_grants(version)
        .replace("{writer}", "outreach_writer")
        .replace("{analyst}", "outreach_analyst");
    sqlx::raw_sql(sqlx::AssertSqlSafe(grants))
        .execute(&pool)
        .await
        .unwrap_or_else(|e| panic!("the grants of schema {version}: {e}"));
    for sql in legacy_rows(version) {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let (analyst, writer) = if version == 1 {
        // No roles yet: readers and writers were granted by hand.
        ("", "")
    } else {
        ("outreach_analyst", "outreach_writer")
    };
    let (logins, names) = Logins::create(
        &db.url,
        &[
            ("every", analyst),
            ("h1", analyst),
            ("writer", writer),
            ("stranger", ""),
        ],
    )
    .await;
    let by_hand = |sql: String| {
        let pool = pool.clone();
        async move {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&pool)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    };
    if version == 1 {
        // What that release's docs told operators: a reader gets USAGE and
        // SELECT; the pipeline's login, everything.
        by_hand(format!(
            "GRANT USAGE ON SCHEMA outreach TO {}, {}",
            names[0], names[2]
        ))
        .await;
        by_hand(format!(
            "GRANT SELECT ON ALL TABLES IN SCHEMA outreach TO {}",
            names[0]
        ))
        .await;
        by_hand(format!(
            "GRANT ALL ON ALL TABLES IN SCHEMA outreach TO {}",
            names[2]
        ))
        .await;
    } else {
        by_hand(format!(
            "INSERT INTO outreach.analyst_scope VALUES ('{}', 'h1')",
            names[1]
        ))
        .await;
    }
    (pool, logins, names)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_from_every_earlier_schema_keeps_what_existing_analysts_saw() {
    for version in 1..=4 {
        let db = Db::new().await;
        let (pool, mut logins, names) = legacy(&db, version).await;
        let (every, h1, writer, stranger) = (&names[0], &names[1], &names[2], &names[3]);
        let mut readers = vec![login(&db, every).await];
        let mut expected = vec![["h1,h2", "h1,h2", "1"]];
        if version >= 2 {
            readers.push(login(&db, h1).await);
            expected.push(["h1", "h1", "0"]);
        }
        let expected: Vec<[String; 3]> = expected.iter().map(|r| r.map(String::from)).collect();
        let mut before = Vec::new();
        for c in &mut readers {
            before.push(seen(c).await);
        }
        assert_eq!(before, expected, "schema {version}: the fixture");

        let out = outreach_command_at("127.0.0.1:1", &db.url, "unused")
            .arg("migrate")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "schema {version}: {log}");
        let warning = log
            .lines()
            .find(|l| l.contains("they keep it as an explicit grant"))
            .unwrap_or_else(|| panic!("schema {version}: migrate says whom it kept: {log}"));
        assert!(warning.contains(every.as_str()), "{warning}");
        for other in [h1, writer, stranger] {
            assert!(!warning.contains(other.as_str()), "{other}: {warning}");
        }

        let mut after = Vec::new();
        for c in &mut readers {
            after.push(seen(c).await);
        }
        assert_eq!(after, before, "schema {version}: what each reader saw");
        // (Roles are cluster-wide: other tests' analyst logins could read
        // this database too, and were kept as well.)
        let kept: Vec<(String, String)> = sqlx::query_as(
            "SELECT role_name::text, institution_id FROM outreach.analyst_scope
             WHERE role_name = ANY($1) ORDER BY 1",
        )
        .bind(&names)
        .fetch_all(&pool)
        .await
        .unwrap();
        let mut want = vec![(every.clone(), "*".to_owned())];
        if version >= 2 {
            want.push((h1.clone(), "h1".to_owned()));
        }
        want.sort();
        assert_eq!(kept, want, "schema {version}: as explicit grants");
        let mut s = login(&db, stranger).await;
        denied(&mut s, "SELECT * FROM outreach.daily_metrics").await;

        // Narrowed, a reader of the first release also loses the grants
        // it had by hand: it reads the ledger no more, only its scope.
        let narrow = |args: &[&str]| {
            let out = outreach_command_at("127.0.0.1:1", &db.url, "unused")
                .args(args)
                .output()
                .unwrap();
            let log = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(out.status.success(), "schema {version}: {args:?}: {log}");
            log
        };
        let said = narrow(&["revoke-analyst", every]);
        narrow(&["grant-analyst", every, "--institution", "h1"]);
        assert_eq!(
            said.contains("granted outside outreach"),
            version == 1,
            "schema {version}: says what it revoked: {said}"
        );
        assert_eq!(
            seen(&mut readers[0]).await,
            ["h1", "h1", "0"],
            "schema {version}"
        );
        for table in [
            "activity_facts",
            "mission_facts",
            "daily_cells",
            "daily_deltas",
        ] {
            denied(&mut readers[0], &format!("SELECT * FROM outreach.{table}")).await;
        }
        // The pipeline's own login is no analyst to scope.
        let out = outreach_command_at("127.0.0.1:1", &db.url, "unused")
            .args(["grant-analyst", writer, "--institution", "h1"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "schema {version}: {err}");
        assert!(err.contains("can write the ledger"), "{err}");

        // A login made after the upgrade sees no institution.
        let (new, made) = Logins::create(&db.url, &[("new", "outreach_analyst")]).await;
        logins.names.extend(new.names);
        let mut n = login(&db, &made[0]).await;
        assert_eq!(seen(&mut n).await, ["", "", "0"], "schema {version}");
        for c in readers.into_iter().chain([s, n]) {
            c.close().await.unwrap();
        }
        pool.close().await;
        // Hand-made grants hold the logins until their database goes.
        drop(db);
        logins.drop_all().await;
    }
}

#[test]
fn granting_an_analyst_on_sqlite_says_it_has_no_logins() {
    let broker = Broker::start();
    let db = SqliteDb::new();
    let out = outreach_command_to(&broker, &db.url, "unused")
        .args(["grant-analyst", "bob", "--institution", "h1"])
        .env("OUTREACH__LOG__FORMAT", "pretty")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("a SQLite file has no logins") && err.contains("database.url"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[tokio::test]
async fn an_older_binary_refuses_a_newer_schema_and_says_so() {
    let broker = Broker::start();
    let db = Db::new().await;
    let migrate = || {
        outreach_command(&broker, &db, "unused")
            .arg("migrate")
            .env("OUTREACH__LOG__FORMAT", "pretty")
            .output()
            .unwrap()
    };
    assert!(migrate().status.success());
    // What a later release's migration leaves behind.
    let pool = db.pool().await;
    sqlx::query(
        "INSERT INTO public._sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (9999, 'from a later release', true, '\\x00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let out = migrate();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("migrated by a newer release of outreach (it records migration 9999"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
