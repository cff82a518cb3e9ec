//! `outreach check-config`'s output: the settings in effect as a TOML file
//! a user can keep, each value with a comment saying where it came from
//! (default, file, environment variable), secrets masked. Loading that file
//! with `--config` gives the same settings again (secrets aside), which
//! `tests/cli.rs` checks.
//!
//! The values come from the settings' `Serialize` impls, which mask secrets
//! themselves (`sink::Settings::url`, `ingest::KafkaSettings::options`), so
//! nothing here can forget to. The text is written by hand from the
//! serialized tree: the settings hold only strings, integers, booleans and
//! tables of strings, and the `toml` crate's writer would be one more crate.

use std::fmt::Write as _;

use crate::settings::{Origin, Origins, Settings};

const HEADER: &str = "\
# outreach settings in effect, written by `outreach check-config`.
# Each value says where it came from: default, file, or environment variable.
# Load this file with `outreach --config FILE`; environment variables
# (OUTREACH__SECTION__KEY) still override it. Secrets are shown as ***:
# read them from files (database.password_file, [kafka.secret_files]) or
# put them back here and keep the file private.
";

const SECTIONS: [&str; 6] = ["kafka", "database", "ingest", "regions", "http", "log"];

/// The settings as a TOML document with a provenance comment per value.
pub fn render(settings: &Settings, origins: &Origins) -> anyhow::Result<String> {
    let tree = toml::Table::try_from(settings)?;
    let mut out = HEADER.to_owned();
    // Sections in the order of `Settings` and outreach.example.toml (the
    // table sorts its keys), any other after them; keys sorted within.
    let mut sections: Vec<(&String, &toml::Value)> = tree.iter().collect();
    sections.sort_by_key(|(name, _)| {
        SECTIONS
            .iter()
            .position(|s| s == name)
            .unwrap_or(SECTIONS.len())
    });
    for (section, value) in sections {
        let toml::Value::Table(table) = value else {
            anyhow::bail!("setting {section} is not a section");
        };
        table_text(&mut out, &mut vec![section.clone()], table, origins);
    }
    Ok(out)
}

/// One `[section]`: its values with comments aligned, then its sub-tables.
fn table_text(out: &mut String, path: &mut Vec<String>, table: &toml::Table, origins: &Origins) {
    let header: Vec<String> = path.iter().map(|k| key(k)).collect();
    let _ = writeln!(out, "\n[{}]", header.join("."));
    let mut lines = Vec::new();
    for (k, v) in table {
        if v.is_table() {
            continue;
        }
        path.push(k.clone());
        let text = value(v);
        let mut comment = match origins.of(path) {
            Origin::Default => "default".to_owned(),
            Origin::File(f) => format!("from file {}", f.display()),
            Origin::Environment(var) => format!("from environment {var}"),
        };
        if *path == ["log", "level"] && std::env::var_os("RUST_LOG").is_some() {
            comment.push_str("; RUST_LOG is set and wins");
        }
        path.pop();
        if text.contains("***") {
            comment.push_str(" (secret masked)");
        }
        lines.push((format!("{} = {text}", key(k)), comment));
    }
    if lines.is_empty() && !table.values().any(toml::Value::is_table) {
        out.push_str("# nothing set (every key here is optional: see outreach.example.toml)\n");
    }
    let width = lines
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    for (line, comment) in lines {
        let pad = width - line.chars().count();
        let _ = writeln!(out, "{line}{:pad$}  # {comment}", "");
    }
    for (k, v) in table {
        if let toml::Value::Table(sub) = v {
            path.push(k.clone());
            table_text(out, path, sub, origins);
            path.pop();
        }
    }
}

/// A key, bare when TOML allows it, else quoted (`"sasl.password"`).
fn key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { k.to_owned() } else { string(k) }
}

/// A value on one line (arrays and tables inline).
fn value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => string(s),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) if f.is_nan() => "nan".into(),
        toml::Value::Float(f) if f.is_infinite() => (if *f > 0.0 { "inf" } else { "-inf" }).into(),
        toml::Value::Float(f) => format!("{f:?}"),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(value).collect();
            format!("[{}]", items.join(", "))
        }
        toml::Value::Table(t) => {
            let items: Vec<String> = t
                .iter()
                .map(|(k, v)| format!("{} = {}", key(k), value(v)))
                .collect();
            format!("{{ {} }}", items.join(", "))
        }
    }
}

/// A TOML basic string: quotes, backslashes and control characters escaped.
fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_keys_survive_a_toml_parser() {
        let nasty = "a \"quoted\" \\ back\tslash\nnew line \u{7f} \u{1} é 中";
        for s in [nasty, "", "plain"] {
            let doc = format!("{} = {}\n", key(s), string(s));
            let parsed: toml::Table = toml::from_str(&doc).unwrap_or_else(|e| panic!("{doc}: {e}"));
            assert_eq!(parsed[s].as_str(), Some(s), "{doc}");
        }
        assert_eq!(key("batch_max_messages"), "batch_max_messages");
        assert_eq!(key("sasl.password"), "\"sasl.password\"");
    }

    #[test]
    fn the_defaults_render_as_a_file_that_loads_back() {
        let (settings, origins) = Settings::load_with_origins(None).unwrap();
        let text = render(&settings, &origins).unwrap();
        let parsed: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(parsed, toml::Table::try_from(&settings).unwrap(), "{text}");
        assert!(text.contains("[kafka.options]"), "{text}");
        assert!(text.contains("\n[regions]\n# nothing set ("), "{text}");
    }
}
