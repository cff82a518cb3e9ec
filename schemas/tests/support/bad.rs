//! One bad message for every rule of the contract, each with the error code
//! the pipeline must give it. Used by the decoder-only test (milliseconds)
//! and by the end-to-end quarantine test (through Kafka and Postgres).

use serde_json::{Value, json};

use super::Record;
use super::events::*;

pub struct BadCase {
    pub name: &'static str,
    pub record: Record,
    pub code: &'static str,
}

fn raw(topic: &str, value: &[u8]) -> Record {
    Record {
        topic: topic.into(),
        key: Some(b"bad".to_vec()),
        value: Some(value.to_vec()),
        headers: vec![],
        partition: None,
        timestamp_ms: None,
    }
}

fn good_activity() -> Value {
    activity(
        "h1",
        "ok",
        "rec-bad",
        "surgeries",
        json!(1),
        "2024-02-01",
        "620921",
    )
}

fn good_dispatch() -> Value {
    dispatch(
        "h1",
        "d-bad",
        "mission-bad",
        "620921",
        3,
        "2024-02-01",
        "2024-02-01T08:00:00Z",
    )
}

fn envelope_with(field: &str, v: Value) -> Record {
    let mut e = good_activity();
    e[field] = v;
    activity_record(&e)
}

fn envelope_without(field: &str) -> Record {
    let mut e = good_activity();
    e.as_object_mut().unwrap().remove(field);
    activity_record(&e)
}

fn data(field: &str, v: Value) -> Record {
    activity_record(&with(good_activity(), field, v))
}

fn mission_data(field: &str, v: Value) -> Record {
    mission_record(&with(good_dispatch(), field, v))
}

pub fn cases() -> Vec<BadCase> {
    let case = |name, record, code| BadCase { name, record, code };
    let mut binary_missing_id = binary(ACTIVITIES, "k", &good_activity());
    binary_missing_id.headers.retain(|(k, _)| k != "ce_id");
    let mut binary_bad_header = binary(ACTIVITIES, "k", &good_activity());
    binary_bad_header.headers.push(("ce_time".into(), None));
    binary_bad_header
        .headers
        .retain(|(k, v)| k != "ce_time" || v.is_none());
    binary_bad_header
        .headers
        .push(("ce_time".into(), Some(vec![0xff, 0xfe, 0x00])));
    binary_bad_header
        .headers
        .retain(|(k, v)| k != "ce_time" || v.is_some());
    let mut binary_dup = binary(ACTIVITIES, "k", &good_activity());
    binary_dup
        .headers
        .push(("ce_id".into(), Some(b"other".to_vec())));
    let deep = serde_json::to_string(&good_activity())
        .unwrap()
        .replace("\"dims\":null", "")
        .replacen(
            "\"value\":1",
            &format!(
                "\"value\":1,\"dims\":{}{}",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
            1,
        );
    vec![
        case("empty value", raw(ACTIVITIES, b""), "empty_message"),
        case("no value at all", Record { value: None, ..raw(ACTIVITIES, b"") }, "empty_message"),
        case("not UTF-8", raw(ACTIVITIES, &[0x7b, 0xff, 0xfe, 0x7d]), "not_utf8"),
        case("malformed JSON", raw(ACTIVITIES, b"{\"specversion\": \"1.0\","), "malformed_json"),
        case("a JSON array", raw(ACTIVITIES, b"[1,2,3]"), "not_an_object"),
        case("a bare string", raw(MISSIONS, b"\"hello\""), "not_an_object"),
        case("deeply nested JSON in data", raw(ACTIVITIES, deep.as_bytes()), "not_an_object"),
        case(
            "duplicate envelope key",
            raw(ACTIVITIES, br#"{"specversion":"1.0","id":"a","id":"b","source":"urn:outreach:institution:h1","type":"org.outreach.mission.completed.v1","time":"2024-01-01T00:00:00Z","data":{"mission_id":"m","end_date":"2024-01-01"}}"#),
            "duplicate_key",
        ),
        case(
            "duplicate data key",
            raw(MISSIONS, br#"{"specversion":"1.0","id":"a","source":"urn:outreach:institution:h1","type":"org.outreach.mission.completed.v1","time":"2024-01-01T00:00:00Z","data":{"mission_id":"m","end_date":"2024-01-01","end_date":"2024-01-02"}}"#),
            "duplicate_key",
        ),
        case("missing specversion", envelope_without("specversion"), "missing_attribute"),
        case("wrong specversion", envelope_with("specversion", json!("0.3")), "bad_specversion"),
        case("missing id", envelope_without("id"), "missing_attribute"),
        case("empty id", envelope_with("id", json!("")), "bad_id"),
        case("id over 128 characters", envelope_with("id", json!("x".repeat(129))), "bad_id"),
        case("numeric id", envelope_with("id", json!(42)), "bad_id"),
        case("source not an institution URN", envelope_with("source", json!("https://example.org")), "bad_source"),
        case("institution id with capitals", envelope_with("source", json!("urn:outreach:institution:PKU")), "bad_source"),
        case("unknown type", envelope_with("type", json!("org.outreach.activity.recorded.v2")), "unknown_type"),
        case("missing time", envelope_without("time"), "missing_attribute"),
        case("time not RFC 3339", envelope_with("time", json!("14/06/2023 20:10")), "bad_time"),
        case("datacontenttype not JSON", envelope_with("datacontenttype", json!("text/plain")), "bad_content_type"),
        case("missing data", envelope_without("data"), "missing_data"),
        case("null data", envelope_with("data", Value::Null), "missing_data"),
        case("data not an object", envelope_with("data", json!([1])), "not_an_object"),
        case("data a string", envelope_with("data", json!("x")), "not_an_object"),
        case("data a number", envelope_with("data", json!(5)), "not_an_object"),
        case("data true", envelope_with("data", json!(true)), "not_an_object"),
        // Decode reads an envelope and its data in one pass; where that
        // pass fails, the envelope's own problems still come first.
        case(
            "bad specversion, data a number out of range",
            raw(ACTIVITIES, br#"{"specversion":"0.3","id":"a","source":"urn:outreach:institution:h1","type":"org.outreach.activity.recorded.v1","time":"2024-01-01T00:00:00Z","data":1e400}"#),
            "bad_specversion",
        ),
        case(
            "data a number out of range",
            raw(ACTIVITIES, br#"{"specversion":"1.0","id":"a","source":"urn:outreach:institution:h1","type":"org.outreach.activity.recorded.v1","time":"2024-01-01T00:00:00Z","data":-1e400}"#),
            "malformed_json",
        ),
        case(
            "bad time, a lone surrogate in data",
            raw(ACTIVITIES, br#"{"data":"\uD800","specversion":"1.0","id":"a","source":"urn:outreach:institution:h1","type":"org.outreach.activity.recorded.v1","time":"yesterday"}"#),
            "bad_time",
        ),
        case(
            "unknown type, a lone surrogate in a data key",
            raw(ACTIVITIES, br#"{"specversion":"1.0","id":"a","source":"urn:outreach:institution:h1","type":"x","time":"2024-01-01T00:00:00Z","data":{"\uDC00":1}}"#),
            "unknown_type",
        ),
        case(
            "data twice, an object then null",
            raw(ACTIVITIES, br#"{"specversion":"1.0","id":"a","source":"urn:outreach:institution:h1","type":"org.outreach.mission.completed.v1","time":"2024-01-01T00:00:00Z","data":{"mission_id":"m","end_date":"2024-01-01"},"data":null}"#),
            "duplicate_key",
        ),
        case(
            "data twice, null then an object with an escaped key",
            raw(ACTIVITIES, br#"{"specversion":"1.0","id":"a","source":"urn:outreach:institution:h1","type":"org.outreach.mission.completed.v1","time":"2024-01-01T00:00:00Z","data":null,"d\u0061ta":{"mission_id":"m","end_date":"2024-01-01"}}"#),
            "duplicate_key",
        ),
        case("unknown data field (a typo)", data("facilty_id", json!("x")), "unknown_field"),
        case("missing record_id", activity_record(&without(good_activity(), "record_id")), "missing_field"),
        case("record_id with a space", data("record_id", json!("rec 1")), "invalid_identifier"),
        case("program_id too long", data("program_id", json!("p".repeat(65))), "invalid_identifier"),
        case("facility_id not a string", data("facility_id", json!(17)), "invalid_field"),
        case("date that does not exist", data("occurred_on", json!("2023-02-30")), "invalid_date"),
        case("date in another format", data("occurred_on", json!("2023/06/14")), "invalid_date"),
        case("year 0", data("occurred_on", json!("0000-06-14")), "date_out_of_range"),
        case("year 9999", data("occurred_on", json!("9999-06-14")), "date_out_of_range"),
        case("region not in the table", data("region_code", json!("999999")), "unknown_region"),
        case("metric not in the catalogue", data("metric", json!("smiles")), "unknown_metric"),
        case("mission metric sent as an activity", data("metric", json!("expert_days")), "unknown_metric"),
        case("negative value", data("value", json!(-3)), "invalid_value"),
        case("value as a string", data("value", json!("3")), "invalid_value"),
        case("NaN-like value", data("value", json!("NaN")), "invalid_value"),
        case("fractional surgeries", data("value", json!(2.5)), "value_not_integer"),
        case("huge value", data("value", json!(1e300)), "value_too_large"),
        case("huge integer", raw(ACTIVITIES, serde_json::to_string(&good_activity()).unwrap().replace("\"value\":1", "\"value\":123456789012345678901234567890").as_bytes()), "value_too_large"),
        case(
            "CNY with three decimals",
            activity_record(&activity("h1", "cny", "rec-cny", "medicines_donated_value", json!(12.345), "2024-02-01", "620921")),
            "value_too_precise",
        ),
        case("revision 0", data("revision", json!(0)), "invalid_revision"),
        case("revision not an integer", data("revision", json!(1.5)), "invalid_revision"),
        case("dim not allowed for the metric", data("dims", json!({"setting": "ward"})), "unknown_dim"),
        case("dim value not in the list", data("dims", json!({"role": "watched"})), "invalid_dim_value"),
        case("specialty not a code", data("dims", json!({"specialty": "astrology"})), "invalid_dim_value"),
        case("dim value not a string", data("dims", json!({"role": 1})), "invalid_dim_value"),
        case("dims not an object", data("dims", json!("role=performed")), "not_an_object"),
        case("team of 0", mission_data("team_size", json!(0)), "invalid_team_size"),
        case("team of 10001", mission_data("team_size", json!(10001)), "invalid_team_size"),
        case("team size as a string", mission_data("team_size", json!("7")), "invalid_team_size"),
        case("unknown specialty", mission_data("specialties", json!(["cardiology", "magic"])), "unknown_specialty"),
        case("planned end before start", mission_data("planned_end_date", json!("2024-01-31")), "end_before_start"),
        case("mission in an unknown region", mission_data("region_code", json!("XX-99")), "unknown_region"),
        case("binary mode without ce_id", binary_missing_id, "missing_attribute"),
        case("binary mode header not UTF-8", binary_bad_header, "bad_header"),
        case("binary mode header twice", binary_dup, "duplicate_key"),
        case("binary mode data not JSON", Record { value: Some(b"<xml/>".to_vec()), ..binary(ACTIVITIES, "k", &good_activity()) }, "malformed_json"),
        case("too large", raw(ACTIVITIES, &vec![b' '; 2 * 1024 * 1024]), "too_large"),
    ]
}
