//! `grant-analyst` and `revoke-analyst`: who sees which institution's rows.
//! Analyst logins see no institution's rows of `daily_metrics`, `missions`
//! and the quarantine until granted (migration 0005); these commands are
//! the one line that grants or takes it back.

use sink::roles::Scope;

use crate::settings::Settings;

/// Makes `login` an analyst seeing `scope` (added to what it saw).
pub async fn grant(settings: &Settings, login: &str, scope: &Scope) -> anyhow::Result<()> {
    let sink = connect(settings).await?;
    let now = sink.grant_analyst(login, scope).await;
    sink.close().await;
    println!("{login} {}", describe(&now?));
    Ok(())
}

/// Takes `institutions` (or everything) from `login`.
pub async fn revoke(
    settings: &Settings,
    login: &str,
    institutions: &[schemas::Id],
) -> anyhow::Result<()> {
    let sink = connect(settings).await?;
    let now = sink.revoke_analyst(login, institutions).await;
    sink.close().await;
    match now? {
        Scope::Institutions(ids) if ids.is_empty() && institutions.is_empty() => println!(
            "{login} is no longer an analyst (not in {})",
            settings.database.analyst_role
        ),
        now => println!("{login} {}", describe(&now)),
    }
    Ok(())
}

/// The database, migrated: a fresh database gets its roles and scope table
/// here, so granting is the first and only step.
async fn connect(settings: &Settings) -> anyhow::Result<sink::Sink> {
    let sink = crate::pipeline::connect(&settings.database).await?;
    sink.migrate().await?;
    Ok(sink)
}

/// What a login sees, as a sentence's end.
fn describe(scope: &Scope) -> String {
    const SHARED: &str = "and, like every analyst, the shared aggregates (regional_metrics, program_metrics and their views)";
    match scope {
        Scope::All => format!(
            "sees every institution's rows of daily_metrics and missions, the quarantine, {SHARED}"
        ),
        Scope::Institutions(ids) if ids.is_empty() => {
            format!("sees no institution's rows of daily_metrics and missions, {SHARED}")
        }
        Scope::Institutions(ids) => {
            let ids: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
            format!(
                "sees the rows of daily_metrics and missions of {}, {SHARED}",
                ids.join(", ")
            )
        }
    }
}

/// For clap: an institution identifier of the contract.
pub fn parse_institution(s: &str) -> Result<schemas::Id, String> {
    schemas::Id::parse(s)
        .ok_or_else(|| "an institution id is 1-64 characters from [a-z0-9._:-]".to_owned())
}
