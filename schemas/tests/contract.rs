//! `docs/contract.md` against the code, so that neither drifts: each table
//! and list of the contract that this crate keeps a catalogue of is read
//! from the document and compared with that catalogue, with what the
//! validator does, and with the JSON Schema files of `schemas/json/`. A
//! metric, field, dimension, specialty or topic added on one side only
//! fails here. (The analyst tables are checked against migrated databases
//! in the root package's `tests/contract.rs`.)

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use schemas::event::{ACTIVITY, COMPLETED, DISPATCHED};
use schemas::{
    Activity, Completion, Decoder, Dispatch, ErrorCode, Header, Id, Level, Message, Metric, Period,
    Regions, Specialty,
};
use serde_json::Value;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn contract() -> String {
    read("docs/contract.md")
}

fn json(path: &str) -> Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The text under `heading` (a whole line, `## Types`), up to the next
/// heading of the same or a higher level.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let level = heading.bytes().take_while(|b| *b == b'#').count();
    let start = doc
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("docs/contract.md has no heading {heading:?}"))
        + heading.len()
        + 2;
    let rest = &doc[start..];
    let mut at = 0;
    for line in rest.split_inclusive('\n') {
        let hashes = line.bytes().take_while(|b| *b == b'#').count();
        if hashes > 0 && hashes <= level && line[hashes..].starts_with(' ') {
            return &rest[..at];
        }
        at += line.len();
    }
    rest
}

/// The paragraph of `text` that starts with `start`.
fn paragraph<'a>(text: &'a str, start: &str) -> &'a str {
    let at = text
        .find(start)
        .unwrap_or_else(|| panic!("docs/contract.md has no paragraph starting {start:?}"));
    let rest = &text[at..];
    &rest[..rest.find("\n\n").unwrap_or(rest.len())]
}

/// A markdown table: its header cells and its rows' cells, trimmed.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// The one table of `text`.
    fn only(text: &str) -> Table {
        let mut tables = tables(text);
        assert_eq!(tables.len(), 1, "expected one table in:\n{text}");
        tables.remove(0)
    }

    /// The cells of the column whose header is `name`.
    fn column(&self, name: &str) -> Vec<&str> {
        let i = self
            .header
            .iter()
            .position(|h| h.starts_with(name))
            .unwrap_or_else(|| panic!("no column {name:?} in {:?}", self.header));
        self.rows.iter().map(|r| r[i].as_str()).collect()
    }
}

fn tables(text: &str) -> Vec<Table> {
    let mut out = Vec::new();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for line in text.lines().chain([""]) {
        if let Some(inner) = line.trim().strip_prefix('|') {
            let cells: Vec<String> = inner
                .strip_suffix('|')
                .unwrap_or(inner)
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect();
            let separator = cells
                .iter()
                .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':')));
            if !separator {
                rows.push(cells);
            }
        } else if !rows.is_empty() {
            let header = rows.remove(0);
            out.push(Table {
                header,
                rows: std::mem::take(&mut rows),
            });
        }
    }
    out
}

/// The `code spans` of a piece of markdown, in order.
fn code(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// A cell that is exactly one code span: its content.
fn one_code(cell: &str) -> &str {
    match code(cell)[..] {
        [c] if cell.starts_with('`') && cell.ends_with('`') => c,
        _ => panic!("expected a single `code` cell, found {cell:?}"),
    }
}

/// Fails naming what only one side has and what differs.
fn same<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
    what: &str,
    doc: &BTreeMap<K, V>,
    code: &BTreeMap<K, V>,
) {
    let mut wrong = Vec::new();
    for (k, v) in doc {
        match code.get(k) {
            None => wrong.push(format!(
                "{k:?} is in docs/contract.md only: add it to the code"
            )),
            Some(c) if c != v => wrong.push(format!(
                "{k:?} differs: docs/contract.md says {v:?}, the code {c:?}"
            )),
            Some(_) => {}
        }
    }
    for k in code.keys().filter(|k| !doc.contains_key(k)) {
        wrong.push(format!(
            "{k:?} is in the code only: add it to docs/contract.md"
        ));
    }
    assert!(wrong.is_empty(), "{what}:\n{}", wrong.join("\n"));
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, found {v}"))
        .iter()
        .map(|s| s.as_str().expect("strings").to_owned())
        .collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("expected an object, found {v}"))
        .keys()
        .cloned()
        .collect()
}

fn set<'a>(items: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    items.into_iter().map(str::to_owned).collect()
}

fn decoder() -> Decoder {
    Decoder::new(
        Arc::new(Regions::shipped()),
        schemas::decode::DEFAULT_MAX_MESSAGE_BYTES,
    )
}

fn structured(event: &Value) -> Result<schemas::Event, schemas::Rejection> {
    let value = serde_json::to_vec(event).unwrap();
    decoder().decode(&Message {
        headers: &[],
        value: Some(&value),
        timestamp_ms: None,
    })
}

/// The contract's three types, each with its fields in the code, its JSON
/// Schema file and its example.
fn types() -> [(&'static str, &'static [&'static str], &'static str); 3] {
    [
        (DISPATCHED, &Dispatch::FIELDS, "mission-dispatched"),
        (COMPLETED, &Completion::FIELDS, "mission-completed"),
        (ACTIVITY, &Activity::FIELDS, "activity-recorded"),
    ]
}

fn example(name: &str) -> Value {
    json(&format!("docs/contract/examples/{name}.json"))
}

fn schema(name: &str) -> Value {
    json(&format!("schemas/json/{name}.v1.schema.json"))
}

/// A field or attribute whose rule starts with "optional" may be left out.
fn optional(rule: &str) -> bool {
    rule.starts_with("optional")
}

#[test]
fn the_topics_are_the_defaults_of_the_code() {
    let doc = contract();
    let t = Table::only(section(&doc, "## Transport"));
    let topics: Vec<&str> = t.column("topic").into_iter().map(one_code).collect();
    assert_eq!(
        topics,
        [
            schemas::MISSIONS_TOPIC,
            schemas::ACTIVITIES_TOPIC,
            schemas::DEADLETTER_TOPIC
        ]
    );
}

#[test]
fn the_envelope_attributes_match_the_schema_and_the_validator() {
    let doc = contract();
    let envelope = section(&doc, "## Envelope: CloudEvents 1.0");
    let t = Table::only(envelope);
    let rows: Vec<(&str, &str)> = t
        .column("attribute")
        .into_iter()
        .map(one_code)
        .zip(t.column("rule"))
        .collect();
    let all = set(rows.iter().map(|(a, _)| *a));
    let required = set(rows.iter().filter(|(_, r)| !optional(r)).map(|(a, _)| *a));

    let s = json("schemas/json/cloudevent.schema.json");
    assert_eq!(keys(&s["properties"]), all, "cloudevent.schema.json");
    assert_eq!(strings(&s["required"]), required, "cloudevent.schema.json");
    let specversion = rows.iter().find(|(a, _)| *a == "specversion").unwrap().1;
    assert_eq!(one_code(specversion), "\"1.0\"");
    assert_eq!(s["properties"]["specversion"]["const"], "1.0");

    // Structured mode: every required attribute is required, every
    // optional one may be left out.
    let event = example("activity-recorded");
    structured(&event).expect("the example is valid");
    for a in &all {
        let mut e = event.clone();
        e.as_object_mut().unwrap().remove(a.as_str());
        let r = structured(&e);
        assert_eq!(r.is_ok(), !required.contains(a), "without {a}: {r:?}");
    }

    // Binary mode: the headers the contract names carry the required
    // attributes, `data` is the value.
    let headers = code(paragraph(envelope, "- binary mode:"));
    let named: BTreeSet<String> = headers
        .iter()
        .filter_map(|h| h.strip_prefix("ce_"))
        .map(str::to_owned)
        .collect();
    let mut attributes = required.clone();
    attributes.remove("data");
    assert_eq!(named, attributes, "binary-mode headers");
    let value = serde_json::to_vec(&event["data"]).unwrap();
    let texts: Vec<(String, String)> = named
        .iter()
        .map(|a| (format!("ce_{a}"), event[a].as_str().unwrap().to_owned()))
        .collect();
    for left_out in std::iter::once(None).chain(named.iter().map(Some)) {
        let mut hs: Vec<Header<'_>> = texts
            .iter()
            .filter(|(k, _)| Some(&k[3..]) != left_out.map(String::as_str))
            .map(|(k, v)| Header {
                key: k,
                value: Some(v.as_bytes()),
            })
            .collect();
        hs.push(Header {
            key: "content-type",
            value: Some(b"application/json"),
        });
        let r = decoder().decode(&Message {
            headers: &hs,
            value: Some(&value),
            timestamp_ms: None,
        });
        assert_eq!(r.is_ok(), left_out.is_none(), "without {left_out:?}: {r:?}");
    }
}

#[test]
fn the_event_types_and_their_fields_match_the_code_the_schemas_and_the_validator() {
    let doc = contract();
    let section_types = section(&doc, "## Types");
    let headings: Vec<&str> = section_types
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(one_code)
        .collect();
    let code_types: Vec<&str> = types().iter().map(|(t, _, _)| *t).collect();
    assert_eq!(headings, code_types, "the types of the contract");
    let envelope = json("schemas/json/cloudevent.schema.json");
    assert_eq!(
        strings(&envelope["properties"]["type"]["enum"]),
        set(code_types.iter().copied()),
        "cloudevent.schema.json"
    );

    for (type_name, fields, name) in types() {
        let t = Table::only(section(section_types, &format!("### `{type_name}`")));
        let doc_fields: Vec<&str> = t.column("field").into_iter().map(one_code).collect();
        let kinds = t.column("type");
        let rules = t.column("rule");
        let required = set(doc_fields
            .iter()
            .zip(&rules)
            .filter(|(_, r)| !optional(r))
            .map(|(f, _)| *f));
        assert_eq!(
            set(doc_fields.iter().copied()),
            set(fields.iter().copied()),
            "{type_name}: the contract's fields and the validator's"
        );

        let s = schema(name);
        assert_eq!(
            keys(&s["properties"]),
            set(doc_fields.iter().copied()),
            "{name}.v1.schema.json: properties"
        );
        assert_eq!(
            strings(&s["required"]),
            required,
            "{name}.v1.schema.json: required"
        );
        for (field, kind) in doc_fields.iter().zip(&kinds) {
            let p = &s["properties"][field];
            let (ty, rest) = kind.split_once(' ').unwrap_or((kind, ""));
            let ok = match ty {
                "id" => p["$ref"] == "#/$defs/identifier",
                "date" => p["$ref"] == "#/$defs/date",
                "string" => p["type"] == "string",
                "object" => p["type"] == "object",
                "array" => p["type"] == "array" && rest == "of strings",
                "integer" | "number" => {
                    p["type"] == ty
                        && match rest.strip_prefix("≥ ") {
                            Some(min) => p["minimum"].as_i64() == min.parse().ok(),
                            None => rest.is_empty(),
                        }
                }
                _ => panic!("{type_name}.{field}: unknown type {kind:?} in the contract"),
            };
            assert!(ok, "{name}.v1.schema.json: {field} is not {kind:?}: {p}");
        }

        // The example holds every field; the validator takes it whole, with
        // each optional field left out, and refuses it without a required
        // one or with one the contract does not name.
        let event = example(name);
        assert_eq!(
            keys(&event["data"]),
            set(doc_fields.iter().copied()),
            "docs/contract/examples/{name}.json shows every field"
        );
        assert_eq!(event["type"], type_name);
        structured(&event).unwrap_or_else(|r| panic!("{name}: {r}"));
        for field in &doc_fields {
            let mut e = event.clone();
            e["data"].as_object_mut().unwrap().remove(*field);
            match structured(&e) {
                Ok(_) => assert!(!required.contains(*field), "{type_name} without {field}"),
                Err(r) => {
                    assert!(
                        required.contains(*field),
                        "{type_name} without {field}: {r}"
                    );
                    assert_eq!(r.code, ErrorCode::MissingField, "{r}");
                }
            }
        }
        let mut e = event.clone();
        e["data"]["not_in_the_contract"] = Value::from(1);
        assert_eq!(
            structured(&e).map(|_| ()).unwrap_err().code,
            ErrorCode::UnknownField
        );
    }
}

/// A metric's allowed `dims`: key → its values (`None`: the specialty codes).
type Dims = BTreeMap<String, Option<BTreeSet<String>>>;

fn code_dims(m: Metric) -> Dims {
    m.dims()
        .iter()
        .map(|(k, values)| (k.to_string(), values.map(|v| set(v.iter().copied()))))
        .collect()
}

/// `` `specialty`; `setting`: clinic, ward `` (anything after " — " is prose).
fn doc_dims(cell: &str) -> Dims {
    let cell = cell.split(" — ").next().unwrap();
    if cell == "none" {
        return Dims::new();
    }
    cell.split(';')
        .map(|part| {
            let part = part.trim();
            let key = one_code(&part[..part[1..].find('`').unwrap() + 2]);
            let rest = part[key.len() + 2..].trim();
            let values = rest
                .strip_prefix(':')
                .map(|v| set(v.split(',').map(str::trim)));
            assert!(
                values.is_some() || rest.is_empty(),
                "unreadable dims {part:?}"
            );
            (key.to_owned(), values)
        })
        .collect()
}

#[test]
fn the_metric_catalogue_matches_the_code_and_the_schema() {
    let doc = contract();
    let catalogue = section(&doc, "## Metric catalogue (v1)");
    let t = Table::only(catalogue);
    let documented: BTreeMap<String, (String, Dims)> = t
        .column("metric")
        .into_iter()
        .zip(t.column("unit"))
        .zip(t.column("allowed"))
        .map(|((m, unit), dims)| (one_code(m).to_owned(), (unit.to_owned(), doc_dims(dims))))
        .collect();
    assert_eq!(documented.len(), t.rows.len(), "a metric listed twice");
    let (activity, mission): (Vec<Metric>, Vec<Metric>) = Metric::ALL
        .into_iter()
        .partition(|m| Metric::parse_activity(m.as_str()).is_some());
    let in_code: BTreeMap<String, (String, Dims)> = activity
        .iter()
        .map(|m| (m.as_str().to_owned(), (m.unit().to_owned(), code_dims(*m))))
        .collect();
    same("activity metrics (unit, dims)", &documented, &in_code);

    // "Mission events yield four more metrics: `name` (unit, ...), ...".
    let p = paragraph(catalogue, "Mission events yield");
    let parts: Vec<&str> = p.split('`').collect();
    let derived: BTreeMap<String, String> = parts
        .iter()
        .skip(1)
        .step_by(2)
        .zip(parts.iter().skip(2).step_by(2))
        .filter_map(|(name, after)| {
            let unit = after.strip_prefix(" (")?.split([',', ':', ')']).next()?;
            Some((name.to_string(), unit.to_owned()))
        })
        .collect();
    let in_code: BTreeMap<String, String> = mission
        .iter()
        .map(|m| (m.as_str().to_owned(), m.unit().to_owned()))
        .collect();
    same("mission metrics (unit)", &derived, &in_code);
    assert!(mission.iter().all(|m| m.dims().is_empty()));

    // "integer for every metric except those whose unit is CNY (two decimals)".
    for m in Metric::ALL {
        assert_eq!(m.allows_decimals(), m.unit() == "CNY", "{}", m.as_str());
    }

    let s = schema("activity-recorded");
    assert_eq!(
        strings(&s["properties"]["metric"]["enum"]),
        set(documented.keys().map(String::as_str)),
        "activity-recorded.v1.schema.json: metric"
    );
    let mut schema_dims = BTreeMap::new();
    let mut decimals = BTreeSet::new();
    for rule in s["allOf"].as_array().unwrap() {
        let metric = rule["if"]["properties"]["metric"]["const"]
            .as_str()
            .unwrap()
            .to_owned();
        let then = &rule["then"]["properties"];
        if then["value"]["multipleOf"] == 0.01 {
            decimals.insert(metric.clone());
        }
        if let Some(props) = then["dims"]["properties"].as_object() {
            assert_eq!(then["dims"]["additionalProperties"], false, "{metric}");
            let dims: Dims = props
                .iter()
                .map(|(k, v)| {
                    let values = match &v["$ref"] {
                        Value::String(r) if r == "#/$defs/specialty" => None,
                        _ => Some(strings(&v["enum"])),
                    };
                    (k.clone(), values)
                })
                .collect();
            assert!(schema_dims.insert(metric, dims).is_none());
        }
    }
    let documented_dims: BTreeMap<String, Dims> = documented
        .iter()
        .map(|(m, (_, d))| (m.clone(), d.clone()))
        .collect();
    same(
        "activity-recorded.v1.schema.json: dims per metric (the schema as \"code\")",
        &documented_dims,
        &schema_dims,
    );
    let cny = set(documented
        .iter()
        .filter(|(_, (unit, _))| unit == "CNY")
        .map(|(m, _)| m.as_str()));
    assert_eq!(decimals, cny, "activity-recorded.v1.schema.json: decimals");
}

#[test]
fn the_specialty_codes_match_the_code_and_the_schemas() {
    let doc = contract();
    let codes = code(paragraph(&doc, "Specialty codes:"));
    assert_eq!(codes, Specialty::ALL);
    let dispatched = schema("mission-dispatched");
    let activity = schema("activity-recorded");
    for s in [&dispatched, &activity] {
        assert_eq!(
            s["$defs"]["specialty"]["enum"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect::<Vec<_>>(),
            Specialty::ALL,
            "{}",
            s["$id"]
        );
    }
    assert_eq!(
        dispatched["properties"]["specialties"]["items"]["$ref"],
        "#/$defs/specialty"
    );
}

#[test]
fn identifiers_match_the_code_and_the_schemas() {
    let doc = contract();
    // "... are strings of 1–64 characters from `[a-z0-9._:-]`. The ..."
    let p = paragraph(&doc, "Identifiers (");
    let rule = p.split(" are strings of ").nth(1).unwrap();
    let rule = rule.split(". ").next().unwrap();
    let [class] = code(rule)[..] else {
        panic!("expected one character class in {rule:?}");
    };
    let lengths = rule.split(" characters").next().unwrap();
    let (min, max) = lengths.split_once('–').unwrap();
    let (min, max): (usize, usize) = (min.parse().unwrap(), max.parse().unwrap());

    // The class, e.g. `[a-z0-9._:-]`, as the set of characters it allows.
    let inner: Vec<char> = class
        .strip_prefix('[')
        .and_then(|c| c.strip_suffix(']'))
        .unwrap()
        .chars()
        .collect();
    let mut allowed = BTreeSet::new();
    let mut i = 0;
    while i < inner.len() {
        if i + 2 < inner.len() && inner[i + 1] == '-' {
            allowed.extend(inner[i]..=inner[i + 2]);
            i += 3;
        } else {
            allowed.insert(inner[i]);
            i += 1;
        }
    }
    for c in (0x20u8..0x7f).map(char::from) {
        assert_eq!(
            Id::parse(&c.to_string()).is_some(),
            allowed.contains(&c),
            "{c:?}"
        );
    }
    assert!(Id::parse(&"a".repeat(max)).is_some());
    assert!(Id::parse(&"a".repeat(max + 1)).is_none());
    assert!(Id::parse(&"a".repeat(min - 1)).is_none());

    for (_, _, name) in types() {
        assert_eq!(
            schema(name)["$defs"]["identifier"]["pattern"],
            format!("^{class}{{{min},{max}}}$"),
            "{name}.v1.schema.json"
        );
    }
}

#[test]
fn region_levels_and_period_types_match_the_code() {
    let doc = contract();
    let regions = section(&doc, "## Regions");
    let sentence = paragraph(regions, "`region_code` is a code");
    let levels = sentence
        .split("Each region has a level")
        .nth(1)
        .and_then(|s| s.split("and a parent").next())
        .unwrap();
    let in_code: Vec<&str> = Level::ALL.iter().map(|l| l.as_str()).collect();
    assert_eq!(code(levels), in_code);

    let analysts = section(&doc, "## What analysts get (Postgres schema `outreach`)");
    let periods = paragraph(analysts, "`period_type` is one of")
        .split(';')
        .next()
        .unwrap();
    let in_code: Vec<&str> = Period::ALL.iter().map(|p| p.as_str()).collect();
    assert_eq!(code(periods)[1..], in_code);
}
