//! An analyst granted one institution tries, as a hostile user would, to
//! read another's rows: leaky functions in filters, errors as an oracle,
//! built-ins and operators shadowed through its own schema and search_path,
//! objects created in `outreach`, the tables under the views, the scope
//! table, the planner's statistics, another role. Each attempt must show
//! nothing of institution h2. (docs/operations.md, "Threat model".)

mod support;

use serde_json::json;
use sqlx::{Connection, PgConnection};
use support::analysts::*;
use support::app::App;
use support::events::*;
use support::*;

/// h1 and h2 in different counties, programs and facilities, so that any
/// of h2's keys that reaches a function is recognisable.
fn events() -> Vec<Record> {
    let act = |inst: &str, program: &str, id: &str, metric: &str, region: &str, role: &str| {
        let mut e = activity(inst, id, id, metric, json!(3), "2024-03-05", region);
        e = with(e, "program_id", json!(program));
        e = with(e, "facility_id", json!(format!("{inst}-clinic")));
        if !role.is_empty() {
            e = with(e, "dims", json!({ "role": role }));
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
        mission_record(&dispatch(
            "h2",
            "d2",
            "m2",
            "620922",
            2,
            "2024-03-04",
            "2024-03-01T00:00:00Z",
        )),
        act(
            "h1",
            "healthy-china-tour-2023",
            "a1",
            "surgeries",
            "620921",
            "performed",
        ),
        act(
            "h1",
            "healthy-china-tour-2023",
            "a2",
            "outpatient_visits",
            "620921",
            "",
        ),
        act("h2", "nrmc-gansu", "a3", "surgeries", "620922", "assisted"),
        act("h2", "nrmc-gansu", "a4", "outpatient_visits", "620922", ""),
        // Refused (unknown region): the quarantine holds h2's raw payload.
        activity_record(&activity(
            "h2",
            "bad1",
            "bad1",
            "surgeries",
            json!(1),
            "2024-03-05",
            "999999",
        )),
    ]
}

/// Runs `sql` as the analyst; it must succeed, and its rows come back.
async fn rows(c: &mut PgConnection, sql: &str) -> Vec<String> {
    sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn exec(c: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut *c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scoped_analyst_cannot_read_another_institution_however_it_tries() {
    let app = App::spawn(2).await;
    let (broker, db) = (&app.broker, &app.db);
    broker.producer().send(&events()).await;
    let out = outreach_command(broker, db, &unique("g"))
        .args(["run", "--until-caught-up"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (logins, names) = Logins::create(
        &db.url,
        &[
            ("mallory", "outreach_analyst"),
            ("h2_reader", "outreach_analyst"),
        ],
    )
    .await;
    let (mallory, other) = (&names[0], &names[1]);
    grant(
        broker,
        db,
        &["grant-analyst", mallory, "--institution", "h1"],
    );
    grant(broker, db, &["grant-analyst", other, "--institution", "h2"]);
    // A schema of its own to put functions and operators in: a common
    // set-up for analysts, and the tool of attack 2.
    let mut admin = PgConnection::connect(&db.url).await.unwrap();
    exec(
        &mut admin,
        &format!("CREATE SCHEMA scratch AUTHORIZATION {mallory}"),
    )
    .await;
    admin.close().await.unwrap();

    let mut m = login(db, mallory).await;
    let own = ["h1", "h1", "0"].map(String::from);
    assert_eq!(seen(&mut m).await, own, "granted h1");
    // The timeliness views show each login its own institution's facts.
    let timeliness = "SELECT institution_id || ' ' || program_id || ' ' || events
                      FROM outreach.reporting_timeliness ORDER BY 1";
    assert_eq!(
        rows(&mut m, timeliness).await,
        ["h1 healthy-china-tour-2023 2"]
    );
    let mut h2 = login(db, other).await;
    assert_eq!(rows(&mut h2, timeliness).await, ["h2 nrmc-gansu 2"]);
    h2.close().await.unwrap();

    // 1. A leaky function in a filter: cheap, claims to be immutable, and
    // shouts whatever it is shown. It may only ever be shown h1's rows.
    for (name, args) in [
        ("peek", "a text, b text, c text, d text, e text"),
        ("peek2", "a text, b text"),
    ] {
        exec(
            &mut m,
            &format!(
                "CREATE FUNCTION pg_temp.{name}({args}) RETURNS bool
                 LANGUAGE plpgsql IMMUTABLE COST 0.0001 AS $$
                 BEGIN
                     IF concat_ws(' ', VARIADIC ARRAY[{}]) ~ '(h2|620922|nrmc-gansu|m2)' THEN
                         RAISE EXCEPTION 'leaked: %', ARRAY[{}];
                     END IF;
                     RETURN true;
                 END $$",
                &args.replace(" text", "")[..],
                &args.replace(" text", "")[..]
            ),
        )
        .await;
    }
    for sql in [
        "SELECT institution_id FROM outreach.daily_metrics
         WHERE pg_temp.peek(institution_id, mission_id, facility_id, region_code, program_id)",
        "SELECT program_id FROM outreach.surgery_roles WHERE pg_temp.peek2(program_id, region_code)",
        "SELECT institution_id FROM outreach.missions
         WHERE pg_temp.peek(institution_id, mission_id, region_code, program_id, host_facility_id)",
        "SELECT topic FROM outreach.quarantine WHERE pg_temp.peek2(encode(payload, 'escape'), topic)",
        "SELECT institution_id FROM outreach.reporting_lags WHERE pg_temp.peek2(institution_id, program_id)",
        "SELECT institution_id FROM outreach.reporting_timeliness
         WHERE pg_temp.peek2(institution_id, program_id)",
        "SELECT t.institution_id FROM (SELECT * FROM outreach.reporting_lags) t
         JOIN outreach.programs p USING (program_id) WHERE pg_temp.peek2(t.institution_id, p.program_id)",
        // The same through a subquery and a join the planner may flatten.
        "SELECT d.institution_id FROM (SELECT * FROM outreach.daily_metrics) d
         JOIN outreach.regions r USING (region_code) WHERE pg_temp.peek2(d.institution_id, r.name)",
    ] {
        let got = rows(&mut m, sql).await;
        assert!(got.iter().all(|r| r != "h2"), "{sql}: {got:?}");
    }

    // Errors as an oracle: a division by zero that only h2's rows would
    // reach (by their values, so the planner cannot fold it) must never run.
    let boom = "1 / (length(institution_id) - 2)";
    for sql in [
        format!(
            "SELECT institution_id FROM outreach.daily_metrics
             WHERE CASE WHEN institution_id = 'h2' THEN {boom} ELSE 1 END = 1"
        ),
        format!(
            "SELECT institution_id FROM outreach.daily_metrics
             WHERE CASE WHEN region_code = '620922' THEN {boom} ELSE 1 END = 1"
        ),
        format!(
            "SELECT institution_id FROM outreach.missions
             WHERE CASE WHEN institution_id = 'h2' THEN {boom} ELSE 1 END = 1"
        ),
        format!(
            "SELECT institution_id FROM outreach.reporting_lags
             WHERE CASE WHEN program_id = 'nrmc-gansu' THEN {boom} ELSE 1 END = 1"
        ),
        format!(
            "SELECT institution_id FROM outreach.reporting_timeliness
             WHERE CASE WHEN institution_id = 'h2' THEN {boom} ELSE 1 END = 1"
        ),
    ] {
        let got = rows(&mut m, &sql).await;
        assert!(
            !got.is_empty() && got.iter().all(|r| r == "h1"),
            "{sql}: {got:?}"
        );
    }

    // 2. Shadowing built-ins and operators, then putting its own schema
    // first. The scope functions and views bind their names when created.
    exec(
        &mut m,
        "CREATE FUNCTION scratch.has_table_privilege(name, text, text) RETURNS bool
             LANGUAGE sql AS 'SELECT true';
         CREATE FUNCTION scratch.has_table_privilege(name, regclass, text) RETURNS bool
             LANGUAGE sql AS 'SELECT true';
         CREATE FUNCTION scratch.eq(name, name) RETURNS bool LANGUAGE sql AS 'SELECT true';
         CREATE OPERATOR scratch.= (LEFTARG = name, RIGHTARG = name, FUNCTION = scratch.eq);
         CREATE FUNCTION scratch.teq(text, text) RETURNS bool LANGUAGE sql AS 'SELECT true';
         CREATE OPERATOR scratch.= (LEFTARG = text, RIGHTARG = text, FUNCTION = scratch.teq);
         CREATE FUNCTION scratch.date_trunc(text, timestamp) RETURNS timestamp
             LANGUAGE sql AS 'SELECT timestamp ''1999-01-01''';",
    )
    .await;
    // (The analyst's own query text uses its own operators under this
    // path: so the checks below compare no keys in the caller's query.)
    let regional =
        "SELECT string_agg(region_code || period_type || period_start || value, ',' ORDER BY 1)
                    FROM outreach.regional_metrics";
    let regional_before = rows(&mut m, regional).await;
    let periods = "SELECT string_agg(period_type || ' ' || period_start, ',')
                   FROM outreach.period_starts('2024-03-05')";
    for path in [
        "scratch, pg_catalog",
        "scratch, pg_temp, pg_catalog",
        "pg_temp, scratch",
    ] {
        exec(&mut m, &format!("SET search_path = {path}")).await;
        assert_eq!(seen(&mut m).await, own, "search_path = {path}");
        assert_eq!(
            rows(&mut m, "SELECT outreach.analyst_sees_all()::text").await,
            ["false"]
        );
        assert_eq!(
            rows(&mut m, "SELECT outreach.analyst_sees('h2')::text").await,
            ["false"]
        );
        assert_eq!(rows(&mut m, regional).await, regional_before, "{path}");
        assert_eq!(
            rows(&mut m, periods).await,
            ["day 2024-03-05,week 2024-03-04,month 2024-03-01,quarter 2024-01-01,year 2024-01-01"],
            "periods are computed by pg_catalog.date_trunc, whatever the path"
        );
    }
    exec(&mut m, "RESET search_path").await;

    // 3. Creating in outreach, reading the tables under the views, taking
    // another role, writing the scope.
    for sql in [
        "CREATE TABLE outreach.evil (i int)",
        "CREATE VIEW outreach.evil AS SELECT 1",
        "CREATE FUNCTION outreach.analyst_sees_all(int) RETURNS bool LANGUAGE sql AS 'SELECT true'",
        "CREATE OR REPLACE FUNCTION outreach.analyst_sees_all() RETURNS bool LANGUAGE sql AS 'SELECT true'",
        "ALTER VIEW outreach.daily_metrics RESET (security_barrier)",
        "ALTER VIEW outreach.reporting_lags RESET (security_barrier)",
        "SELECT * FROM outreach.daily_cells",
        "SELECT * FROM outreach.daily_deltas",
        "SELECT * FROM outreach.regional_cells",
        "SELECT * FROM outreach.regional_deltas",
        "SELECT * FROM outreach.program_cells",
        "SELECT * FROM outreach.program_deltas",
        "SELECT * FROM outreach.activity_facts",
        "SELECT * FROM outreach.mission_facts",
        "SELECT * FROM public._sqlx_migrations",
        "INSERT INTO outreach.analyst_scope VALUES (session_user, 'h2')",
        "UPDATE outreach.analyst_scope SET institution_id = '*'",
        "SET ROLE outreach_writer",
    ] {
        denied(&mut m, sql).await;
    }

    // 4. The scope table shows its own rows only: not who else reads, nor
    // which other institutions exist.
    assert_eq!(
        rows(
            &mut m,
            "SELECT role_name || ':' || institution_id FROM outreach.analyst_scope"
        )
        .await,
        [format!("{mallory}:h1")]
    );

    // 5. The planner's statistics of the hidden tables (most common values
    // would name institutions) are not shown.
    exec(&mut admin_connection(db).await, "ANALYZE").await;
    assert!(
        rows(
            &mut m,
            "SELECT attname::text FROM pg_stats WHERE schemaname = 'outreach'
             AND tablename IN ('daily_cells', 'daily_deltas', 'activity_facts', 'missions')"
        )
        .await
        .is_empty()
    );

    // The barrier keeps the key filters on an index of the stored cells.
    exec(&mut m, "SET enable_seqscan = off").await;
    let plan = rows(
        &mut m,
        "EXPLAIN SELECT * FROM outreach.daily_metrics
         WHERE region_code = '620921' AND day = '2024-03-05'",
    )
    .await
    .join("\n");
    let on_cells = plan
        .split("->")
        .find(|node| node.contains("Index") && node.contains("on daily_cells"))
        .unwrap_or_else(|| panic!("no index scan of daily_cells: {plan}"));
    assert!(
        on_cells.contains("Index Cond") && on_cells.contains("region_code = '620921'"),
        "{plan}"
    );

    m.close().await.unwrap();
    // The scratch schema holds the login until its database goes.
    drop(app);
    logins.drop_all().await;
}

async fn admin_connection(db: &Db) -> PgConnection {
    PgConnection::connect(&db.url).await.unwrap()
}
