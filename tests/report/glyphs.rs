//! "No missing glyphs" for the Chinese page, proved two ways: every
//! character of the rendered page is in an installed font (fontconfig,
//! which Chromium asks on Linux), and Chromium itself draws each one as a
//! glyph of its own. The second draws every distinct character of the
//! page in its own cell, in the page's own fonts, next to two characters
//! no font has (private use): a missing glyph is drawn as the same box
//! (tofu) whatever the character, so a page character drawn like the
//! controls, or like another character, or not at all, is missing.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use scraper::Html;

use super::browser::headless;
use super::select;

/// Cells of the glyph sheet: COLUMNS per row, CELL pixels square.
const COLUMNS: usize = 32;
const CELL: usize = 32;
/// Characters no installed font has.
const CONTROLS: [char; 2] = ['\u{E000}', '\u{E001}'];

/// The characters a reader sees on the page (text of the body, the
/// charts' included), beyond ASCII.
pub fn page_chars(dom: &str) -> BTreeSet<char> {
    let doc = Html::parse_document(dom);
    let body = doc.select(&select("body")).next().expect("a body");
    body.text()
        .flat_map(str::chars)
        .filter(|c| !c.is_ascii() && !c.is_whitespace())
        .collect()
}

/// The characters no installed font covers, by fontconfig.
pub fn uncovered(chars: &BTreeSet<char>) -> Vec<char> {
    let fonts_with = |chars: &[char]| {
        let set: Vec<String> = chars.iter().map(|c| format!("{:x}", *c as u32)).collect();
        let o = Command::new("fc-list")
            .arg(format!(":charset={}", set.join(" ")))
            .arg("family")
            .output()
            .expect("fc-list (fontconfig; scripts/test installs it with the fonts)");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        !o.stdout.is_empty()
    };
    let all: Vec<char> = chars.iter().copied().collect();
    if fonts_with(&all) {
        return vec![];
    }
    // No one font has them all: which has none?
    all.into_iter().filter(|c| !fonts_with(&[*c])).collect()
}

/// Each of `chars` as Chromium draws it in the report's fonts (`style`,
/// the page's own style sheet), as the pixels of its cell.
pub fn drawn(chars: &[char], style: &str, dir: &Path) -> Vec<Vec<u8>> {
    let cells: String = chars.iter().map(|c| format!("<span>{c}</span>")).collect();
    let sheet = dir.join("glyphs.html");
    std::fs::write(
        &sheet,
        format!(
            "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><style>{style}
             body {{ margin: 0; background: #fff; }}
             .g {{ display: grid; grid-template-columns: repeat({COLUMNS}, {CELL}px); }}
             .g span {{ display: block; width: {CELL}px; height: {CELL}px; overflow: hidden;
                        font-size: 24px; line-height: {CELL}px; text-align: center; }}
             </style></head><body><div class=\"g\">{cells}</div></body></html>"
        ),
    )
    .unwrap();
    let rows = chars.len().div_ceil(COLUMNS);
    let png = dir.join("glyphs.png");
    let o = headless(&dir.join("profile-glyphs"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!(
            "--window-size={},{}",
            COLUMNS * CELL,
            rows * CELL + CELL
        ))
        .arg("--force-device-scale-factor=1")
        .arg(format!("file://{}", sheet.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = info.line_size / info.width as usize;
    (0..chars.len())
        .map(|i| {
            let (x, y) = ((i % COLUMNS) * CELL, (i / COLUMNS) * CELL);
            (y..y + CELL)
                .flat_map(|row| {
                    let start = row * info.line_size + x * step;
                    buf[start..start + CELL * step].iter().copied()
                })
                .collect()
        })
        .collect()
}

/// Asserts that Chromium draws every character of `chars` as a glyph of
/// its own; `style` is the page's style sheet.
pub fn assert_all_drawn(chars: &BTreeSet<char>, style: &str, dir: &Path) {
    let mut sheet: Vec<char> = chars.iter().copied().collect();
    sheet.extend(CONTROLS);
    let cells = drawn(&sheet, style, dir);
    let (page, controls) = cells.split_at(chars.len());
    let blank = vec![255u8; controls[0].len()];
    assert_eq!(
        controls[0], controls[1],
        "two characters no font has should be drawn as the same box: the test cannot tell a missing glyph"
    );
    assert_ne!(controls[0], blank, "a missing glyph is drawn as something");
    let mut seen: HashMap<&[u8], char> = HashMap::new();
    let mut missing = Vec::new();
    for (c, cell) in chars.iter().zip(page) {
        if cell == &controls[0] || cell == &blank {
            missing.push(*c);
        } else if let Some(other) = seen.insert(cell, *c) {
            missing.push(*c);
            missing.push(other);
        }
    }
    assert!(
        missing.is_empty(),
        "drawn as a missing glyph (like U+E000, blank, or like another character): {:?}",
        missing
            .iter()
            .map(|c| format!("{c} U+{:04X}", *c as u32))
            .collect::<Vec<_>>()
    );
}
