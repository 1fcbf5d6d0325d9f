//! The rate-distortion figure of a table (`baler plot --compressed`): each column's max |error|
//! over its range for the reconstruction and for the error-bounded mode at the same sizes.

use super::canvas::{drawing, note, text, tick, Figure, Surface};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Size of the figure in pixels.
pub const RATE_FIGURE_SIZE: (u32, u32) = (1500, 560);

/// Where exact values sit on the log axis (an error of 0 has no place on it).
const FLOOR: f64 = 1e-7;

const COLORS: [RGBColor; 3] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
];

/// Max |error| / range per column, one series per way of compressing.
pub struct RateFigure {
    /// The series: a label and one value per column.
    pub series: Vec<(String, Vec<f64>)>,
    /// Column names, for the caption's count.
    pub columns: usize,
}

impl Figure for RateFigure {
    fn size(&self) -> (u32, u32) {
        RATE_FIGURE_SIZE
    }

    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        _surface: Surface,
    ) -> Result<(), String> {
        let values = self.series.iter().flat_map(|(_, v)| v.iter().copied());
        let high = values.fold(FLOOR, |m, v| if v.is_finite() { m.max(v) } else { m });
        let last = self.columns.max(1) as f64 - 0.5;
        let mut chart = ChartBuilder::on(area)
            .caption(
                "Max |error| / range per column at the same size (log scale; exact values at the floor)",
                text(18),
            )
            .margin(16)
            .margin_right(28)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(-0.5..last, (FLOOR / 2.0..high * 3.0).log_scale())
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .x_desc("column (in file order, as in the table)")
            .y_desc("max |error| / range")
            .x_labels(self.columns.clamp(2, 32))
            .y_labels(10)
            .x_label_formatter(&|x| format!("{}", x.round()))
            .y_label_formatter(&|y| tick(*y))
            .label_style(text(13))
            .axis_desc_style(text(14))
            .light_line_style(TRANSPARENT)
            .bold_line_style(BLACK.mix(0.08))
            .draw()
            .map_err(drawing)?;
        for ((label, values), color) in self.series.iter().zip(COLORS.iter().cycle()) {
            let color = *color;
            let points: Vec<(f64, f64)> = values
                .iter()
                .enumerate()
                .map(|(c, &v)| (c as f64, if v.is_finite() { v.max(FLOOR) } else { high }))
                .collect();
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(drawing)?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(drawing)?;
        }
        let plot = chart.plotting_area().strip_coord_spec();
        plot.draw_text(
            "lower is better; one relative bound for every column in the error-bounded runs",
            &note(14),
            (12, 10),
        )
        .map_err(drawing)?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .label_font(text(14))
            .draw()
            .map_err(drawing)?;
        Ok(())
    }
}
