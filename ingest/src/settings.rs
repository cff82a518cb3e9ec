//! The ingest stage's settings (`kafka.*` and `ingest.*`), and how they
//! become a librdkafka client configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rdkafka::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use serde::{Deserialize, Serialize, Serializer};

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// `host:port[,host:port...]`
    pub brokers: String,
    pub group_id: String,
    #[serde(default = "topic_missions")]
    pub missions_topic: String,
    #[serde(default = "topic_activities")]
    pub activities_topic: String,
    #[serde(default = "topic_deadletter")]
    pub deadletter_topic: String,
    /// A member that stays silent this long is dropped from the group; a
    /// group join takes about half of it on some brokers.
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u32,
    /// How long a producer keeps trying to deliver a message (librdkafka's
    /// `message.timeout.ms`), and how long `publish` and `run
    /// --until-caught-up` wait for a broker to answer before giving up with
    /// exit code 1 (`run` without the flag keeps waiting).
    #[serde(default = "default_delivery_timeout_ms")]
    pub delivery_timeout_ms: u32,
    /// Extra librdkafka properties, passed through verbatim to both the
    /// consumer and the dead-letter producer: TLS (`security.protocol`,
    /// `ssl.ca.location`...) and SASL (`sasl.mechanism`, `sasl.username`,
    /// `sasl.password`...). Values whose key mentions a password or secret
    /// are never logged, nor serialized (`check-config`).
    #[serde(default, serialize_with = "masked_options")]
    pub options: BTreeMap<String, String>,
    /// librdkafka properties whose values are read from files, as Docker
    /// and Kubernetes mount secrets: `"sasl.password" =
    /// "/run/secrets/kafka-password"`. Read by [`Self::load_secret_files`]
    /// at start (one trailing line end dropped, `\n` or `\r\n`), then set like `options`.
    #[serde(default)]
    pub secret_files: BTreeMap<String, PathBuf>,
    /// What `secret_files` held: never shown, never serialized.
    #[serde(skip)]
    secrets: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSettings {
    /// A batch is sent to the database as soon as the database is idle, so
    /// batches grow with the backlog and stay small (fresh) when caught up.
    /// It is cut at this many messages...
    #[serde(default = "default_batch_max_messages")]
    pub batch_max_messages: usize,
    /// ...or at this many bytes of messages (key, value and headers as they
    /// came from the broker; decoded, a batch takes about twice as much)...
    #[serde(default = "default_batch_max_bytes")]
    pub batch_max_bytes: usize,
    /// ...or, while the database is busy, this long after its first message.
    #[serde(default = "default_batch_linger_ms")]
    pub batch_linger_ms: u64,
    /// Batches decoded ahead of the database: with the two limits above,
    /// bounds the memory a backlog can take.
    #[serde(default = "default_channel_capacity")]
    pub channel_capacity: usize,
    /// A larger message value is quarantined as `too_large`.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// `run --until-caught-up`: after reaching the end offsets seen at start,
    /// keep reading until no message arrived for this long (some brokers
    /// under-report the end offset).
    #[serde(default = "default_drain_idle_ms")]
    pub drain_idle_ms: u64,
}

fn topic_missions() -> String {
    schemas::MISSIONS_TOPIC.into()
}
fn topic_activities() -> String {
    schemas::ACTIVITIES_TOPIC.into()
}
fn topic_deadletter() -> String {
    schemas::DEADLETTER_TOPIC.into()
}
fn default_session_timeout_ms() -> u32 {
    10_000
}
fn default_delivery_timeout_ms() -> u32 {
    30_000
}
fn default_batch_max_messages() -> usize {
    20_000
}
fn default_batch_max_bytes() -> usize {
    4 << 20
}
fn default_batch_linger_ms() -> u64 {
    100
}
fn default_channel_capacity() -> usize {
    2
}
fn default_max_message_bytes() -> usize {
    schemas::decode::DEFAULT_MAX_MESSAGE_BYTES
}
fn default_drain_idle_ms() -> u64 {
    1_500
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            batch_max_messages: default_batch_max_messages(),
            batch_max_bytes: default_batch_max_bytes(),
            batch_linger_ms: default_batch_linger_ms(),
            channel_capacity: default_channel_capacity(),
            max_message_bytes: default_max_message_bytes(),
            drain_idle_ms: default_drain_idle_ms(),
        }
    }
}

impl KafkaSettings {
    pub fn new(brokers: impl Into<String>, group_id: impl Into<String>) -> Self {
        KafkaSettings {
            brokers: brokers.into(),
            group_id: group_id.into(),
            missions_topic: topic_missions(),
            activities_topic: topic_activities(),
            deadletter_topic: topic_deadletter(),
            session_timeout_ms: default_session_timeout_ms(),
            delivery_timeout_ms: default_delivery_timeout_ms(),
            options: BTreeMap::new(),
            secret_files: BTreeMap::new(),
            secrets: BTreeMap::new(),
        }
    }

    /// No TLS, SASL or other extra property: for a broker of our own (the
    /// demo's embedded one).
    pub fn clear_security(&mut self) {
        self.options.clear();
        self.secret_files.clear();
        self.secrets.clear();
    }

    /// Reads `secret_files`; the error names the setting and the file.
    pub fn load_secret_files(&mut self) -> Result<(), String> {
        for (key, path) in &self.secret_files {
            let setting = format!("kafka.secret_files.\"{key}\"");
            let mut text = std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "{setting} = {}: cannot read it ({e}); check the path and that this user may read it",
                    path.display()
                )
            })?;
            if text.ends_with('\n') {
                text.pop();
                if text.ends_with('\r') {
                    text.pop();
                }
            }
            if text.is_empty() {
                return Err(format!("{setting} = {}: the file is empty", path.display()));
            }
            self.secrets.insert(key.clone(), text);
        }
        Ok(())
    }

    /// Private key files named in `options` (`ssl.key.location`), each
    /// with the setting that names it, for the permission check.
    pub fn key_files(&self) -> Vec<(PathBuf, String)> {
        self.options
            .iter()
            .filter(|(k, _)| k.as_str() == "ssl.key.location")
            .map(|(k, v)| (PathBuf::from(v), format!("kafka.options.\"{k}\"")))
            .collect()
    }

    /// A librdkafka property as set, from `options` or `secret_files`.
    pub(crate) fn option(&self, key: &str) -> Option<&str> {
        self.secrets
            .get(key)
            .or_else(|| self.options.get(key))
            .map(String::as_str)
    }

    pub fn topics(&self) -> [&str; 2] {
        [&self.missions_topic, &self.activities_topic]
    }

    /// The topics consumed, each with the setting that names it.
    pub fn subscribed(&self) -> Vec<crate::probe::Topic> {
        [
            (&self.missions_topic, "kafka.missions_topic"),
            (&self.activities_topic, "kafka.activities_topic"),
        ]
        .into_iter()
        .map(|(name, setting)| crate::probe::Topic {
            name: name.clone(),
            setting,
        })
        .collect()
    }

    /// The consumer's configuration. Offsets are never auto-committed: the
    /// database holds the truth, Kafka's committed offsets are only a hint.
    pub fn consumer_config(&self, max_message_bytes: usize) -> ClientConfig {
        let mut c = self.common();
        c.set("group.id", &self.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", self.session_timeout_ms.to_string())
            .set(
                "heartbeat.interval.ms",
                (self.session_timeout_ms / 3).max(100).to_string(),
            )
            .set("enable.partition.eof", "false")
            // A subscribed topic created while `run` waits for it is only
            // joined at the next refresh of the subscription's metadata:
            // every 10 s, not librdkafka's 5 min. Two small requests.
            .set("topic.metadata.refresh.interval.ms", "10000")
            // The prefetch: enough to keep a batch filling (a fetch every
            // few milliseconds from a nearby broker), small for the memory
            // bound. Fetch sizes count compressed bytes: a 4 MiB fetch of
            // lz4 batches held 20 MiB of messages once decompressed, plus an
            // op of a few hundred bytes per message (a heap profile,
            // docs/performance.md). The queue is capped at 1 MiB of
            // messages, overshot by at most one fetch.
            .set("fetch.max.bytes", "1048576")
            .set("max.partition.fetch.bytes", "524288")
            .set("fetch.queue.backoff.ms", "10")
            .set("queued.max.messages.kbytes", "1024")
            // A message over the limit must still be fetched whole to be quarantined.
            .set(
                "receive.message.max.bytes",
                (max_message_bytes.max(1 << 20) * 2 + 100_000_000).to_string(),
            );
        self.apply_options(&mut c);
        c
    }

    /// The producers' configuration (dead letters, `publish`): idempotent,
    /// so their retries never duplicate.
    pub fn producer_config(&self) -> ClientConfig {
        let mut c = self.common();
        c.set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("message.timeout.ms", self.delivery_timeout_ms.to_string());
        self.apply_options(&mut c);
        c
    }

    fn common(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", "outreach");
        // librdkafka reports a connection its broker closed while it was
        // being set up at info level: `logs` needs those to say a broker
        // is out of reach, whatever level the log filter shows.
        if (c.log_level as i32) < (RDKafkaLogLevel::Info as i32) {
            c.set_log_level(RDKafkaLogLevel::Info);
        }
        c
    }

    fn apply_options(&self, c: &mut ClientConfig) {
        for (k, v) in self.options.iter().chain(&self.secrets) {
            c.set(k, v);
        }
    }
}

/// True for settings whose value must never be shown.
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "key.pem",
        "private",
        "oauthbearer.config",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// The options with every secret value replaced by `***`.
fn masked(options: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    options
        .iter()
        .map(|(k, v)| (k.as_str(), if is_secret(k) { "***" } else { v.as_str() }))
        .collect()
}

fn masked_options<S: Serializer>(
    options: &BTreeMap<String, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    masked(options).serialize(s)
}

impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let options = masked(&self.options);
        f.debug_struct("KafkaSettings")
            .field("brokers", &self.brokers)
            .field("group_id", &self.group_id)
            .field("missions_topic", &self.missions_topic)
            .field("activities_topic", &self.activities_topic)
            .field("deadletter_topic", &self.deadletter_topic)
            .field("session_timeout_ms", &self.session_timeout_ms)
            .field("delivery_timeout_ms", &self.delivery_timeout_ms)
            .field("options", &options)
            .field("secret_files", &self.secret_files)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_and_sasl_options_reach_the_client_and_secrets_stay_hidden() {
        let mut k = KafkaSettings::new("b:9093", "g");
        k.options
            .insert("security.protocol".into(), "SASL_SSL".into());
        k.options
            .insert("sasl.mechanism".into(), "SCRAM-SHA-512".into());
        k.options.insert("sasl.password".into(), "hunter2".into());
        let c = k.consumer_config(1 << 20);
        assert_eq!(c.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(c.get("sasl.password"), Some("hunter2"));
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        assert_eq!(
            k.producer_config().get("sasl.mechanism"),
            Some("SCRAM-SHA-512")
        );
        let shown = format!("{k:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("SCRAM-SHA-512"),
            "{shown}"
        );
        let serialized = serde_json::to_string(&k).unwrap();
        assert!(
            !serialized.contains("hunter2") && serialized.contains(r#""sasl.password":"***""#),
            "{serialized}"
        );
    }
}
