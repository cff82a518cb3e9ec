//! Events built to the contract, as Kafka records in either content mode.

use serde_json::{Value, json};

use super::Record;

pub const MISSIONS: &str = schemas::MISSIONS_TOPIC;
pub const ACTIVITIES: &str = schemas::ACTIVITIES_TOPIC;

/// A CloudEvent in structured mode.
pub fn structured(topic: &str, key: &str, event: &Value) -> Record {
    Record {
        topic: topic.into(),
        key: Some(key.as_bytes().to_vec()),
        value: Some(serde_json::to_vec(event).unwrap()),
        headers: vec![(
            "content-type".into(),
            Some(b"application/cloudevents+json".to_vec()),
        )],
        partition: None,
        timestamp_ms: None,
    }
}

/// The same CloudEvent in binary mode: `data` as the value, attributes as headers.
pub fn binary(topic: &str, key: &str, event: &Value) -> Record {
    let mut headers = vec![(
        "content-type".to_string(),
        Some(b"application/json".to_vec()),
    )];
    for attr in ["specversion", "id", "source", "type", "time"] {
        if let Some(v) = event.get(attr).and_then(Value::as_str) {
            headers.push((format!("ce_{attr}"), Some(v.as_bytes().to_vec())));
        }
    }
    Record {
        topic: topic.into(),
        key: Some(key.as_bytes().to_vec()),
        value: Some(serde_json::to_vec(&event["data"]).unwrap()),
        headers,
        partition: None,
        timestamp_ms: None,
    }
}

pub fn envelope(institution: &str, id: &str, type_: &str, time: &str, data: Value) -> Value {
    json!({
        "specversion": "1.0",
        "id": id,
        "source": format!("urn:outreach:institution:{institution}"),
        "type": type_,
        "time": time,
        "data": data,
    })
}

/// An activity with the common fields filled in; override with `with`.
pub fn activity(
    institution: &str,
    id: &str,
    record_id: &str,
    metric: &str,
    value: Value,
    day: &str,
    region: &str,
) -> Value {
    envelope(
        institution,
        id,
        "org.outreach.activity.recorded.v1",
        &format!("{day}T12:00:00+08:00"),
        json!({
            "record_id": record_id,
            "program_id": "healthy-china-tour-2023",
            "facility_id": format!("facility-{}", region.to_lowercase()),
            "region_code": region,
            "occurred_on": day,
            "metric": metric,
            "value": value,
        }),
    )
}

pub fn dispatch(
    institution: &str,
    id: &str,
    mission: &str,
    region: &str,
    team: u32,
    start: &str,
    time: &str,
) -> Value {
    envelope(
        institution,
        id,
        "org.outreach.mission.dispatched.v1",
        time,
        json!({
            "mission_id": mission,
            "program_id": "healthy-china-tour-2023",
            "program_name": "2023 Healthy China Tour",
            "host_facility_id": format!("host-{}", region.to_lowercase()),
            "region_code": region,
            "team_size": team,
            "specialties": ["cardiology"],
            "start_date": start,
        }),
    )
}

pub fn completion(institution: &str, id: &str, mission: &str, end: &str, time: &str) -> Value {
    envelope(
        institution,
        id,
        "org.outreach.mission.completed.v1",
        time,
        json!({ "mission_id": mission, "end_date": end }),
    )
}

/// Sets `data.<field>` (or removes it with `Value::Null`... use `without`).
pub fn with(mut event: Value, field: &str, v: Value) -> Value {
    event["data"][field] = v;
    event
}

pub fn without(mut event: Value, field: &str) -> Value {
    event["data"].as_object_mut().unwrap().remove(field);
    event
}

pub fn activity_record(event: &Value) -> Record {
    structured(
        ACTIVITIES,
        event["data"]["record_id"].as_str().unwrap_or("k"),
        event,
    )
}

pub fn mission_record(event: &Value) -> Record {
    structured(
        MISSIONS,
        event["data"]["mission_id"].as_str().unwrap_or("k"),
        event,
    )
}
