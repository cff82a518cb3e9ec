//! Hostile input against the validator, no services: arbitrary bytes and
//! headers, valid events with random byte edits, and valid events whose
//! fields are replaced by arbitrary JSON must never panic, and every refusal
//! must carry a short reason. Inputs worth keeping live in
//! `schemas/tests/fixtures/fuzz/` as `<expected error_code or "accepted">.<name>.json`
//! and are replayed as regression tests; proptest records the seeds of any
//! failure in `schemas/tests/fuzz.proptest-regressions`.
//!
//! (cargo-fuzz needs a nightly toolchain, which this project's machines do
//! not have; proptest's generators stand in for it.)

mod support;

use std::sync::Arc;

use proptest::prelude::*;
use schemas::{Decoder, Header, Message, Regions};
use serde_json::{Value, json};

fn decoder() -> &'static Decoder {
    static D: std::sync::OnceLock<Decoder> = std::sync::OnceLock::new();
    D.get_or_init(|| Decoder::new(Arc::new(Regions::shipped()), 64 * 1024))
}

const STRUCTURED: (&str, &[u8]) = ("content-type", b"application/cloudevents+json");

/// Decodes, and checks what must hold for any input: a refusal has a code
/// and a reason a person can read, short enough for a log line.
fn check(headers: &[(String, Option<Vec<u8>>)], value: Option<&[u8]>) -> Result<(), String> {
    let headers: Vec<Header<'_>> = headers
        .iter()
        .map(|(k, v)| Header {
            key: k,
            value: v.as_deref(),
        })
        .collect();
    match decoder().decode(&Message {
        headers: &headers,
        value,
        timestamp_ms: None,
    }) {
        Ok(_) => Ok(()),
        Err(r) => {
            assert!(!r.detail.is_empty(), "{}: a reason", r.code);
            assert!(
                r.detail.len() <= schemas::rejection::MAX_DETAIL_BYTES + 64,
                "{}: a reason of {} bytes echoes the input",
                r.code,
                r.detail.len()
            );
            Err(r.code.as_str().to_owned())
        }
    }
}

fn structured() -> Vec<(String, Option<Vec<u8>>)> {
    vec![(STRUCTURED.0.to_owned(), Some(STRUCTURED.1.to_vec()))]
}

fn valid_events() -> Vec<Value> {
    use support::events::*;
    vec![
        activity(
            "h1",
            "e1",
            "r1",
            "surgeries",
            json!(3),
            "2024-01-02",
            "620921",
        ),
        with(
            activity(
                "h1",
                "e2",
                "r2",
                "medicines_donated_value",
                json!(12.5),
                "2024-01-02",
                "MA-01",
            ),
            "dims",
            json!({}),
        ),
        dispatch(
            "h2",
            "d1",
            "m1",
            "620922",
            4,
            "2024-03-01",
            "2024-02-28T00:00:00Z",
        ),
        completion("h2", "c1", "m1", "2024-03-09", "2024-03-10T00:00:00Z"),
    ]
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("content-type".to_owned()),
        Just("ce_id".to_owned()),
        Just("ce_type".to_owned()),
        Just("ce_source".to_owned()),
        Just("ce_specversion".to_owned()),
        Just("ce_time".to_owned()),
        "[a-z_]{0,12}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just("NaN".to_owned()),
            Just("Infinity".to_owned()),
            Just("-0".to_owned()),
            Just("1e999".to_owned()),
            Just("2024-02-30".to_owned()),
            Just("0000-01-01".to_owned()),
            Just("620921".to_owned()),
            ".{0,20}",
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(support::cases(2_000)))]

    #[test]
    fn arbitrary_bytes_and_headers_never_panic(
        value in prop::option::of(prop::collection::vec(any::<u8>(), 0..512)),
        headers in prop::collection::vec(
            (header_name(), prop::option::of(prop::collection::vec(any::<u8>(), 0..40))),
            0..5,
        ),
    ) {
        let _ = check(&headers, value.as_deref());
    }

    #[test]
    fn valid_events_with_random_byte_edits_never_panic(
        which in 0..4usize,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..6),
    ) {
        let mut bytes = serde_json::to_vec(&valid_events()[which]).unwrap();
        for (at, byte, kind) in edits {
            let len = bytes.len();
            let i = at.index(len.max(1));
            match kind {
                0 if len > 0 => bytes[i.min(len - 1)] = byte,
                1 => bytes.insert(i.min(len), byte),
                _ if len > 0 => { bytes.remove(i.min(len - 1)); }
                _ => {}
            }
        }
        let _ = check(&structured(), Some(&bytes));
    }

    #[test]
    fn valid_events_with_a_field_replaced_by_arbitrary_json_never_panic(
        which in 0..4usize,
        field in any::<prop::sample::Index>(),
        in_data in any::<bool>(),
        replacement in json_value(),
    ) {
        let mut event = valid_events()[which].clone();
        let target = if in_data { &mut event["data"] } else { &mut event };
        let keys: Vec<String> = target.as_object().unwrap().keys().cloned().collect();
        let key = &keys[field.index(keys.len())];
        target[key] = replacement;
        let _ = check(&structured(), Some(&serde_json::to_vec(&event).unwrap()));
    }
}

#[test]
fn the_corpus_of_hostile_inputs_gets_its_expected_answers() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    let mut wrong = Vec::new();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some((expected, _)) = name.split_once('.') else {
            continue;
        };
        let value = std::fs::read(&path).unwrap();
        let got = match check(&structured(), Some(&value)) {
            Ok(()) => "accepted".to_owned(),
            Err(code) => code,
        };
        if got != expected {
            wrong.push(format!("{name}: {got}"));
        }
        n += 1;
    }
    assert!(n >= 20, "the corpus is there ({n} files)");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
