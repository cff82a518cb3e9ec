//! Least privilege, set up after the migrations by the account that owns
//! the schema: a writer role for the pipeline (rows only: it cannot create,
//! alter or drop anything) and a read-only analyst role (the analyst tables
//! and views, not the ledger). Row-level security scopes an analyst to one
//! institution's rows of `missions` (and hides the quarantine) when
//! `outreach.analyst_scope` maps their login role to it; the view
//! `daily_metrics` applies the same scope in its definition (migration 0003).
//!
//! Role names are settings, so this runs from code rather than a migration;
//! every statement is idempotent and safe to run again at each start.

use sqlx::PgPool;

use crate::Result;

/// The tables analysts read.
pub const ANALYST_TABLES: [&str; 7] = [
    "regional_metrics",
    "program_metrics",
    "daily_metrics",
    "missions",
    "regions",
    "programs",
    "quarantine",
];

/// The views analysts read (migrations 0002 and 0003).
pub const ANALYST_VIEWS: [&str; 3] = ["program_summary", "region_summary", "surgery_roles"];

/// Which rows of a table an analyst sees. `session_user`, not
/// `current_user`: a mapped login that runs `SET ROLE outreach_analyst` is
/// still itself. Unmapped analysts see every row; mapped ones see their
/// institutions' rows, and none of the quarantine (raw payloads of every
/// institution).
const UNMAPPED: &str =
    "NOT EXISTS (SELECT FROM outreach.analyst_scope s WHERE s.role_name = session_user)";
/// (`daily_metrics` is a view over tables the batches COPY into, which
/// row-level security would forbid: the view applies the same scope itself,
/// migration 0003.)
const POLICIES: [(&str, &str); 2] = [("missions", SCOPED_ROWS), ("quarantine", UNMAPPED)];
const SCOPED_ROWS: &str =
    "NOT EXISTS (SELECT FROM outreach.analyst_scope s WHERE s.role_name = session_user)
     OR institution_id IN (SELECT s.institution_id FROM outreach.analyst_scope s
                           WHERE s.role_name = session_user)";

/// Whether `name` can be used as a role name without quoting.
pub fn valid_role_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

/// Whether both roles exist and the row-level security policies name them
/// (the last thing [`grant`] does, in the same transaction as the rest).
pub async fn in_place(pool: &PgPool, writer: &str, analyst: &str) -> Result<bool> {
    let ok: bool = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM pg_policies WHERE schemaname = 'outreach' AND (
                   (policyname = 'writer_all' AND roles = ARRAY[$1]::name[])
                OR (policyname = 'analyst_rows' AND roles = ARRAY[$2]::name[]))) = $3
            AND EXISTS (SELECT FROM pg_roles WHERE rolname = $1)
            AND EXISTS (SELECT FROM pg_roles WHERE rolname = $2)",
    )
    .bind(writer)
    .bind(analyst)
    .bind(2 * POLICIES.len() as i64)
    .fetch_one(pool)
    .await?;
    Ok(ok)
}

/// Creates the roles if missing and grants them exactly what they need.
pub async fn grant(pool: &PgPool, writer: &str, analyst: &str) -> Result<()> {
    assert!(valid_role_name(writer) && valid_role_name(analyst));
    let mut tx = pool.begin().await?;
    // Replicas starting together would otherwise update the same catalog
    // rows at once ("tuple concurrently updated").
    exec(
        &mut tx,
        "SELECT pg_advisory_xact_lock(7261002114)".to_owned(),
    )
    .await?;
    for role in [writer, analyst] {
        // Roles are cluster-wide: two databases set up at once may race to
        // create the same one, which is fine.
        exec(
            &mut tx,
            format!(
                "DO $$ BEGIN
                   IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                     CREATE ROLE \"{role}\" NOLOGIN;
                   END IF;
                 EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                 END $$"
            ),
        )
        .await?;
    }
    let analyst_objects = ANALYST_TABLES
        .iter()
        .chain(&ANALYST_VIEWS)
        .map(|t| format!("outreach.{t}"))
        .collect::<Vec<_>>()
        .join(", ");
    for sql in [
        "REVOKE ALL ON SCHEMA outreach FROM PUBLIC".to_owned(),
        format!("GRANT USAGE ON SCHEMA outreach TO \"{writer}\", \"{analyst}\""),
        format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA outreach TO \"{writer}\""
        ),
        // Who sees what is the schema owner's business, not the pipeline's.
        format!("REVOKE INSERT, UPDATE, DELETE ON outreach.analyst_scope FROM \"{writer}\""),
        format!("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA outreach TO \"{writer}\""),
        // So that a pipeline that may not migrate can check the schema's version.
        format!("GRANT SELECT ON public._sqlx_migrations TO \"{writer}\""),
        format!("GRANT SELECT ON {analyst_objects} TO \"{analyst}\""),
        format!("GRANT SELECT ON outreach.analyst_scope TO \"{analyst}\""),
        // Where each partition stands and when it last committed: freshness
        // dashboards need it, and it holds nothing about patients or staff.
        format!("GRANT SELECT ON outreach.consumer_offsets TO \"{analyst}\""),
    ] {
        exec(&mut tx, sql).await?;
    }
    for (table, visible) in POLICIES {
        exec(
            &mut tx,
            format!("ALTER TABLE outreach.{table} ENABLE ROW LEVEL SECURITY"),
        )
        .await?;
        for name in ["writer_all", "analyst_scope", "analyst_rows"] {
            exec(
                &mut tx,
                format!("DROP POLICY IF EXISTS {name} ON outreach.{table}"),
            )
            .await?;
        }
        exec(
            &mut tx,
            format!(
                "CREATE POLICY writer_all ON outreach.{table} TO \"{writer}\" USING (true) WITH CHECK (true)"
            ),
        )
        .await?;
        exec(
            &mut tx,
            format!(
                "CREATE POLICY analyst_rows ON outreach.{table} FOR SELECT TO \"{analyst}\" USING ({visible})"
            ),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn exec(tx: &mut sqlx::PgConnection, sql: String) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(tx).await?;
    Ok(())
}
