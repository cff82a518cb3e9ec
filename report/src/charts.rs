//! The monthly trend charts: one small bar chart per metric (small
//! multiples, each on its own scale, so surgeries are not flattened by
//! outpatients), drawn as SVG by plotters. Only the language table's
//! words, month labels and numbers are drawn: no user text reaches the
//! SVG (plotters escapes text all the same).
//!
//! plotters writes `font-family="sans-serif"`; the page's CSS gives the
//! charts its own font stack, so a Chinese title is set in a CJK font.

use plotters::prelude::*;

use crate::Error;

const SIZE: (u32, u32) = (400, 220);
const BAR: RGBColor = RGBColor(43, 108, 176);

/// A bar per month (its label as the language writes it); values in
/// hundredths.
pub fn monthly_bars(title: &str, months: &[(String, i64)]) -> Result<String, Error> {
    let mut svg = String::new();
    draw(&mut svg, title, months).map_err(|e| Error::Chart(e.to_string()))?;
    Ok(svg)
}

fn draw(
    svg: &mut String,
    title: &str,
    months: &[(String, i64)],
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let n = months.len().max(1);
    let top = months.iter().map(|(_, v)| *v).max().unwrap_or(0).max(100) as f64 / 100.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(6)
        .x_label_area_size(26)
        .y_label_area_size(54)
        .build_cartesian_2d(0f64..n as f64, 0f64..top * 1.08)?;
    let label = |x: &f64| {
        let i = x.floor();
        match months.get(i as usize) {
            Some((m, _)) if (x - i).abs() < 1e-9 => m.clone(),
            _ => String::new(),
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n.min(4))
        .x_label_formatter(&label)
        // Whole ticks on a small scale: no "0.5 missions".
        .y_labels((top.ceil() as usize + 1).clamp(2, 5))
        .light_line_style(WHITE)
        .y_label_formatter(&|v| thousands(*v))
        .label_style(("sans-serif", 14))
        .draw()?;
    chart.draw_series(months.iter().enumerate().map(|(i, (_, v))| {
        let x = i as f64;
        Rectangle::new(
            [(x + 0.12, 0.0), (x + 0.88, *v as f64 / 100.0)],
            BAR.filled(),
        )
    }))?;
    root.present()?;
    Ok(())
}

/// An axis value: whole, with thousands separators.
fn thousands(v: f64) -> String {
    crate::lang::group_digits(v.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_an_svg_with_a_bar_per_month() {
        let d = |m: &str| m.to_owned();
        let svg = monthly_bars(
            "手术（台）",
            &[
                (d("2023年1月"), 300),
                (d("2023年2月"), 0),
                (d("2023年3月"), 12_000),
            ],
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("viewBox"), "scales with the page: {svg}");
        assert!(svg.contains("手术（台）"), "{svg}");
        assert!(svg.contains("2023年1月"), "{svg}");
        // One filled rectangle per month (plus the background).
        assert!(svg.matches("<rect").count() >= 4, "{svg}");
    }

    #[test]
    fn an_empty_series_still_draws() {
        assert!(monthly_bars("Nothing", &[]).unwrap().contains("</svg>"));
    }
}
