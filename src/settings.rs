//! Settings in layers: built-in defaults, then an optional TOML file
//! (`--config`), then environment variables (`OUTREACH__KAFKA__BROKERS`
//! overrides `kafka.brokers`). Each stage owns its section's type; only this
//! module touches the `config` crate.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// The built-in defaults: a local broker and database.
pub const DEFAULTS: &str = r#"
[kafka]
brokers = "localhost:9092"
group_id = "outreach"

[database]
url = "postgres://postgres@localhost:5432/postgres"
"#;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub kafka: ingest::KafkaSettings,
    pub database: sink::Settings,
    #[serde(default)]
    pub ingest: ingest::IngestSettings,
    #[serde(default)]
    pub regions: RegionSettings,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub http: HttpSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Where `/metrics`, `/healthz` and `/readyz` listen during `run`;
    /// an empty string turns the endpoint off.
    #[serde(default = "default_http_address")]
    pub address: String,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            address: default_http_address(),
        }
    }
}

fn default_http_address() -> String {
    "127.0.0.1:9898".into()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionSettings {
    /// A CSV (`region_code,name,level,parent_code`) of regions to add to the
    /// shipped table.
    pub extra_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    #[serde(default = "default_level")]
    pub level: String,
    #[serde(default)]
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: default_level(),
            format: LogFormat::default(),
        }
    }
}

fn default_level() -> String {
    "info".into()
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

impl Settings {
    /// Reads defaults, the file if any, then the environment, and checks
    /// what types alone cannot: every error names the key.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        let mut b = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = file {
            if !path.exists() {
                bail!("config file {} does not exist", path.display());
            }
            b = b.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        let b = b.add_source(
            config::Environment::with_prefix("OUTREACH")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        );
        let s: Settings = b
            .build()
            .context("reading settings")?
            .try_deserialize()
            .map_err(|e| anyhow::anyhow!("invalid setting: {e}"))?;
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> anyhow::Result<()> {
        let nonempty = [
            ("kafka.brokers", &self.kafka.brokers),
            ("kafka.group_id", &self.kafka.group_id),
            ("kafka.missions_topic", &self.kafka.missions_topic),
            ("kafka.activities_topic", &self.kafka.activities_topic),
            ("kafka.deadletter_topic", &self.kafka.deadletter_topic),
        ];
        for (key, v) in nonempty {
            if v.trim().is_empty() {
                bail!("invalid setting {key}: expected a non-empty string");
            }
        }
        if self.kafka.missions_topic == self.kafka.activities_topic {
            bail!("invalid setting kafka.activities_topic: must differ from kafka.missions_topic");
        }
        let positive = [
            (
                "ingest.batch_max_messages",
                self.ingest.batch_max_messages as u64,
            ),
            ("ingest.batch_max_bytes", self.ingest.batch_max_bytes as u64),
            (
                "ingest.channel_capacity",
                self.ingest.channel_capacity as u64,
            ),
            (
                "ingest.max_message_bytes",
                self.ingest.max_message_bytes as u64,
            ),
            (
                "database.max_connections",
                self.database.max_connections as u64,
            ),
            (
                "kafka.session_timeout_ms",
                self.kafka.session_timeout_ms as u64,
            ),
        ];
        for (key, v) in positive {
            if v == 0 {
                bail!("invalid setting {key}: expected a number greater than 0");
            }
        }
        for (key, role) in [
            ("database.writer_role", &self.database.writer_role),
            ("database.analyst_role", &self.database.analyst_role),
        ] {
            if !role.is_empty() && !sink::roles::valid_role_name(role) {
                bail!(
                    "invalid setting {key}: expected a role name of lowercase letters, digits and _ (at most 63), or \"\" for no roles; found {role:?}"
                );
            }
        }
        if self.database.writer_role.is_empty() != self.database.analyst_role.is_empty() {
            bail!(
                "invalid setting database.analyst_role: set both database.writer_role and database.analyst_role, or both to \"\" for no roles"
            );
        }
        if !self.database.writer_role.is_empty()
            && self.database.writer_role == self.database.analyst_role
        {
            bail!("invalid setting database.analyst_role: must differ from database.writer_role");
        }
        self.database
            .backend()
            .map_err(|e| anyhow::anyhow!("invalid setting database.url: {e}"))?;
        if let Some(p) = &self.regions.extra_file
            && !p.exists()
        {
            bail!(
                "invalid setting regions.extra_file: {} does not exist",
                p.display()
            );
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level).map_err(|e| {
            anyhow::anyhow!(
                "invalid setting log.level: expected a level such as info or debug ({e})"
            )
        })?;
        Ok(())
    }

    /// The region table: shipped plus `regions.extra_file`.
    pub fn regions(&self) -> anyhow::Result<schemas::Regions> {
        let mut r = schemas::Regions::shipped();
        if let Some(p) = &self.regions.extra_file {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading regions.extra_file {}", p.display()))?;
            let n = r
                .add_csv(&text)
                .with_context(|| format!("in regions.extra_file {}", p.display()))?;
            tracing::info!(file = %p.display(), regions = n, "operator regions added");
        }
        Ok(r)
    }
}
