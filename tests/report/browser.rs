//! Headless Chromium renders both pages: the DOM after layout holds the
//! SQL totals, a phone-sized screenshot is not blank, and the Chinese page
//! has no missing glyph (`glyphs`).

use std::path::{Path, PathBuf};
use std::process::Command;

use scraper::Html;

use super::support::sqlite_reader;
use super::{demo, glyphs, scratch, select};

/// Debian's Chromium (scripts/test installs it); `CHROMIUM` names another.
fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/chromium".into());
    assert!(
        path.exists(),
        "{} not found: run the tests with scripts/test (it installs Debian's chromium), or set CHROMIUM",
        path.display()
    );
    path
}

pub fn headless(profile: &Path) -> Command {
    let mut c = Command::new(chromium());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// The page at `url` as Chromium renders it: its DOM after layout.
fn rendered_dom(profile: &Path, url: &str) -> String {
    let dom = headless(profile)
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap();
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    String::from_utf8_lossy(&dom.stdout).into_owned()
}

/// The headline figures of a rendered page, as SQL sums them.
async fn shows_the_headline_sums(dom: &str, database: &Path) {
    let pool = sqlite_reader(database).await;
    let totals: Vec<(String, String, f64)> = sqlx::query_as(
        "SELECT program_id, metric, sum(value) FROM daily_metrics
         WHERE metric IN ('outpatient_visits', 'surgeries', 'missions_dispatched')
         GROUP BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(!totals.is_empty());
    for (program, metric, total) in totals {
        let span = format!(
            "data-program=\"{program}\" data-metric=\"{metric}\">{}</span>",
            group(total as i64)
        );
        assert!(dom.contains(&span), "the rendered page shows {span}");
    }
}

/// A phone-sized screenshot of the page at `url`: not blank.
fn screenshot_has_ink(profile: &Path, url: &str, png: &Path) {
    let shot = headless(profile)
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=412,1600")
        .arg(url)
        .output()
        .unwrap();
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (412, 1600));
    let pixels = &buf[..info.buffer_size()];
    let step = info.line_size / info.width as usize;
    let distinct: std::collections::HashSet<&[u8]> = pixels.chunks(step).collect();
    let ink = pixels
        .chunks(step)
        .filter(|p| p[..3] != [255, 255, 255])
        .count();
    assert!(
        distinct.len() > 20,
        "the screenshot has {} colours",
        distinct.len()
    );
    assert!(
        ink > pixels.len() / step / 50,
        "the screenshot is nearly blank ({ink} non-white pixels)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_browser_renders_the_demo_report() {
    let dir = scratch("outreach-report-browser");
    let (database, html, _) = demo(&dir, &[], &[]);
    let url = format!("file://{}", html.display());
    let dom = rendered_dom(&dir.join("profile-1"), &url);
    shows_the_headline_sums(&dom, &database).await;
    assert!(
        dom.contains("Outcome indicators")
            && dom.contains("Reporting timeliness")
            && dom.contains("<svg"),
        "sections and charts rendered"
    );
    screenshot_has_ink(&dir.join("profile-2"), &url, &dir.join("report.png"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_browser_renders_the_chinese_report_with_no_missing_glyph() {
    let dir = scratch("outreach-report-zh");
    let (database, _, zh) = demo(&dir, &[], &[]);
    let url = format!("file://{}", zh.display());
    let dom = rendered_dom(&dir.join("profile-1"), &url);
    shows_the_headline_sums(&dom, &database).await;
    assert!(
        dom.contains("<html lang=\"zh-CN\">"),
        "the page says it is Chinese"
    );
    for heading in [
        "医疗帮扶项目工作量与成效",
        "成效指标",
        "数据报送及时性",
        "数据质量",
    ] {
        assert!(dom.contains(heading), "{heading} rendered");
    }
    assert!(
        dom.contains("<svg") && dom.contains("手术（台）"),
        "the charts' titles in Chinese"
    );
    screenshot_has_ink(&dir.join("profile-2"), &url, &dir.join("report.png"));

    let chars = glyphs::page_chars(&dom);
    let cjk = chars
        .iter()
        .filter(|c| ('\u{4E00}'..='\u{9FFF}').contains(*c))
        .count();
    assert!(cjk > 150, "{cjk} distinct Chinese characters on the page");
    let uncovered = glyphs::uncovered(&chars);
    assert!(
        uncovered.is_empty(),
        "no installed font has {uncovered:?}: install fonts-noto-cjk (scripts/test does)"
    );
    let doc = Html::parse_document(&dom);
    let style: String = doc
        .select(&select("style"))
        .flat_map(|e| e.text())
        .collect();
    glyphs::assert_all_drawn(&chars, &style, &dir);
    let _ = std::fs::remove_dir_all(&dir);
}

fn group(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}
