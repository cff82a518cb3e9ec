//! What the analyst-role tests share: logins made and dropped, connections
//! as a login, what a login sees, and a refusal checked as one.

use sqlx::{Connection, PgConnection};

use super::*;

/// `url` with its user replaced.
pub fn as_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}@{host}")
}

pub async fn login(db: &Db, name: &str) -> PgConnection {
    PgConnection::connect(&as_user(&db.url, name))
        .await
        .unwrap()
}

pub async fn denied(c: &mut PgConnection, sql: &str) {
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

/// What a connection sees of the institution-scoped tables: the
/// institutions of `daily_metrics` and of `missions`, and the quarantine's
/// row count.
pub async fn seen(c: &mut PgConnection) -> [String; 3] {
    let mut institutions = Vec::new();
    for table in ["daily_metrics", "missions"] {
        let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT institution_id FROM outreach.{table} ORDER BY 1"
        )))
        .fetch_all(&mut *c)
        .await
        .unwrap();
        institutions.push(ids.join(","));
    }
    let quarantined: i64 = sqlx::query_scalar("SELECT count(*) FROM outreach.quarantine")
        .fetch_one(&mut *c)
        .await
        .unwrap();
    let [daily, missions] = <[String; 2]>::try_from(institutions).unwrap();
    [daily, missions, quarantined.to_string()]
}

/// Runs `outreach ARGS` (grant-analyst, revoke-analyst) as the schema
/// owner; its standard output.
pub fn grant(broker: &Broker, db: &Db, args: &[&str]) -> String {
    let out = outreach_command(broker, db, "unused")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Login roles of this test, members of the managed roles; dropped at the end.
pub struct Logins {
    pub names: Vec<String>,
}

impl Logins {
    pub async fn create(admin: &str, members: &[(&str, &str)]) -> (Logins, Vec<String>) {
        let mut c = PgConnection::connect(admin).await.unwrap();
        let mut names = Vec::new();
        for (prefix, role) in members {
            let name = unique(prefix).to_lowercase();
            let member = if role.is_empty() {
                String::new()
            } else {
                format!(" IN ROLE {role}")
            };
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE ROLE {name} LOGIN{member}"
            )))
            .execute(&mut c)
            .await
            .unwrap();
            names.push(name);
        }
        (
            Logins {
                names: names.clone(),
            },
            names,
        )
    }

    pub async fn drop_all(self) {
        // Not the test's database, which may be gone already.
        let mut c = PgConnection::connect(&admin_url()).await.unwrap();
        for n in &self.names {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {n}")))
                .execute(&mut c)
                .await
                .unwrap();
        }
    }
}
