//! The charts written next to BENCHMARKS.md (`bench/charts/*.svg`), drawn with plotters' SVG
//! backend: grouped bars, one group per workload or scenario, one bar per program or server;
//! and lines over time, for the soak.
//! SVG text is left to the viewer's fonts, so no font or bitmap crate is needed.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One group of bars: its label, and (series, value) for each bar.
pub type Group = (String, Vec<(&'static str, f64)>);

/// A panel: its title and its groups. Every group has the same series in the same order.
pub struct Panel {
    pub title: String,
    pub groups: Vec<Group>,
}

/// Colours for the series, in order (matplotlib's "tab10").
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// The value axis: linear from 0, or logarithmic (for values that span decades, such as
/// memory per connection from 4 KiB to 1 MiB).
#[derive(Clone, Copy, PartialEq)]
pub enum Scale {
    Linear,
    Log,
}

/// Draws `panels` one above the other into the SVG `file`, each with its bars grouped and
/// their values written above them, `y_label` on the value axis and, with `reference`, a
/// dashed line at that value (plain JavaScript's 1.0 for ratios).
pub fn grouped_bars(
    file: &Path,
    panels: &[Panel],
    y_label: &str,
    reference: Option<(f64, &str)>,
    scale: Scale,
) -> Result<()> {
    stacked(file, panels, 360, |area, panel| {
        draw_panel(area, panel, y_label, reference, scale)
    })
}

/// A drawing area of the SVG backend, as each panel gets one.
type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// Draws `panels` one above the other, `height` pixels each, into the SVG `file`, each with
/// `draw`.
fn stacked<'a, P>(
    file: &'a Path,
    panels: &[P],
    height: u32,
    draw: impl Fn(&Area<'a>, &P) -> Result<(), Box<dyn std::error::Error>>,
) -> Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let height = height * panels.len() as u32;
    let root = SVGBackend::new(file, (900, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    for (area, panel) in root.split_evenly((panels.len(), 1)).iter().zip(panels) {
        draw(area, panel).map_err(|e| anyhow!("{e}"))?;
    }
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

fn draw_panel(
    area: &Area,
    panel: &Panel,
    y_label: &str,
    reference: Option<(f64, &str)>,
    scale: Scale,
) -> Result<(), Box<dyn std::error::Error>> {
    // On a log scale the bars are drawn in decades (log10 of the value) from the smallest
    // value's decade, and the axis labels show the values.
    let values = (panel.groups.iter()).flat_map(|(_, bars)| bars.iter().map(|(_, value)| *value));
    let floor = match scale {
        Scale::Linear => 0.0,
        Scale::Log => values
            .clone()
            .fold(f64::INFINITY, f64::min)
            .max(1e-9)
            .log10()
            .floor(),
    };
    let y = |value: f64| match scale {
        Scale::Linear => value,
        Scale::Log => value.max(1e-9).log10(),
    };
    let groups = panel.groups.len();
    let series: Vec<&str> = (panel.groups.first())
        .map(|(_, bars)| bars.iter().map(|(name, _)| *name).collect())
        .unwrap_or_default();
    let highest = (values.chain(reference.map(|(value, _)| value)).map(y)).fold(floor, f64::max);
    // Room above the bars for the legend.
    let top = floor + (highest - floor) * 1.7;
    let labels: Vec<String> = panel
        .groups
        .iter()
        .map(|(label, _)| label.clone())
        .collect();
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(34)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..groups as f64, floor..top.max(floor + 1e-9))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups * 2 + 1)
        .x_label_formatter(&|x| {
            // Labels at the middle of each group only.
            let middle = x - x.floor();
            match labels.get(x.floor() as usize) {
                Some(label) if (middle - 0.5).abs() < 1e-6 => label.clone(),
                _ => String::new(),
            }
        })
        .y_label_formatter(&|v| match scale {
            Scale::Linear => format!("{v:.1}"),
            Scale::Log => round(10f64.powf(*v)),
        })
        .y_desc(y_label)
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 16))
        .draw()?;
    let width = 0.8 / series.len().max(1) as f64;
    for (s, name) in series.iter().enumerate() {
        let colour = COLOURS[s % COLOURS.len()];
        let bars = (panel.groups.iter().enumerate()).filter_map(|(g, (_, bars))| {
            let value = bars.get(s)?.1;
            let left = g as f64 + 0.1 + s as f64 * width;
            Some(Rectangle::new(
                [(left, floor), (left + width * 0.9, y(value))],
                colour.filled(),
            ))
        });
        chart
            .draw_series(bars)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled()));
        let values = (panel.groups.iter().enumerate()).filter_map(|(g, (_, bars))| {
            let value = bars.get(s)?.1;
            let middle = g as f64 + 0.1 + (s as f64 + 0.45) * width;
            let style = ("sans-serif", 12).into_font().into_text_style(area);
            let style = style.pos(Pos::new(HPos::Center, VPos::Bottom));
            Some(Text::new(round(value), (middle, y(value)), style))
        });
        chart.draw_series(values)?;
    }
    if let Some((value, name)) = reference {
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, y(value)), (groups as f64, y(value))],
                6,
                4,
                BLACK.stroke_width(1),
            ))?
            .label(name)
            .legend(|(x, y)| PathElement::new([(x, y), (x + 12, y)], BLACK));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

/// One line of a [`LinePanel`]: its name and its (x, y) points, in order.
pub struct Line {
    pub name: &'static str,
    pub points: Vec<(f64, f64)>,
}

/// A panel of lines over a shared x axis (time, for the soak).
pub struct LinePanel {
    pub title: String,
    pub y_label: String,
    pub lines: Vec<Line>,
}

/// Draws `panels` one above the other into the SVG `file`, each a line per series from a
/// value axis at 0, with `x_label` on the shared x axis.
pub fn lines(file: &Path, panels: &[LinePanel], x_label: &str) -> Result<()> {
    stacked(file, panels, 300, |area, panel| {
        draw_lines(area, panel, x_label)
    })
}

fn draw_lines(
    area: &Area,
    panel: &LinePanel,
    x_label: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let points = || panel.lines.iter().flat_map(|line| line.points.iter());
    let right = points().map(|(x, _)| *x).fold(1e-9, f64::max);
    // Room above the lines for the legend.
    let top = points().map(|(_, y)| *y).fold(1e-9, f64::max) * 1.4;
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(34)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..right, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(&panel.y_label)
        .y_label_formatter(&|v| round(*v))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 14))
        .draw()?;
    for (s, line) in panel.lines.iter().enumerate() {
        let colour = COLOURS[s % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(
                line.points.iter().copied(),
                colour.stroke_width(2),
            ))?
            .label(line.name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 12, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

/// A value as a bar's label: two decimals below 10, one below 100, none above.
fn round(value: f64) -> String {
    match value.abs() {
        v if v < 10.0 => format!("{value:.2}"),
        v if v < 100.0 => format!("{value:.1}"),
        _ => format!("{value:.0}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_chart_names_its_panels_and_lines() {
        let file = std::env::temp_dir().join(format!("bench-lines-{}.svg", std::process::id()));
        let panel = |title: &str| LinePanel {
            title: title.to_owned(),
            y_label: "ms".to_owned(),
            lines: ["plain", "deflated"]
                .into_iter()
                .map(|name| Line {
                    name,
                    points: vec![(10.0, 1.0), (20.0, 2.5), (30.0, 1.5)],
                })
                .collect(),
        };
        lines(&file, &[panel("p50"), panel("p99")], "seconds").unwrap();
        let svg = std::fs::read_to_string(&file).unwrap();
        std::fs::remove_file(&file).unwrap();
        for text in ["p50", "p99"] {
            assert_eq!(svg.matches(&format!("\n{text}\n")).count(), 1, "{text}");
        }
        // Each panel has its axes and its legend.
        for text in ["seconds", "ms", "plain", "deflated"] {
            assert_eq!(svg.matches(&format!("\n{text}\n")).count(), 2, "{text}");
        }
        // A line of three points for each run in each panel (the legend's marks have two).
        let drawn = (svg.lines())
            .filter(|line| line.contains("stroke-width=\"2\"") && line.matches(',').count() == 3)
            .count();
        assert_eq!(drawn, 4, "{svg}");
    }

    #[test]
    fn a_chart_has_every_group_and_series_named() {
        let file = std::env::temp_dir().join(format!("bench-chart-{}.svg", std::process::id()));
        let groups = [
            "13 B text",
            "64 KiB binary",
            "1 MiB binary",
            "in flight",
            "sockets",
        ]
        .iter()
        .map(|group| (group.to_string(), vec![("ours", 1.1), ("theirs", 0.9)]))
        .collect();
        let panels = [Panel {
            title: "a panel".to_owned(),
            groups,
        }];
        grouped_bars(
            &file,
            &panels,
            "ratio",
            Some((1.0, "reference")),
            Scale::Linear,
        )
        .unwrap();
        let svg = std::fs::read_to_string(&file).unwrap();
        std::fs::remove_file(&file).unwrap();
        for text in [
            "13 B text",
            "64 KiB binary",
            "1 MiB binary",
            "in flight",
            "sockets",
        ] {
            assert_eq!(
                svg.matches(&format!("\n{text}\n")).count(),
                1,
                "{text}:\n{svg}"
            );
        }
        for text in ["a panel", "ours", "theirs", "reference", "ratio"] {
            assert!(svg.contains(&format!("\n{text}\n")), "{text}");
        }
    }
}
