//! Random event histories for property tests: activities with corrections,
//! withdrawals and out-of-order revisions, missions whose completion may come
//! before their dispatch, redeliveries, events decades late, and bad
//! messages mixed in. Rendered as Kafka records, then decoded with the
//! pipeline's own validator so the model and the pipeline see the same input.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::Record;
use super::events::*;

const INSTITUTIONS: [&str; 2] = ["h1", "h2"];
const REGIONS: [&str; 7] = [
    "620921", "620922", "620900", "130184", "141032", "110101", "MA-01",
];
const PROGRAMS: [&str; 3] = [
    "healthy-china-tour-2023",
    "pkufh-county-assistance",
    "aid-team-morocco",
];

/// One step of a history, before rendering. Small ranges on purpose: they
/// make records, missions and cells collide.
#[derive(Debug, Clone)]
pub enum Step {
    Activity {
        inst: usize,
        record: u8,
        revision: u8,
        value: u16,
        cents: u8,
        day: i64,
        region: usize,
        program: usize,
        metric: u8,
        mission: Option<u8>,
    },
    Dispatch {
        inst: usize,
        mission: u8,
        hour: u8,
        start: u8,
        team: u8,
        region: usize,
        program: usize,
    },
    Completion {
        inst: usize,
        mission: u8,
        hour: u8,
        end: u8,
    },
    /// Redelivers an earlier record (by position, modulo what exists).
    Again(u16),
    Bad(u8),
}

/// Days around a new year (so weeks, months, quarters and years split),
/// sometimes decades late or a year ahead.
fn day() -> impl Strategy<Value = i64> {
    prop_oneof![8 => 0..24i64, 1 => Just(-14_000i64), 1 => Just(400i64)]
}

pub fn step() -> impl Strategy<Value = Step> {
    let inst = 0..INSTITUTIONS.len();
    prop_oneof![
        10 => (
            (inst.clone(), 0..8u8, 1..4u8, 0..40u16, 0..100u8),
            (day(), 0..REGIONS.len(), 0..PROGRAMS.len(), 0..4u8, prop::option::weighted(0.2, 0..3u8)),
        )
            .prop_map(|((inst, record, revision, value, cents), (day, region, program, metric, mission))| {
                Step::Activity { inst, record, revision, value, cents, day, region, program, metric, mission }
            }),
        2 => (inst.clone(), 0..3u8, 0..24u8, 0..4u8, 1..9u8, 0..REGIONS.len(), 0..PROGRAMS.len())
            .prop_map(|(inst, mission, hour, start, team, region, program)| Step::Dispatch {
                inst, mission, hour, start, team, region, program
            }),
        2 => (inst, 0..3u8, 0..24u8, 4..20u8)
            .prop_map(|(inst, mission, hour, end)| Step::Completion { inst, mission, hour, end }),
        2 => any::<u16>().prop_map(Step::Again),
        1 => (0..4u8).prop_map(Step::Bad),
    ]
}

pub fn steps(max: usize) -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(step(), 1..max)
}

fn base() -> chrono::NaiveDate {
    "2023-12-20".parse().unwrap()
}

/// The records of a history, in production order. Event ids are unique per
/// step, so a redelivery is the only way two records carry the same event.
pub fn render(steps: &[Step]) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    for (n, s) in steps.iter().enumerate() {
        let id = format!("e{n}");
        let rec = match *s {
            Step::Activity {
                inst,
                record,
                revision,
                value,
                cents,
                day,
                region,
                program,
                metric,
                mission,
            } => {
                let day = (base() + chrono::TimeDelta::days(day)).to_string();
                let (metric, dims, cents) = match metric {
                    0 => (
                        "surgeries",
                        json!({"role": "performed", "specialty": "cardiology"}),
                        0,
                    ),
                    1 => ("outpatient_visits", json!({"setting": "free_clinic"}), 0),
                    2 => ("staff_trained", json!({}), 0),
                    _ => ("medicines_donated_value", json!({}), cents),
                };
                let amount: Value = if cents == 0 {
                    json!(value)
                } else {
                    serde_json::from_str(&format!("{value}.{cents:02}")).unwrap()
                };
                let record_id = format!("rec-{record}");
                let mut v = activity(
                    INSTITUTIONS[inst],
                    &id,
                    &record_id,
                    metric,
                    amount,
                    &day,
                    REGIONS[region],
                );
                v = with(v, "revision", json!(revision));
                v = with(v, "program_id", json!(PROGRAMS[program]));
                if dims.as_object().is_some_and(|d| !d.is_empty()) {
                    v = with(v, "dims", dims);
                }
                if let Some(m) = mission {
                    v = with(v, "mission_id", json!(format!("m{m}")));
                }
                activity_record(&v)
            }
            Step::Dispatch {
                inst,
                mission,
                hour,
                start,
                team,
                region,
                program,
            } => {
                let start = (base() + chrono::Days::new(u64::from(start))).to_string();
                let time = format!("2024-01-01T{hour:02}:00:00Z");
                let mut v = dispatch(
                    INSTITUTIONS[inst],
                    &id,
                    &format!("m{mission}"),
                    REGIONS[region],
                    u32::from(team),
                    &start,
                    &time,
                );
                v = with(v, "program_id", json!(PROGRAMS[program]));
                v = with(
                    v,
                    "program_name",
                    json!(format!("Program {}", PROGRAMS[program])),
                );
                mission_record(&v)
            }
            Step::Completion {
                inst,
                mission,
                hour,
                end,
            } => {
                // Ends on or after every possible start: a completion never
                // refused, so the accepted set does not depend on arrival order.
                let end = (base() + chrono::Days::new(u64::from(end))).to_string();
                let time = format!("2024-02-01T{hour:02}:00:00Z");
                mission_record(&completion(
                    INSTITUTIONS[inst],
                    &id,
                    &format!("m{mission}"),
                    &end,
                    &time,
                ))
            }
            Step::Again(i) => match out.len() {
                0 => continue,
                len => out[usize::from(i) % len].clone(),
            },
            Step::Bad(kind) => {
                let good = activity(
                    "h1",
                    &id,
                    &format!("bad-{n}"),
                    "lectures",
                    json!(1),
                    "2024-01-02",
                    "620921",
                );
                let mut rec = match kind {
                    0 => activity_record(&with(good, "region_code", json!("999999"))),
                    1 => activity_record(&with(good, "value", json!(-5))),
                    2 => activity_record(&with(good, "occurred_on", json!("0000-01-01"))),
                    _ => Record {
                        value: Some(b"{\"specversion\": \"1.0\", \"id\": ".to_vec()),
                        ..activity_record(&good)
                    },
                };
                rec.key = Some(format!("bad-{n}").into_bytes());
                rec
            }
        };
        // Produced in order, 7 hours apart from the day before the first
        // day of work: lags from 0 to months, and a redelivery always
        // later than the message it repeats.
        let produced = base().and_hms_opt(0, 0, 0).unwrap().and_utc() - chrono::TimeDelta::days(1)
            + chrono::TimeDelta::hours(7 * n as i64);
        out.push(Record {
            timestamp_ms: Some(produced.timestamp_millis()),
            ..rec
        });
    }
    out
}

/// Each record decoded by the pipeline's validator: `Ok` is accepted.
pub fn decode(records: &[Record]) -> Vec<Result<schemas::Event, schemas::Rejection>> {
    let decoder = schemas::decode::Decoder::new(
        Arc::new(schemas::Regions::shipped()),
        schemas::decode::DEFAULT_MAX_MESSAGE_BYTES,
    );
    records.iter().map(|r| r.decode(&decoder)).collect()
}
