//! Least privilege, set up after the migrations by the account that owns
//! the schema: a writer role for the pipeline (rows only: it cannot create,
//! alter or drop anything) and a read-only analyst role (the analyst tables
//! and views, not the ledger). Deny by default: an analyst login sees the
//! rows of `daily_metrics`, `missions` and the quarantine only for the
//! institutions `outreach.analyst_scope` grants it (row-level security on
//! the tables, the view's own definition for `daily_metrics`: migration
//! 0005, hardened by 0006); [`grant_analyst`] and [`revoke_analyst`]
//! write that table.
//!
//! Role names are settings, so this runs from code rather than a migration;
//! every statement is idempotent and safe to run again at each start.

use sqlx::PgPool;

use crate::{Error, Result};

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

/// The views analysts read (migrations 0002, 0003 and 0008).
pub const ANALYST_VIEWS: [&str; 5] = [
    "program_summary",
    "region_summary",
    "surgery_roles",
    "reporting_lags",
    "reporting_timeliness",
];

/// Which rows of a table an analyst sees, read from `outreach.analyst_scope`
/// for `session_user` (not `current_user`: a login that runs `SET ROLE
/// outreach_analyst` is still itself). A login with no scope row sees none;
/// `'*'` grants every institution (`analyst_sees_all`, migration 0006), and
/// only that grant shows the quarantine (raw payloads of every
/// institution). The all-institutions test is a scalar subquery, run once
/// per query rather than per row. An analyst reads only its own rows of the
/// scope table: who else may see what, and which institutions exist, is not
/// its business. (`daily_metrics` is a view over tables the batches COPY
/// into, which row-level security would forbid: the view applies the same
/// scope itself, behind a security barrier.) Policies are parsed when
/// created: every name in them is bound then, whatever the caller's
/// search_path.
const POLICIES: [(&str, &str); 3] = [
    (
        "missions",
        "(SELECT outreach.analyst_sees_all()) OR institution_id IN
           (SELECT s.institution_id FROM outreach.analyst_scope s WHERE s.role_name = session_user)",
    ),
    ("quarantine", "(SELECT outreach.analyst_sees_all())"),
    ("analyst_scope", "role_name = session_user"),
];

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
    for sql in grants(writer, analyst) {
        exec(&mut tx, sql).await?;
    }
    for sql in policies(writer, analyst) {
        exec(&mut tx, sql).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The roles' privileges on the schema, its tables and its sequences.
fn grants(writer: &str, analyst: &str) -> Vec<String> {
    let analyst_objects = ANALYST_TABLES
        .iter()
        .chain(&ANALYST_VIEWS)
        .map(|t| format!("outreach.{t}"))
        .collect::<Vec<_>>()
        .join(", ");
    vec![
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
    ]
}

/// Row-level security on each table of [`POLICIES`]: the writer sees and
/// writes every row, the analyst reads the rows its scope allows. (Dropped
/// and created again: a policy cannot be replaced in place.)
fn policies(writer: &str, analyst: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (table, visible) in POLICIES {
        out.push(format!(
            "ALTER TABLE outreach.{table} ENABLE ROW LEVEL SECURITY"
        ));
        for name in ["writer_all", "analyst_scope", "analyst_rows"] {
            out.push(format!("DROP POLICY IF EXISTS {name} ON outreach.{table}"));
        }
        out.push(format!(
            "CREATE POLICY writer_all ON outreach.{table} TO \"{writer}\" USING (true) WITH CHECK (true)"
        ));
        out.push(format!(
            "CREATE POLICY analyst_rows ON outreach.{table} FOR SELECT TO \"{analyst}\" USING ({visible})"
        ));
    }
    out
}

async fn exec(tx: &mut sqlx::PgConnection, sql: String) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(tx).await?;
    Ok(())
}

/// What an analyst login sees of the institution-scoped tables
/// (`daily_metrics`, `missions`, the quarantine). The shared aggregates
/// (`regional_metrics`, `program_metrics` and their views) are every
/// analyst's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every institution's rows, and the quarantine (stored as `'*'`).
    All,
    /// These institutions' rows.
    Institutions(Vec<schemas::Id>),
}

/// The stored form of [`Scope::All`]: never an institution, whose
/// identifiers are drawn from `[a-z0-9._:-]`.
const EVERY_INSTITUTION: &str = "*";

/// Makes `login` an analyst (member of `analyst`) and adds `scope` to what
/// it sees. Returns everything it sees now.
pub async fn grant_analyst(
    pool: &PgPool,
    analyst: &str,
    login: &str,
    scope: &Scope,
) -> Result<Scope> {
    let mut tx = pool.begin().await?;
    check_login(&mut tx, analyst, login).await?;
    drop_direct_grants(&mut tx, login).await?;
    exec(&mut tx, format!("GRANT \"{analyst}\" TO \"{login}\"")).await?;
    let institutions: Vec<&str> = match scope {
        // Everything subsumes any list.
        Scope::All => {
            clear_scope(&mut tx, login).await?;
            vec![EVERY_INSTITUTION]
        }
        Scope::Institutions(ids) => ids.iter().map(|id| id.as_str()).collect(),
    };
    sqlx::query(
        "INSERT INTO outreach.analyst_scope (role_name, institution_id)
         SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
    )
    .bind(login)
    .bind(&institutions)
    .execute(&mut *tx)
    .await?;
    let now = scope_of(&mut tx, login).await?;
    tx.commit().await?;
    Ok(now)
}

/// Takes `institutions` out of what `login` sees, or, with none named,
/// everything and its membership of `analyst`. Returns what it still sees.
pub async fn revoke_analyst(
    pool: &PgPool,
    analyst: &str,
    login: &str,
    institutions: &[schemas::Id],
) -> Result<Scope> {
    let mut tx = pool.begin().await?;
    check_login(&mut tx, analyst, login).await?;
    drop_direct_grants(&mut tx, login).await?;
    if institutions.is_empty() {
        clear_scope(&mut tx, login).await?;
        exec(&mut tx, format!("REVOKE \"{analyst}\" FROM \"{login}\"")).await?;
    } else {
        let ids: Vec<&str> = institutions.iter().map(|id| id.as_str()).collect();
        sqlx::query(
            "DELETE FROM outreach.analyst_scope WHERE role_name = $1 AND institution_id = ANY($2)",
        )
        .bind(login)
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    }
    let now = scope_of(&mut tx, login).await?;
    tx.commit().await?;
    Ok(now)
}

/// Takes the privileges granted to `login` itself on the schema's tables
/// and views: readers granted by hand before roles existed (schema 0001)
/// keep them through an upgrade, and they would read the ledger around any
/// scope given now. What an analyst reads comes from the analyst role only.
async fn drop_direct_grants(tx: &mut sqlx::PgConnection, login: &str) -> Result<()> {
    let held: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT c.relname::text
         FROM pg_catalog.pg_class c
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace,
              pg_catalog.aclexplode(c.relacl) a
         WHERE n.nspname = 'outreach'
           AND a.grantee = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1)
         ORDER BY 1",
    )
    .bind(login)
    .fetch_all(&mut *tx)
    .await?;
    if held.is_empty() {
        return Ok(());
    }
    exec(
        tx,
        format!("REVOKE ALL ON ALL TABLES IN SCHEMA outreach FROM \"{login}\""),
    )
    .await?;
    tracing::warn!(
        login,
        relations = held.join(", "),
        "{login} held privileges of its own on {}, granted outside outreach (by hand, before roles existed): revoked, so that it reads only what its scope shows",
        held.join(", ")
    );
    Ok(())
}

/// Takes every scope row of `login`.
async fn clear_scope(tx: &mut sqlx::PgConnection, login: &str) -> Result<()> {
    sqlx::query("DELETE FROM outreach.analyst_scope WHERE role_name = $1")
        .bind(login)
        .execute(tx)
        .await?;
    Ok(())
}

/// What `login` sees now.
async fn scope_of(tx: &mut sqlx::PgConnection, login: &str) -> Result<Scope> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT institution_id FROM outreach.analyst_scope WHERE role_name = $1 ORDER BY 1",
    )
    .bind(login)
    .fetch_all(&mut *tx)
    .await?;
    if rows.iter().any(|r| r == EVERY_INSTITUTION) {
        return Ok(Scope::All);
    }
    // Rows written by hand may not be identifiers; they match nothing.
    Ok(Scope::Institutions(
        rows.iter().filter_map(|r| schemas::Id::parse(r)).collect(),
    ))
}

/// Both names are plain role names, the analyst role is managed, and the
/// login exists.
async fn check_login(tx: &mut sqlx::PgConnection, analyst: &str, login: &str) -> Result<()> {
    if analyst.is_empty() {
        return Err(Error::Role(
            "database.analyst_role is empty (roles are not managed): set it to the analyst role, e.g. outreach_analyst".into(),
        ));
    }
    if !valid_role_name(login) {
        return Err(Error::Role(format!(
            "\"{login}\" is not a plain role name: use lower-case letters, digits and _ (at most 63), starting with a letter or _"
        )));
    }
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)")
            .bind(login)
            .fetch_one(&mut *tx)
            .await?;
    if !exists {
        return Err(Error::NoSuchLogin(login.to_owned()));
    }
    // The writer, the tables' owner and superusers read the tables under
    // the views: a scope would not limit them, and revoking their own
    // grants would stop the pipeline.
    let writes: bool = sqlx::query_scalar(
        "SELECT pg_catalog.has_table_privilege($1, 'outreach.activity_facts', 'INSERT')",
    )
    .bind(login)
    .fetch_one(&mut *tx)
    .await?;
    if writes {
        return Err(Error::Role(format!(
            "\"{login}\" can write the ledger (it is the writer, the owner or a superuser): a scope would not limit what it reads; give each analyst a login of its own"
        )));
    }
    Ok(())
}
