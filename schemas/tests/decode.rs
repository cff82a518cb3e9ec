//! The validator alone, no services: every bad case gets its code, and the
//! contract's examples pass in both content modes.

mod support;

use std::sync::Arc;

use schemas::{Body, Decoder, Regions};
use support::bad::cases;
use support::events::*;

fn decoder() -> Decoder {
    Decoder::new(
        Arc::new(Regions::shipped()),
        schemas::decode::DEFAULT_MAX_MESSAGE_BYTES,
    )
}

#[test]
fn every_bad_case_is_refused_with_its_code() {
    let d = decoder();
    let mut wrong = Vec::new();
    for c in cases() {
        match c.record.decode(&d) {
            Ok(_) => wrong.push(format!("{}: accepted", c.name)),
            Err(r) if r.code.as_str() != c.code => wrong.push(format!(
                "{}: {} ({}) instead of {}",
                c.name, r.code, r.detail, c.code
            )),
            Err(r) => assert!(!r.detail.is_empty(), "{}: a reason for people", c.name),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_contract_examples_decode_in_both_modes() {
    let d = decoder();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/contract/examples");
    for f in [
        "mission-dispatched.json",
        "mission-completed.json",
        "activity-recorded.json",
    ] {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{dir}/{f}")).unwrap()).unwrap();
        let s = structured(MISSIONS, "k", &v)
            .decode(&d)
            .unwrap_or_else(|r| panic!("{f}: {r}"));
        let b = binary(MISSIONS, "k", &v)
            .decode(&d)
            .unwrap_or_else(|r| panic!("{f} binary: {r}"));
        assert_eq!(s, b, "{f}: both modes give the same event");
        assert_eq!(s.institution.as_str(), "shanghai-general");
    }
    // No content-type header at all: structured mode.
    let mut r = activity_record(&activity(
        "h1",
        "e",
        "r",
        "outpatient_visits",
        serde_json::json!(3),
        "2024-01-01",
        "130184",
    ));
    r.headers.clear();
    let e = r.decode(&d).unwrap();
    let Body::Activity(a) = e.body else {
        panic!("an activity")
    };
    assert_eq!(
        (a.revision, a.value.hundredths()),
        (1, 300),
        "revision defaults to 1"
    );
}

#[test]
fn extension_attributes_are_ignored_and_cny_keeps_two_decimals() {
    let d = decoder();
    let mut v = activity(
        "h1",
        "e",
        "r",
        "medicines_donated_value",
        serde_json::json!(1234.5),
        "2024-01-01",
        "MA-01",
    );
    v["traceparent"] = serde_json::json!("00-abc-def-01");
    v["partitionkey"] = serde_json::json!({"nested": [1, 2]});
    let e = structured(ACTIVITIES, "k", &v).decode(&d).unwrap();
    let Body::Activity(a) = e.body else {
        panic!("an activity")
    };
    assert_eq!(a.value.to_string(), "1234.50");
    assert_eq!(a.region_code, "MA-01");
}

#[test]
fn deep_nesting_in_an_ignored_extension_costs_no_stack() {
    let d = decoder();
    let v = activity(
        "h1",
        "e",
        "r",
        "lectures",
        serde_json::json!(1),
        "2024-01-01",
        "130184",
    );
    let text = serde_json::to_string(&v).unwrap();
    let nested = format!(
        "{{\"deep\":{}{},{}",
        "[".repeat(400_000),
        "]".repeat(400_000),
        &text[1..]
    );
    let e = support::Record {
        value: Some(nested.into_bytes()),
        ..structured(ACTIVITIES, "k", &v)
    }
    .decode(&d);
    assert!(e.is_ok(), "{e:?}");
}

/// Escapes in keys and string values, `data` before or after the
/// attributes, whitespace between tokens: the one-pass reading of a
/// structured event gives the same event as the plain text.
#[test]
fn escapes_member_order_and_whitespace_do_not_change_the_event() {
    let d = decoder();
    let decode = |text: &str| {
        support::Record {
            topic: ACTIVITIES.into(),
            key: Some(b"k".to_vec()),
            value: Some(text.as_bytes().to_vec()),
            headers: vec![],
            partition: None,
            timestamp_ms: None,
        }
        .decode(&d)
        .unwrap_or_else(|r| panic!("{text}: {r}"))
    };
    let envelope = r#""specversion":"1.0","id":"e-1","source":"urn:outreach:institution:h1","type":"org.outreach.mission.completed.v1","time":"2024-01-01T00:00:00Z""#;
    let data = r#""data":{"mission_id":"m-1","end_date":"2024-01-01"}"#;
    let plain = decode(&format!("{{{envelope},{data}}}"));
    for text in [
        format!("{{{data},{envelope}}}"),
        format!(" {{ {data} , {envelope} }} "),
        format!(
            "{{{envelope},{}}}",
            data.replace(r#""data""#, r#""d\u0061ta""#)
        ),
        format!(
            "{{{},{data}}}",
            envelope.replace(r#""e-1""#, r#""e\u002d1""#)
        ),
        format!(
            "{{{envelope},{}}}",
            data.replace(r#""m-1""#, r#""m\u002d1""#)
                .replace(r#""end_date""#, r#""end\u005fdate""#)
        ),
    ] {
        assert_eq!(decode(&text), plain, "{text}");
    }
}
