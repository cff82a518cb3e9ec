//! Settings in layers: built-in defaults, then an optional TOML file
//! (`--config`), then environment variables (`OUTREACH__KAFKA__BROKERS`
//! overrides `kafka.brokers`). Each stage owns its section's type; only this
//! module touches the `config` crate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The built-in defaults: a local broker and database.
pub const DEFAULTS: &str = r#"
[kafka]
brokers = "localhost:9092"
group_id = "outreach"

[database]
url = "postgres://postgres@localhost:5432/postgres"
"#;

#[derive(Debug, Clone, Deserialize, Serialize)]
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
    /// The `--config` file these settings were read from, for the
    /// processes `bench` starts.
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
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

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegionSettings {
    /// A CSV (`region_code,name,level,parent_code`) of regions to add to the
    /// shipped table.
    pub extra_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
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

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Built in: [`DEFAULTS`] or the field's serde default.
    Default,
    /// The `--config` file.
    File(PathBuf),
    /// This environment variable.
    Environment(String),
}

/// The origin of every value the sources set, by key path
/// (`["kafka", "brokers"]`); a key not listed has its built-in default.
#[derive(Debug, Clone, Default)]
pub struct Origins(BTreeMap<Vec<String>, Origin>);

impl Origins {
    pub fn of(&self, path: &[String]) -> &Origin {
        self.0.get(path).unwrap_or(&Origin::Default)
    }

    /// Walks the merged `config` tree: each leaf value knows its source.
    fn collect(&mut self, path: &mut Vec<String>, value: &config::Value, file: Option<&Path>) {
        if let config::ValueKind::Table(table) = &value.kind {
            for (k, v) in table {
                path.push(k.clone());
                self.collect(path, v, file);
                path.pop();
            }
            return;
        }
        let origin = match (value.origin(), file) {
            (None, _) => Origin::Default,
            (Some("the environment"), _) => Origin::Environment(env_var(path)),
            (Some(_), Some(file)) => Origin::File(file.to_owned()),
            (Some(other), None) => Origin::File(other.into()),
        };
        self.0.insert(path.clone(), origin);
    }
}

/// The variable that sets `path`, as it is spelled in this environment
/// (the `config` crate matches names in any case).
fn env_var(path: &[String]) -> String {
    let name = format!("OUTREACH__{}", path.join("__").to_uppercase());
    std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .find(|k| k.eq_ignore_ascii_case(&name))
        .unwrap_or(name)
}

impl Settings {
    /// Reads defaults, the file if any, then the environment, and checks
    /// what types alone cannot: every error names the key.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        Self::load_with_origins(file).map(|(s, _)| s)
    }

    /// [`Settings::load`], and where each value came from.
    pub fn load_with_origins(file: Option<&Path>) -> anyhow::Result<(Settings, Origins)> {
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
        let c = b.build().context("reading settings")?;
        let mut origins = Origins::default();
        origins.collect(&mut Vec::new(), &c.cache, file);
        let mut s: Settings = c
            .try_deserialize()
            .map_err(|e| anyhow::anyhow!("invalid setting: {e}"))?;
        s.file = file.map(Path::to_owned);
        s.kafka
            .load_secret_files()
            .map_err(|e| anyhow::anyhow!("invalid setting {e}"))?;
        s.check()?;
        Ok((s, origins))
    }

    /// Every check, in the order they run: only the first invalid
    /// setting is reported.
    fn check(&self) -> anyhow::Result<()> {
        self.check_topics()?;
        self.check_sizes()?;
        self.check_roles()?;
        self.database.backend().map_err(|e| match e {
            sink::Error::Secret(e) => anyhow::anyhow!("invalid setting {e}"),
            e => anyhow::anyhow!("invalid setting database.url: {e}"),
        })?;
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

    /// The broker, the group and the three topics are named, and missions
    /// and activities have topics of their own.
    fn check_topics(&self) -> anyhow::Result<()> {
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
        Ok(())
    }

    /// Sizes, capacities and timeouts where 0 would mean nothing works.
    fn check_sizes(&self) -> anyhow::Result<()> {
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
            (
                "kafka.delivery_timeout_ms",
                self.kafka.delivery_timeout_ms as u64,
            ),
        ];
        for (key, v) in positive {
            if v == 0 {
                bail!("invalid setting {key}: expected a number greater than 0");
            }
        }
        Ok(())
    }

    /// The writer and analyst roles: valid names, both or neither, distinct.
    fn check_roles(&self) -> anyhow::Result<()> {
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
        Ok(())
    }

    /// What to fix about how secrets are kept (private keys that other
    /// users can read), one line each: logged at start, never fatal.
    pub fn secret_warnings(&self) -> Vec<String> {
        let mut warnings = self.database.secret_warnings();
        warnings.extend(
            self.kafka
                .key_files()
                .iter()
                .filter_map(|(path, setting)| sink::key_file_warning(path, setting)),
        );
        warnings
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
