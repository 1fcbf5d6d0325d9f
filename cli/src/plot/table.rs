//! Figures for `[events, columns]` tables: one per column (original and reconstructed
//! distributions, residual, response) and an overview with one residual box per column.

use super::canvas::{drawing, note, snap, text, tick, Figure, Surface};
use super::stats::{mean_and_rms, min_max, quantile, widen, Histogram};
use baler::evaluate::metrics::ColumnSummary;
use baler::evaluate::number;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Bins of the distribution and residual histograms (odd: zero sits in the middle bin).
const BINS: usize = 61;

/// Size of a column figure in pixels.
pub const COLUMN_FIGURE_SIZE: (u32, u32) = (1500, 470);

const ORIGINAL: RGBColor = RGBColor(31, 119, 180);
const RECONSTRUCTED: RGBColor = RGBColor(214, 39, 40);
const RESIDUAL: RGBColor = RGBColor(80, 80, 80);
const RESPONSE: RGBColor = RGBColor(148, 103, 189);

/// How the bars of one histogram are drawn.
#[derive(Clone, Copy)]
enum Look {
    /// Translucent filled bars with an outline.
    Filled(RGBColor),
    /// An outline (a step line) only.
    Step(RGBColor),
}

/// One histogram panel: a title, an x-axis label, histograms on a shared log-count axis, and
/// notes in the top-left corner.
struct HistogramPanel {
    title: String,
    x_label: String,
    series: Vec<(Histogram, Look, &'static str)>,
    notes: Vec<String>,
    empty_message: Option<String>,
}

impl HistogramPanel {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let Some((first, _, _)) = self.series.first() else {
            return Ok(());
        };
        let (low, high) = (first.low, first.high);
        let max = self
            .series
            .iter()
            .map(|(h, _, _)| h.max_count())
            .max()
            .unwrap_or(0)
            .max(1);
        // Headroom above the tallest bar leaves room for the notes and the legend.
        let top = max as f64 * 25.0;
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, text(17))
            .margin(12)
            .margin_right(22)
            .x_label_area_size(48)
            .y_label_area_size(62)
            .build_cartesian_2d(low..high, (0.5f64..top).log_scale())
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc("count")
            .x_labels(6)
            .y_labels(8)
            .x_label_formatter(&|x| tick(snap(*x, high - low)))
            .y_label_formatter(&|y| tick(*y))
            .label_style(text(13))
            .axis_desc_style(text(14))
            .light_line_style(TRANSPARENT)
            .bold_line_style(BLACK.mix(0.08))
            .draw()
            .map_err(drawing)?;
        for (histogram, look, label) in &self.series {
            let bars: Vec<(f64, f64, u64)> = histogram.bars().collect();
            match *look {
                Look::Filled(color) => {
                    let series = chart
                        .draw_series(bars.iter().filter(|b| b.2 > 0).map(|&(l, r, c)| {
                            Rectangle::new([(l, 0.5), (r, c as f64)], color.mix(0.35).filled())
                        }))
                        .map_err(drawing)?;
                    if !label.is_empty() {
                        series.label(*label).legend(move |(x, y)| {
                            Rectangle::new([(x, y - 6), (x + 18, y + 6)], color.mix(0.35).filled())
                        });
                    }
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            step_outline(&bars),
                            color.stroke_width(1),
                        )))
                        .map_err(drawing)?;
                }
                Look::Step(color) => {
                    let series = chart
                        .draw_series(std::iter::once(PathElement::new(
                            step_outline(&bars),
                            color.stroke_width(2),
                        )))
                        .map_err(drawing)?;
                    if !label.is_empty() {
                        series.label(*label).legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                        });
                    }
                }
            }
        }
        if self.series.iter().any(|(_, _, label)| !label.is_empty()) {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK.mix(0.3))
                .label_font(text(13))
                .draw()
                .map_err(drawing)?;
        }
        let plot = chart.plotting_area().strip_coord_spec();
        for (i, line) in self.notes.iter().enumerate() {
            plot.draw_text(line, &text(13), (10, 8 + 18 * i as i32))
                .map_err(drawing)?;
        }
        if let Some(message) = &self.empty_message {
            let (w, h) = plot.dim_in_pixel();
            let style = note(15).pos(Pos::new(HPos::Center, VPos::Center));
            plot.draw_text(message, &style, (w as i32 / 2, h as i32 / 2))
                .map_err(drawing)?;
        }
        Ok(())
    }
}

/// The outline of a histogram as a step line; empty bins sit on the axis floor (0.5 on the log
/// scale).
fn step_outline(bars: &[(f64, f64, u64)]) -> Vec<(f64, f64)> {
    let floor = 0.5;
    let mut points = Vec::with_capacity(bars.len() * 2 + 2);
    if let Some(&(left, _, _)) = bars.first() {
        points.push((left, floor));
    }
    for &(left, right, count) in bars {
        let y = (count as f64).max(floor);
        points.push((left, y));
        points.push((right, y));
    }
    if let Some(&(_, right, _)) = bars.last() {
        points.push((right, floor));
    }
    points
}

/// The figure of one column.
pub struct ColumnFigure {
    title: String,
    subtitle: String,
    panels: [HistogramPanel; 3],
}

impl ColumnFigure {
    /// The figure of column `name`, from its values and its evaluation; `bounds` are the error
    /// bounds the summary's fractions refer to.
    pub fn new(
        name: &str,
        original: &[f64],
        reconstructed: &[f64],
        summary: &ColumnSummary,
        bounds: &[f64],
    ) -> ColumnFigure {
        let e = &summary.errors;
        let mut subtitle = format!(
            "max |error| {} ({:.2}% of the range {}) \u{b7} RMSE {} \u{b7} Wasserstein-1 {}",
            number(e.max_abs),
            100.0 * e.max_relative_to_range(),
            number(e.range),
            number(e.rmse),
            number(summary.wasserstein_1),
        );
        if let (Some(bound), Some(fraction)) = (bounds.first(), summary.within_bounds.first()) {
            subtitle += &format!(
                " \u{b7} within {bound:e} of the range: {:.2}%",
                100.0 * fraction
            );
        }
        ColumnFigure {
            title: name.to_string(),
            subtitle,
            panels: [
                distributions(name, original, reconstructed),
                residuals(original, reconstructed),
                responses(original, reconstructed),
            ],
        }
    }
}

impl Figure for ColumnFigure {
    fn size(&self) -> (u32, u32) {
        COLUMN_FIGURE_SIZE
    }

    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        _surface: Surface,
    ) -> Result<(), String> {
        let (head, body) = area.split_vertically(62);
        head.draw_text(&self.title, &text(22), (20, 8))
            .map_err(drawing)?;
        head.draw_text(&self.subtitle, &note(14), (20, 38))
            .map_err(drawing)?;
        for (panel, sub) in self.panels.iter().zip(body.split_evenly((1, 3))) {
            panel.draw(&sub)?;
        }
        Ok(())
    }
}

fn distributions(name: &str, original: &[f64], reconstructed: &[f64]) -> HistogramPanel {
    let (low, high) = min_max(original.iter().chain(reconstructed).copied()).unwrap_or((0.0, 1.0));
    let (low, high) = widen(low, high);
    let pad = 0.02 * (high - low);
    let (low, high) = (low - pad, high + pad);
    HistogramPanel {
        title: "distributions".to_string(),
        x_label: name.to_string(),
        series: vec![
            (
                Histogram::new(original, low, high, BINS),
                Look::Filled(ORIGINAL),
                "original",
            ),
            (
                Histogram::new(reconstructed, low, high, BINS),
                Look::Step(RECONSTRUCTED),
                "reconstructed",
            ),
        ],
        notes: Vec::new(),
        empty_message: None,
    }
}

fn residuals(original: &[f64], reconstructed: &[f64]) -> HistogramPanel {
    let residual: Vec<f64> = reconstructed
        .iter()
        .zip(original)
        .map(|(b, a)| b - a)
        .collect();
    let reach = residual.iter().fold(0f64, |m, r| m.max(r.abs())) * 1.05;
    let (mean, rms) = mean_and_rms(&residual);
    HistogramPanel {
        title: "residual".to_string(),
        x_label: "reconstructed \u{2212} original".to_string(),
        series: vec![(
            Histogram::new(&residual, -reach, reach, BINS),
            Look::Filled(RESIDUAL),
            "",
        )],
        notes: vec![
            format!("mean {}", number(mean)),
            format!("RMS {}", number(rms)),
        ],
        empty_message: None,
    }
}

fn responses(original: &[f64], reconstructed: &[f64]) -> HistogramPanel {
    let response: Vec<f64> = reconstructed
        .iter()
        .zip(original)
        .filter(|(_, a)| **a != 0.0)
        .map(|(b, a)| (b - a) / a)
        .collect();
    let zeros = original.len() - response.len();
    let mut magnitudes: Vec<f64> = response.iter().map(|r| r.abs()).collect();
    magnitudes.sort_by(f64::total_cmp);
    // The axis covers 98% of the responses: a few originals near zero make huge ones.
    let reach = quantile(&magnitudes, 0.98) * 1.1;
    let reach = if reach > 0.0 { reach } else { 1.0 };
    let histogram = Histogram::new(&response, -reach, reach, BINS);
    let mut notes = Vec::new();
    if !response.is_empty() {
        let mut sorted = response.clone();
        sorted.sort_by(f64::total_cmp);
        notes.push(format!("median {}", number(quantile(&sorted, 0.5))));
        notes.push(format!("{} beyond the axis", histogram.outside));
    }
    if zeros > 0 {
        notes.push(format!("{zeros} zero originals left out"));
    }
    HistogramPanel {
        title: "response".to_string(),
        x_label: "(reconstructed \u{2212} original) / original".to_string(),
        series: vec![(histogram, Look::Filled(RESPONSE), "")],
        notes,
        empty_message: response
            .is_empty()
            .then(|| "every original value is zero".to_string()),
    }
}

/// The spread of one column's residuals, in % of the column's range.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ResidualBox {
    min: f64,
    p01: f64,
    q1: f64,
    median: f64,
    q3: f64,
    p99: f64,
    max: f64,
}

/// One residual box per column, residuals in % of each column's range.
pub struct OverviewFigure {
    names: Vec<String>,
    boxes: Vec<ResidualBox>,
}

/// Height of the overview figure for `columns` columns.
pub fn overview_size(columns: usize) -> (u32, u32) {
    (1100, 150 + 26 * columns as u32)
}

impl OverviewFigure {
    /// From each column's original and reconstructed values and its range.
    pub fn new(names: &[String], columns: &[(Vec<f64>, Vec<f64>, f64)]) -> OverviewFigure {
        let boxes = columns
            .iter()
            .map(|(original, reconstructed, range)| {
                let scale = if *range > 0.0 { 100.0 / range } else { 0.0 };
                let mut residual: Vec<f64> = reconstructed
                    .iter()
                    .zip(original)
                    .map(|(b, a)| (b - a) * scale)
                    .collect();
                residual.sort_by(f64::total_cmp);
                let q = |p| quantile(&residual, p);
                ResidualBox {
                    min: q(0.0),
                    p01: q(0.01),
                    q1: q(0.25),
                    median: q(0.5),
                    q3: q(0.75),
                    p99: q(0.99),
                    max: q(1.0),
                }
            })
            .collect();
        OverviewFigure {
            names: names.to_vec(),
            boxes,
        }
    }
}

impl Figure for OverviewFigure {
    fn size(&self) -> (u32, u32) {
        overview_size(self.names.len())
    }

    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        _surface: Surface,
    ) -> Result<(), String> {
        let (head, body) = area.split_vertically(66);
        head.draw_text(
            "Residuals per column, in % of the column's range",
            &text(22),
            (20, 8),
        )
        .map_err(drawing)?;
        head.draw_text(
            "box: quartiles \u{b7} bar: median \u{b7} whiskers: 1st to 99th percentile \u{b7} dots: min and max",
            &note(14),
            (20, 40),
        )
        .map_err(drawing)?;
        let n = self.boxes.len();
        let reach = self
            .boxes
            .iter()
            .fold(0f64, |m, b| m.max(b.min.abs()).max(b.max.abs()))
            .max(1e-6)
            * 1.08;
        let mut chart = ChartBuilder::on(&body)
            .margin(14)
            .margin_right(30)
            .x_label_area_size(50)
            .y_label_area_size(170)
            .build_cartesian_2d(-reach..reach, -0.5..n as f64 - 0.5)
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_labels(9)
            .x_label_formatter(&|x| format!("{}%", tick(snap(*x, 2.0 * reach))))
            .x_desc("reconstructed \u{2212} original, % of the column's range")
            .label_style(text(13))
            .axis_desc_style(text(14))
            .light_line_style(TRANSPARENT)
            .bold_line_style(BLACK.mix(0.08))
            .draw()
            .map_err(drawing)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, -0.5), (0.0, n as f64 - 0.5)],
                BLACK.mix(0.4).stroke_width(1),
            )))
            .map_err(drawing)?;
        let base = area.get_base_pixel();
        let label = text(13).pos(Pos::new(HPos::Right, VPos::Center));
        for (i, (b, name)) in self.boxes.iter().zip(&self.names).enumerate() {
            // The first column on top.
            let y = (n - 1 - i) as f64;
            let (h, whisker) = (0.3, 0.15);
            let line = ORIGINAL.stroke_width(1);
            let elements: Vec<PathElement<(f64, f64)>> = vec![
                PathElement::new(vec![(b.p01, y), (b.q1, y)], line),
                PathElement::new(vec![(b.q3, y), (b.p99, y)], line),
                PathElement::new(vec![(b.p01, y - whisker), (b.p01, y + whisker)], line),
                PathElement::new(vec![(b.p99, y - whisker), (b.p99, y + whisker)], line),
            ];
            chart.draw_series(elements).map_err(drawing)?;
            chart
                .draw_series([
                    Rectangle::new([(b.q1, y - h), (b.q3, y + h)], ORIGINAL.mix(0.3).filled()),
                    Rectangle::new([(b.q1, y - h), (b.q3, y + h)], ORIGINAL.stroke_width(1)),
                ])
                .map_err(drawing)?;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(b.median, y - h), (b.median, y + h)],
                    RECONSTRUCTED.stroke_width(2),
                )))
                .map_err(drawing)?;
            chart
                .draw_series(
                    [b.min, b.max]
                        .into_iter()
                        .map(|x| Circle::new((x, y), 3, BLACK.mix(0.7).filled())),
                )
                .map_err(drawing)?;
            let (px, py) = chart.plotting_area().map_coordinate(&(-reach, y));
            area.draw_text(name, &label, (px - 10 - base.0, py - base.1))
                .map_err(drawing)?;
        }
        Ok(())
    }
}
