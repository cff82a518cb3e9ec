//! Upgrading a database from before migration 0005 keeps what its analysts
//! saw.
//!
//! Until 0005 a login that could read `daily_metrics` and had no row in
//! `analyst_scope` saw every institution; since then it sees none until
//! granted. 0005 turns such readers into explicit grants (`'*'`), but it can
//! only find them through their privilege on `daily_metrics`, and 0003 drops
//! and recreates that relation without its grants (they come back when the
//! roles are granted again, after the migrations). So a database at 0001 or
//! 0002 migrated in one go would lose every reader silently.
//!
//! Hence two steps around the migrations. Before them, [`capture`] records
//! the readers as the schema stands, with the grants its release made, in
//! `outreach.upgrade_readers` (committed: a crash during the migrations
//! loses nothing). After them, [`keep`] makes each one an analyst with the
//! scope it had, says whom in a warning, and drops the table. A reader is a
//! login that may read `daily_metrics` and may not write the ledger (the
//! writer, the owner and superusers may): true of every release's analysts,
//! including readers granted by hand before roles existed (0001).

use sqlx::PgPool;

use crate::Result;

/// The schema's version before 0005's deny-by-default scope.
const DENIES_BY_DEFAULT: i64 = 5;

/// Records the readers of a schema from before [`DENIES_BY_DEFAULT`]; does
/// nothing on a new or a recent one.
pub(crate) async fn capture(pool: &PgPool, applied: i64) -> Result<()> {
    if applied == 0 || applied >= DENIES_BY_DEFAULT {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS outreach.upgrade_readers (
             role_name name PRIMARY KEY,
             from_version bigint NOT NULL
         )",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO outreach.upgrade_readers (role_name, from_version)
         SELECT r.rolname, $1 FROM pg_catalog.pg_roles r
         WHERE r.rolcanlogin
           AND pg_catalog.has_table_privilege(r.oid, 'outreach.daily_metrics', 'SELECT')
           AND NOT pg_catalog.has_table_privilege(r.oid, 'outreach.activity_facts', 'INSERT')
         ON CONFLICT DO NOTHING",
    )
    .bind(applied)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// After the migrations: every captured reader that still exists becomes a
/// member of `analyst` (when roles are managed) and, if no row of
/// `analyst_scope` names it (it saw every institution), is granted every
/// institution. Returns the logins granted every institution, for the
/// warning.
pub(crate) async fn keep(pool: &PgPool, analyst: Option<&str>) -> Result<Vec<String>> {
    let mut tx = pool.begin().await?;
    let pending: bool =
        sqlx::query_scalar("SELECT to_regclass('outreach.upgrade_readers') IS NOT NULL")
            .fetch_one(&mut *tx)
            .await?;
    if !pending {
        return Ok(Vec::new());
    }
    let readers: Vec<String> = sqlx::query_scalar(
        "SELECT u.role_name::text FROM outreach.upgrade_readers u
         JOIN pg_catalog.pg_roles r ON r.rolname = u.role_name ORDER BY 1",
    )
    .fetch_all(&mut *tx)
    .await?;
    if let Some(analyst) = analyst {
        for login in &readers {
            // Names come from pg_roles: quote them as identifiers.
            let sql = format!("GRANT \"{analyst}\" TO \"{}\"", login.replace('"', "\"\""));
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await?;
        }
    }
    let granted: Vec<String> = sqlx::query_scalar(
        "INSERT INTO outreach.analyst_scope (role_name, institution_id)
         SELECT u.role_name, '*' FROM outreach.upgrade_readers u
         WHERE EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname = u.role_name)
           AND NOT EXISTS (SELECT FROM outreach.analyst_scope s WHERE s.role_name = u.role_name)
         RETURNING role_name::text",
    )
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query("DROP TABLE outreach.upgrade_readers")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let mut granted = granted;
    granted.sort();
    Ok(granted)
}
