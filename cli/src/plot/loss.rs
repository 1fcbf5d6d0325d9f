//! The training loss curve, from the history `baler train` saves next to the model
//! (`MODEL.loss.json`).

use super::canvas::{drawing, note, text, tick, Figure, Surface};
use baler::evaluate::number;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Size of the loss figure in pixels.
pub const LOSS_FIGURE_SIZE: (u32, u32) = (1000, 560);

const TRAIN: RGBColor = RGBColor(31, 119, 180);
const VALIDATION: RGBColor = RGBColor(255, 127, 14);

/// One epoch of the history (`null` losses, written for non-finite values, read as `None`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
pub struct Epoch {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss.
    pub train: Option<f64>,
    /// Validation loss.
    pub validation: Option<f64>,
    /// Learning rate.
    #[serde(default)]
    pub lr: Option<f64>,
}

/// Where `baler train` saved the loss history of `model`.
pub fn history_path(model: &Path) -> PathBuf {
    model.with_extension("loss.json")
}

/// Reads a loss history; a file that is not one is an error.
pub fn read_history(path: &Path) -> Result<Vec<Epoch>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: not a loss history from baler train ({e})",
            path.display()
        )
    })
}

/// Train and validation loss per epoch on a log scale, with the best validation epoch marked.
pub struct LossFigure {
    history: Vec<Epoch>,
}

impl LossFigure {
    /// The figure of `history`; `None` when no epoch has a positive finite loss.
    pub fn new(history: Vec<Epoch>) -> Option<LossFigure> {
        let usable = |v: Option<f64>| v.is_some_and(|v| v.is_finite() && v > 0.0);
        history
            .iter()
            .any(|e| usable(e.train) || usable(e.validation))
            .then_some(LossFigure { history })
    }

    fn series(&self, pick: fn(&Epoch) -> Option<f64>) -> Vec<(f64, f64)> {
        self.history
            .iter()
            .filter_map(|e| {
                pick(e)
                    .filter(|v| v.is_finite() && *v > 0.0)
                    .map(|v| (e.epoch as f64, v))
            })
            .collect()
    }
}

impl Figure for LossFigure {
    fn size(&self) -> (u32, u32) {
        LOSS_FIGURE_SIZE
    }

    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        _surface: Surface,
    ) -> Result<(), String> {
        let train = self.series(|e| e.train);
        let validation = self.series(|e| e.validation);
        let all = train.iter().chain(&validation);
        let (low, high) = all.fold((f64::MAX, f64::MIN), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
        let (first, last) = self.history.iter().fold((usize::MAX, 0), |(lo, hi), e| {
            (lo.min(e.epoch), hi.max(e.epoch))
        });
        let (first, last) = (first as f64, (last as f64).max(first as f64 + 1.0));
        let mut chart = ChartBuilder::on(area)
            .caption("Training loss (MSE on normalized values)", text(20))
            .margin(16)
            .margin_right(28)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(first..last, (low / 1.5..high * 1.5).log_scale())
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("loss")
            .x_labels(10)
            .y_labels(10)
            .x_label_formatter(&|x| format!("{}", x.round()))
            .y_label_formatter(&|y| tick(*y))
            .label_style(text(13))
            .axis_desc_style(text(14))
            .light_line_style(TRANSPARENT)
            .bold_line_style(BLACK.mix(0.08))
            .draw()
            .map_err(drawing)?;
        for (points, color, label) in [
            (&train, TRAIN, "train"),
            (&validation, VALIDATION, "validation"),
        ] {
            if points.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(drawing)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        if let Some(&(epoch, loss)) = validation.iter().min_by(|a, b| a.1.total_cmp(&b.1)) {
            chart
                .draw_series(std::iter::once(Circle::new(
                    (epoch, loss),
                    5,
                    VALIDATION.stroke_width(2),
                )))
                .map_err(drawing)?;
            let plot = chart.plotting_area().strip_coord_spec();
            plot.draw_text(
                &format!(
                    "best validation: {} at epoch {}",
                    number(loss),
                    epoch.round()
                ),
                &note(14),
                (12, 10),
            )
            .map_err(drawing)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .label_font(text(14))
            .draw()
            .map_err(drawing)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baler_train::autoencoder::EpochLoss;

    #[test]
    fn reads_the_history_baler_train_writes() {
        let written = vec![
            EpochLoss {
                epoch: 1,
                train: 0.5,
                validation: 0.25,
                lr: 1e-3,
            },
            EpochLoss {
                epoch: 2,
                train: f64::INFINITY,
                validation: f64::NAN,
                lr: 1e-3,
            },
        ];
        let text = serde_json::to_string_pretty(&written).unwrap();
        let read: Vec<Epoch> = serde_json::from_str(&text).unwrap();
        assert_eq!(read[0].train, Some(0.5));
        assert_eq!(read[0].validation, Some(0.25));
        assert_eq!(read[1].epoch, 2);
        assert_eq!(read[1].train, None);
        assert!(LossFigure::new(read).is_some());
        assert_eq!(
            history_path(Path::new("dir/hzz.model")),
            Path::new("dir/hzz.loss.json")
        );
    }
}
