//! Draws an experiment's [`Plot`] as SVG: lines over a numeric x axis or groups of bars, with
//! a legend at the right. Only plotters' SVG backend: text becomes `<text>` elements laid out
//! by the viewer (no fonts are loaded), as in `storelab report`.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::report::{Plot, PlotKind};
// The palette, error conversion and tick labels of `storelab report`, so that both draw alike.
use crate::report::{axis_text as tick, colour, plot_error};

/// Width of a plot, in pixels.
const WIDTH_PX: u32 = 900;
/// Height of a plot, in pixels.
const HEIGHT_PX: u32 = 420;
/// Room at the right for the legend, at least.
const LEGEND_MIN_PX: u32 = 170;

/// The range of an axis over `values`: from zero (linear) or a power of ten (log) to a
/// little above the largest.
fn range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let values: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    if log {
        let positive: Vec<f64> = values.iter().copied().filter(|v| *v > 0.0).collect();
        if positive.is_empty() {
            return (1.0, 10.0);
        }
        let lo = positive.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = positive.iter().copied().fold(0.0_f64, f64::max);
        let lo = 10f64.powf(lo.log10().floor());
        let hi = 10f64.powf((hi * 1.2).log10().ceil()).max(lo * 10.0);
        (lo, hi)
    } else {
        let hi = values.iter().copied().fold(0.0_f64, f64::max);
        let lo = values.iter().copied().fold(0.0_f64, f64::min);
        (lo, if hi > lo { hi * 1.1 } else { lo + 1.0 })
    }
}

/// The plot as an SVG document.
pub fn render(plot: &Plot) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH_PX, HEIGHT_PX)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let names: Vec<String> = match &plot.kind {
            PlotKind::Lines { series, .. } => series.iter().map(|s| s.name.clone()).collect(),
            PlotKind::Bars { series, .. } => series.iter().map(|(n, _)| n.clone()).collect(),
        };
        let longest = names.iter().map(|s| s.len()).max().unwrap_or(0) as u32;
        let legend_px = (30 + 8 * longest).clamp(LEGEND_MIN_PX, WIDTH_PX / 2);
        let (chart_area, legend) = root.split_horizontally(WIDTH_PX - legend_px);
        match &plot.kind {
            PlotKind::Lines { series, log_x } => {
                let (x0, x1) = range(
                    series.iter().flat_map(|s| s.points.iter().map(|p| p.0)),
                    *log_x,
                );
                let (x0, x1) = if *log_x {
                    (x0, x1)
                } else {
                    let lo = series
                        .iter()
                        .flat_map(|s| s.points.iter().map(|p| p.0))
                        .fold(f64::INFINITY, f64::min);
                    let hi = series
                        .iter()
                        .flat_map(|s| s.points.iter().map(|p| p.0))
                        .fold(f64::NEG_INFINITY, f64::max);
                    if lo.is_finite() && hi > lo {
                        (lo, hi)
                    } else {
                        (x0, x1)
                    }
                };
                let (y0, y1) = range(
                    series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
                    plot.log_y,
                );
                draw_lines(&chart_area, plot, series, (x0, x1), (y0, y1), *log_x)?;
            }
            PlotKind::Bars { categories, series } => {
                let (y0, y1) = range(
                    series.iter().flat_map(|(_, v)| v.iter().copied()),
                    plot.log_y,
                );
                draw_bars(&chart_area, plot, categories, series, (y0, y1))?;
            }
        }
        draw_legend(&legend, &names)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

fn draw_lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    plot: &Plot,
    series: &[super::report::Series],
    x: (f64, f64),
    y: (f64, f64),
    log_x: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&plot.title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(44)
        .y_label_area_size(64);
    // Four arms: the coordinate types differ with each log/linear choice; the drawing is the
    // same macro-free code in each.
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(plot.x_label.as_str())
                .y_desc(plot.y_label.as_str())
                .label_style(("sans-serif", 14))
                .x_label_formatter(&|v| tick(*v))
                .y_label_formatter(&|v| tick(*v))
                .draw()
                .map_err(plot_error)?;
            for (i, s) in series.iter().enumerate() {
                let style = colour(i).stroke_width(2);
                chart
                    .draw_series(std::iter::once(PathElement::new(s.points.clone(), style)))
                    .map_err(plot_error)?;
                chart
                    .draw_series(
                        s.points
                            .iter()
                            .map(|&p| Circle::new(p, 3, colour(i).filled())),
                    )
                    .map_err(plot_error)?;
            }
        }};
    }
    match (log_x, plot.log_y) {
        (false, false) => draw!(
            builder
                .build_cartesian_2d(x.0..x.1, y.0..y.1)
                .map_err(plot_error)?
        ),
        (false, true) => draw!(
            builder
                .build_cartesian_2d(x.0..x.1, (y.0..y.1).log_scale())
                .map_err(plot_error)?
        ),
        (true, false) => draw!(
            builder
                .build_cartesian_2d((x.0..x.1).log_scale(), y.0..y.1)
                .map_err(plot_error)?
        ),
        (true, true) => draw!(
            builder
                .build_cartesian_2d((x.0..x.1).log_scale(), (y.0..y.1).log_scale())
                .map_err(plot_error)?
        ),
    }
    Ok(())
}

/// Fraction of a group's width left empty on each side.
const GROUP_PADDING: f64 = 0.12;

fn draw_bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    plot: &Plot,
    categories: &[String],
    series: &[(String, Vec<f64>)],
    y: (f64, f64),
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&plot.title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(44)
        .y_label_area_size(64);
    let x = 0.0..categories.len().max(1) as f64;
    let base = if plot.log_y { y.0 } else { 0.0_f64.max(y.0) };
    let rects = |series: &[(String, Vec<f64>)]| {
        let mut out = Vec::new();
        let width = (1.0 - 2.0 * GROUP_PADDING) / series.len().max(1) as f64;
        for (b, (_, values)) in series.iter().enumerate() {
            for (g, &v) in values.iter().enumerate() {
                if !v.is_finite() || v <= base {
                    continue;
                }
                let x0 = g as f64 + GROUP_PADDING + b as f64 * width;
                out.push(Rectangle::new(
                    [(x0, base), (x0 + width * 0.9, v)],
                    colour(b).filled(),
                ));
            }
        }
        out
    };
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(0)
                .y_desc(plot.y_label.as_str())
                .label_style(("sans-serif", 14))
                .y_label_formatter(&|v| tick(*v))
                .draw()
                .map_err(plot_error)?;
            chart.draw_series(rects(series)).map_err(plot_error)?;
            let (area_x, area_y) = area.get_base_pixel();
            let style = TextStyle::from(("sans-serif", 14).into_font())
                .pos(Pos::new(HPos::Center, VPos::Top))
                .color(&BLACK);
            for (g, name) in categories.iter().enumerate() {
                let (px, py) = chart.backend_coord(&(g as f64 + 0.5, base));
                area.draw_text(name, &style, (px - area_x, py - area_y + 6))
                    .map_err(plot_error)?;
            }
            let (px, py) = chart.backend_coord(&(categories.len() as f64 / 2.0, base));
            let label = TextStyle::from(("sans-serif", 15).into_font())
                .pos(Pos::new(HPos::Center, VPos::Top))
                .color(&BLACK);
            area.draw_text(&plot.x_label, &label, (px - area_x, py - area_y + 24))
                .map_err(plot_error)?;
        }};
    }
    if plot.log_y {
        draw!(
            builder
                .build_cartesian_2d(x, (y.0..y.1).log_scale())
                .map_err(plot_error)?
        );
    } else {
        draw!(
            builder
                .build_cartesian_2d(x, y.0..y.1)
                .map_err(plot_error)?
        );
    }
    Ok(())
}

fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, names: &[String]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let style = TextStyle::from(("sans-serif", 15).into_font())
        .pos(Pos::new(HPos::Left, VPos::Center))
        .color(&BLACK);
    for (i, name) in names.iter().enumerate() {
        let y = 50 + 22 * i as i32;
        area.draw(&Rectangle::new(
            [(4, y - 6), (16, y + 6)],
            colour(i).filled(),
        ))
        .map_err(plot_error)?;
        area.draw_text(name, &style, (22, y)).map_err(plot_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::report::Series;

    /// Both kinds render to SVG holding the title, the legend and the category names.
    #[test]
    fn renders_lines_and_bars() {
        let lines = Plot {
            file: "l.svg".into(),
            title: "pages per scan".into(),
            x_label: "rows".into(),
            y_label: "pages".into(),
            log_y: true,
            kind: PlotKind::Lines {
                series: vec![
                    Series {
                        name: "heap".into(),
                        points: vec![(10.0, 3.0), (100.0, 30.0)],
                    },
                    Series {
                        name: "clustered".into(),
                        points: vec![(10.0, 1.0), (100.0, 4.0)],
                    },
                ],
                log_x: true,
            },
        };
        let svg = render(&lines).unwrap();
        for text in ["pages per scan", "heap", "clustered"] {
            assert!(svg.contains(text), "{text} missing");
        }
        let bars = Plot {
            kind: PlotKind::Bars {
                categories: vec!["sync".into(), "io_uring".into()],
                series: vec![("buffered".into(), vec![1.0, 2.0])],
            },
            log_y: false,
            ..lines
        };
        let svg = render(&bars).unwrap();
        for text in ["sync", "io_uring", "buffered"] {
            assert!(svg.contains(text), "{text} missing");
        }
    }

    /// No points, a zero, a NaN: still a plot, no panic.
    #[test]
    fn degenerate_values_render() {
        let plot = Plot {
            file: "d.svg".into(),
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            log_y: true,
            kind: PlotKind::Bars {
                categories: vec!["a".into()],
                series: vec![("s".into(), vec![f64::NAN]), ("z".into(), vec![0.0])],
            },
        };
        render(&plot).unwrap();
        let plot = Plot {
            kind: PlotKind::Lines {
                series: vec![],
                log_x: false,
            },
            ..plot
        };
        render(&plot).unwrap();
    }
}
