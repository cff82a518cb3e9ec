#!/usr/bin/env python3
"""Writes examples/sample-events.jsonl: a small, deterministic outreach year.

Seven programs modelled on the public reports the contract quotes (a free
clinic tour, partner assistance to a county hospital, a national regional
medical centre, poverty-alleviation assistance to three counties, an aid team
abroad, a telemedicine network, a specialist alliance), with a few redelivered
duplicates, corrections, a withdrawal, a completion sent before its dispatch,
and bad lines the pipeline must quarantine. Re-run after editing; the output
is committed.
"""
import json
import random
from datetime import date, timedelta

rng = random.Random(2023)
out = []
n = 0


def ev(inst, type_, time, data):
    global n
    n += 1
    return {
        "specversion": "1.0",
        "id": f"{inst}-{n:05d}",
        "source": f"urn:outreach:institution:{inst}",
        "type": f"org.outreach.{type_}.v1",
        "time": time,
        "data": data,
    }


PROGRAMS = [
    # program_id, name, institution, host facilities (id, region)
    ("healthy-china-tour-2023", "2023 Healthy China Tour (free clinics)", "shanghai-general",
     [("xinle-city-hospital", "130184"), ("jinta-county-hospital", "620921")]),
    ("pkufh-county-assistance", "Partner assistance to Yonghe County", "pku-first",
     [("yonghe-peoples-hospital", "141032")]),
    ("nrmc-gansu", "National regional medical centre, Gansu", "west-china",
     [("jiuquan-central-hospital", "620902"), ("jinta-county-hospital", "620921")]),
    ("three-counties-poverty-aid", "Poverty-alleviation assistance to three counties", "zhongshan-hospital",
     [("yonghe-peoples-hospital", "141032"), ("daning-county-hospital", "141030"), ("xixian-county-hospital", "141031")]),
    ("aid-team-morocco", "Chinese medical team in Morocco", "shanghai-general",
     [("hopital-regional-settat", "MA-06")]),
    ("telemedicine-network", "Telemedicine network", "west-china",
     [("jinta-county-hospital", "620921")]),
    ("cardiology-alliance", "Cardiology specialist alliance", "pku-first",
     [("xinle-city-hospital", "130184")]),
]

ACTIVITIES = [
    ("outpatient_visits", {"specialty": "cardiology", "setting": "free_clinic"}, 10, 60),
    ("surgeries", {"specialty": "general_surgery", "role": "performed"}, 1, 6),
    ("surgeries", {"specialty": "orthopedics", "role": "assisted"}, 1, 4),
    ("complex_case_consultations", {"specialty": "oncology", "mode": "onsite"}, 1, 8),
    ("teaching_rounds", {"specialty": "pediatrics"}, 1, 3),
    ("staff_trained", {"cadre": "nurse"}, 2, 12),
    ("techniques_introduced", {"specialty": "cardiology", "gap_level": "county"}, 1, 2),
    ("techniques_localized", {"specialty": "cardiology"}, 0, 1),
    ("papers_published", {"indexing": "sci", "authorship": "joint"}, 0, 1),
]

missions = []
for prog, name, inst, hosts in PROGRAMS:
    for k in range(3):
        facility, region = hosts[k % len(hosts)]
        start = date(2023, 1, 1) + timedelta(days=rng.randrange(0, 330))
        days = rng.randrange(2, 15) if prog != "aid-team-morocco" else 180
        mission_id = f"{prog[:12]}-{k + 1}"
        team = rng.randrange(3, 12)
        dispatch = ev(inst, "mission.dispatched", f"{start}T07:30:00+08:00", {
            "mission_id": mission_id, "program_id": prog, "program_name": name,
            "host_facility_id": facility, "region_code": region, "team_size": team,
            "specialties": ["cardiology", "general_surgery"], "start_date": str(start),
            "planned_end_date": str(start + timedelta(days=days - 1)),
        })
        end = start + timedelta(days=days - 1)
        completion = ev(inst, "mission.completed", f"{end}T18:00:00+08:00",
                        {"mission_id": mission_id, "end_date": str(end)})
        missions.append((dispatch, completion))
        out.append(dispatch)
        for d in range(min(days, 10)):
            day = start + timedelta(days=d)
            metric, dims, lo, hi = rng.choice(ACTIVITIES)
            rec = f"{mission_id}-{day}-{metric}"
            out.append(ev(inst, "activity.recorded", f"{day}T20:00:00+08:00", {
                "record_id": rec, "program_id": prog, "mission_id": mission_id,
                "facility_id": facility, "region_code": region, "occurred_on": str(day),
                "metric": metric, "value": rng.randint(max(lo, 1), hi), "dims": dims,
            }))
        out.append(completion)
    # Remote work without a mission, and a donation in CNY.
    facility, region = hosts[0]
    out.append(ev(inst, "activity.recorded", "2023-11-20T10:00:00+08:00", {
        "record_id": f"{prog[:12]}-tele-2023-11", "program_id": prog, "facility_id": facility,
        "region_code": region, "occurred_on": "2023-11-20", "metric": "telemedicine_sessions",
        "value": rng.randint(3, 20), "dims": {"kind": "consultation"}}))
    out.append(ev(inst, "activity.recorded", "2023-12-01T10:00:00+08:00", {
        "record_id": f"{prog[:12]}-donation-2023", "program_id": prog, "facility_id": facility,
        "region_code": region, "occurred_on": "2023-12-01", "metric": "medicines_donated_value",
        "value": round(rng.uniform(5000, 90000), 2)}))

# A completion sent before its dispatch: move one completion to the front.
first_completion = missions[0][1]
out.remove(first_completion)
out.insert(0, first_completion)
# Redelivered duplicates.
for e in rng.sample(out, 8):
    out.insert(rng.randrange(len(out)), e)
# A correction (revision 2) and a withdrawal (value 0).
acts = [e for e in out if e["type"].endswith("activity.recorded.v1") and e["data"].get("mission_id")]
fix = json.loads(json.dumps(acts[3]))
fix["id"] += "-r2"
fix["data"]["revision"] = 2
fix["data"]["value"] = fix["data"]["value"] + 5
out.append(fix)
withdraw = json.loads(json.dumps(acts[7]))
withdraw["id"] += "-r2"
withdraw["data"]["revision"] = 2
withdraw["data"]["value"] = 0
out.append(withdraw)

lines = [json.dumps(e, ensure_ascii=False, separators=(",", ":")) for e in out]
# Bad lines: a typo in a field name, an unknown region, half a line.
typo = json.loads(lines[5])
typo["data"]["facilty_id"] = typo["data"].pop("facility_id", "x")
typo["id"] += "-typo"
lines.insert(20, json.dumps(typo, separators=(",", ":")))
bad_region = json.loads(lines[9])
bad_region["data"]["region_code"] = "999999"
bad_region["id"] += "-region"
lines.insert(40, json.dumps(bad_region, separators=(",", ":")))
lines.insert(60, lines[61][: len(lines[61]) // 2])

with open("examples/sample-events.jsonl", "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
print(f"{len(lines)} lines")
