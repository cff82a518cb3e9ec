//! Least privilege and what analysts read: the pipeline runs as the writer
//! role and cannot change the schema; the analyst role reads the contract's
//! tables and views and writes nothing; an analyst mapped to an institution
//! sees only its rows; the views' indicators are ratios of sums.

mod support;

use serde_json::json;
use sqlx::{Connection, PgConnection};
use support::events::*;
use support::*;

/// `url` with its user replaced.
fn as_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}@{host}")
}

async fn denied(c: &mut PgConnection, sql: &str) {
    let e = sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut *c)
        .await
        .expect_err(sql);
    let msg = e.to_string();
    assert!(
        msg.contains("permission denied") || msg.contains("must be owner"),
        "{sql}: {msg}"
    );
}

/// Login roles of this test, members of the managed roles; dropped at the end.
struct Logins {
    admin: String,
    names: Vec<String>,
}

impl Logins {
    async fn create(admin: &str, members: &[(&str, &str)]) -> (Logins, Vec<String>) {
        let mut c = PgConnection::connect(admin).await.unwrap();
        let mut names = Vec::new();
        for (prefix, role) in members {
            let name = unique(prefix).to_lowercase();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE ROLE {name} LOGIN IN ROLE {role}"
            )))
            .execute(&mut c)
            .await
            .unwrap();
            names.push(name);
        }
        (
            Logins {
                admin: admin.to_owned(),
                names: names.clone(),
            },
            names,
        )
    }

    async fn drop_all(self) {
        let mut c = PgConnection::connect(&self.admin).await.unwrap();
        for n in &self.names {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {n}")))
                .execute(&mut c)
                .await
                .unwrap();
        }
    }
}

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
    let broker = Broker::start();
    broker.contract_topics(2).await;
    let db = Db::new().await;
    let status = outreach_command(&broker, &db, "unused")
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
    let out = outreach_command_to(&broker, &as_user(&db.url, writer), &unique("g"))
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
    let institutions = |rows: Vec<String>| rows.join(",");
    let all: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT institution_id FROM outreach.daily_metrics ORDER BY 1")
            .fetch_all(&mut a)
            .await
            .unwrap();
    assert_eq!(institutions(all), "h1,h2", "an unmapped analyst sees all");

    // Row-level security: mapped to h1, an analyst sees h1's rows only.
    let pool = db.pool().await;
    sqlx::query("INSERT INTO outreach.analyst_scope VALUES ($1, 'h1')")
        .bind(scoped)
        .execute(&pool)
        .await
        .unwrap();
    let mut s = PgConnection::connect(&as_user(&db.url, scoped))
        .await
        .unwrap();
    for table in ["daily_metrics", "missions"] {
        let all: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT institution_id FROM outreach.{table} ORDER BY 1"
        )))
        .fetch_all(&mut a)
        .await
        .unwrap();
        assert_eq!(
            institutions(all),
            "h1,h2",
            "{table}: both institutions there"
        );
        // Also after switching to the group role: scoping follows the login.
        for switch in ["RESET ROLE", "SET ROLE outreach_analyst"] {
            sqlx::query(switch).execute(&mut s).await.unwrap();
            let seen: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT DISTINCT institution_id FROM outreach.{table} ORDER BY 1"
            )))
            .fetch_all(&mut s)
            .await
            .unwrap();
            assert_eq!(institutions(seen), "h1", "{table} scoped to h1 ({switch})");
        }
        sqlx::query("RESET ROLE").execute(&mut s).await.unwrap();
    }
    let count = "SELECT count(*) FROM outreach.quarantine";
    let (everyone, mapped): (i64, i64) = (
        sqlx::query_scalar(count).fetch_one(&mut a).await.unwrap(),
        sqlx::query_scalar(count).fetch_one(&mut s).await.unwrap(),
    );
    assert_eq!(
        (everyone, mapped),
        (1, 0),
        "the quarantine (every institution's raw payloads) is hidden from mapped analysts"
    );
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

    a.close().await.unwrap();
    s.close().await.unwrap();
    pool.close().await;
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
