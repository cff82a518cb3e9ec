//! Program and region names that are markup, quotes, Chinese and 3,000
//! characters long reach both pages as text, exactly.

use std::path::{Path, PathBuf};

use scraper::Html;

use super::{demo, scratch, select};

/// A dispatch and an activity whose program and region names are hostile.
const HOSTILE_NAME: &str = r#"<script>alert("x")</script> & 'quoted' "double" 健康中国行 "#;

fn hostile_events(dir: &Path) -> (PathBuf, PathBuf, String) {
    let name = format!("{HOSTILE_NAME}{}", "very long name ".repeat(200));
    let dispatch = serde_json::json!({
        "specversion": "1.0", "id": "h-1", "source": "urn:outreach:institution:hostile",
        "type": "org.outreach.mission.dispatched.v1", "time": "2023-05-01T08:00:00Z",
        "data": {"mission_id": "h-m", "program_id": "hostile", "program_name": name,
                 "host_facility_id": "h-f", "region_code": "620999", "team_size": 3,
                 "start_date": "2023-05-01"}
    });
    let activity = serde_json::json!({
        "specversion": "1.0", "id": "h-2", "source": "urn:outreach:institution:hostile",
        "type": "org.outreach.activity.recorded.v1", "time": "2023-05-02T08:00:00Z",
        "data": {"record_id": "h-r", "program_id": "hostile", "mission_id": "h-m",
                 "facility_id": "h-f", "region_code": "620999", "occurred_on": "2023-05-02",
                 "metric": "outpatient_visits", "value": 42}
    });
    let events = dir.join("hostile.jsonl");
    std::fs::write(&events, format!("{dispatch}\n{activity}\n")).unwrap();
    let regions = dir.join("regions.csv");
    let region_name = r#"<img src=x onerror=alert(1)> "金塔" 'county'"#;
    std::fs::write(
        &regions,
        format!(
            "region_code,name,level,parent_code\n620999,\"{}\",county,620900\n",
            region_name.replace('"', "\"\"")
        ),
    )
    .unwrap();
    (events, regions, name)
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_names_are_text_never_markup() {
    let dir = scratch("outreach-report-hostile");
    let (events, regions, name) = hostile_events(&dir);
    let regions = regions.display().to_string();
    let (_, html, zh) = demo(
        &dir,
        &[events],
        &[("OUTREACH__REGIONS__EXTRA_FILE", &regions)],
    );
    for page in [html, zh] {
        hostile_names_read_back_as_text(&std::fs::read_to_string(&page).unwrap(), &name);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn hostile_names_read_back_as_text(text: &str, name: &str) {
    assert!(!text.contains("<script"), "a script tag reached the page");
    assert!(!text.contains("<img"), "an img tag reached the page");
    let doc = Html::parse_document(text);
    let section = doc
        .select(&select("section[data-program=\"hostile\"]"))
        .next()
        .expect("the hostile program has its section");
    let title: String = section
        .select(&select("h2"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert_eq!(title, name, "the name reads back exactly, as text");
    let regions: Vec<String> = section
        .select(&select("table.regions td.name"))
        .map(|e| e.text().collect())
        .collect();
    assert!(
        regions
            .iter()
            .any(|r| r.starts_with(r#"<img src=x onerror=alert(1)> "金塔" 'county'"#)),
        "{regions:?}"
    );
}
