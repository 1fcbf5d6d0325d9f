//! Figures for `[frames, h, w]` fields: original | reconstructed | difference heatmaps with
//! colour bars, as PNG for chosen frames and as an animated GIF over all frames.

use super::canvas::{drawing, note, render, text, tick, Figure, Surface};
use super::colormap::{ColorMap, Palette, LEVELS};
use baler::data::AtomicFile;
use indicatif::ProgressBar;
use plotters::coord::Shift;
use plotters::element::BitMapElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use rayon::prelude::*;
use std::borrow::Cow;
use std::path::Path;

/// Size of a frame figure in pixels.
pub const FRAME_FIGURE_SIZE: (u32, u32) = (1290, 400);

/// At most this many frames go into the GIF; longer fields are sampled evenly.
pub const MAX_GIF_FRAMES: usize = 300;

/// Width of a colour bar in pixels.
const BAR_WIDTH: u32 = 16;

/// GIF frame delay in hundredths of a second.
const GIF_DELAY: u16 = 10;

/// Frames rendered in parallel before they are written to the GIF (bounds memory).
const GIF_BATCH: usize = 8;

/// The colour scales shared by every frame: values (original and reconstructed) and
/// differences (symmetric around zero).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scales {
    /// Smallest and largest value of the original and the reconstruction.
    pub values: (f64, f64),
    /// Largest |reconstructed - original|.
    pub difference: f64,
}

impl Scales {
    /// The scales of a whole field.
    pub fn of(original: &[f64], reconstructed: &[f64]) -> Scales {
        let (mut low, mut high, mut difference) = (f64::MAX, f64::MIN, 0f64);
        for (&a, &b) in original.iter().zip(reconstructed) {
            low = low.min(a).min(b);
            high = high.max(a).max(b);
            difference = difference.max((b - a).abs());
        }
        let (low, high) = super::stats::widen(low, high);
        Scales {
            values: (low, high),
            difference: if difference > 0.0 { difference } else { 1e-12 },
        }
    }
}

/// One frame: original, reconstructed and difference side by side.
pub struct FrameFigure<'a> {
    /// Frame index.
    pub index: usize,
    /// Number of frames in the field.
    pub count: usize,
    /// Frame height and width in values.
    pub shape: (usize, usize),
    /// The original frame, row-major.
    pub original: &'a [f64],
    /// The reconstructed frame.
    pub reconstructed: &'a [f64],
    /// Colour scales shared by all frames.
    pub scales: Scales,
}

impl FrameFigure<'_> {
    fn rmse_and_max(&self) -> (f64, f64) {
        let (mut sq, mut max) = (0f64, 0f64);
        for (&a, &b) in self.original.iter().zip(self.reconstructed) {
            let d = b - a;
            sq += d * d;
            max = max.max(d.abs());
        }
        ((sq / self.original.len().max(1) as f64).sqrt(), max)
    }
}

impl Figure for FrameFigure<'_> {
    fn size(&self) -> (u32, u32) {
        FRAME_FIGURE_SIZE
    }

    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        surface: Surface,
    ) -> Result<(), String> {
        let (head, body) = area.split_vertically(46);
        let (rmse, max) = self.rmse_and_max();
        head.draw_text(
            &format!("frame {} (of 0 to {})", self.index, self.count - 1),
            &text(20),
            (20, 12),
        )
        .map_err(drawing)?;
        head.draw_text(
            &format!(
                "RMSE {} ({:.2}% of the range) \u{b7} max |difference| {} ({:.2}% of the range)",
                tick(rmse),
                100.0 * rmse / (self.scales.values.1 - self.scales.values.0),
                tick(max),
                100.0 * max / (self.scales.values.1 - self.scales.values.0),
            ),
            &note(14),
            (300, 16),
        )
        .map_err(drawing)?;
        let difference: Vec<f64> = self
            .reconstructed
            .iter()
            .zip(self.original)
            .map(|(b, a)| b - a)
            .collect();
        let d = self.scales.difference;
        let panels = body.split_evenly((1, 3));
        let heatmaps = [
            Heatmap {
                title: "original",
                values: self.original,
                map: ColorMap::Viridis,
                range: self.scales.values,
                bar_label: "value",
            },
            Heatmap {
                title: "reconstructed",
                values: self.reconstructed,
                map: ColorMap::Viridis,
                range: self.scales.values,
                bar_label: "value",
            },
            Heatmap {
                title: "difference (reconstructed \u{2212} original)",
                values: &difference,
                map: ColorMap::BlueWhiteRed,
                range: (-d, d),
                bar_label: "difference",
            },
        ];
        for (heatmap, panel) in heatmaps.iter().zip(&panels) {
            heatmap.draw(panel, self.shape, surface)?;
        }
        Ok(())
    }
}

/// One heatmap with its colour bar.
struct Heatmap<'a> {
    title: &'a str,
    values: &'a [f64],
    map: ColorMap,
    range: (f64, f64),
    bar_label: &'a str,
}

impl Heatmap<'_> {
    fn color(&self, v: f64) -> RGBColor {
        let (low, high) = self.range;
        self.map.at((v - low) / (high - low))
    }

    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        (h, w): (usize, usize),
        surface: Surface,
    ) -> Result<(), String> {
        let (width, height) = area.dim_in_pixel();
        // Label areas and the colour bar around a plot whose cells keep their aspect ratio.
        let (top, y_labels, x_labels, bar) = (34u32, 44u32, 34u32, BAR_WIDTH + 70);
        let room_w = width.saturating_sub(y_labels + bar + 16).max(10);
        let room_h = height.saturating_sub(top + x_labels + 8).max(10);
        let cell = (room_w as f64 / w as f64).min(room_h as f64 / h as f64);
        let plot_w = ((w as f64 * cell).round() as u32).max(1);
        let plot_h = ((h as f64 * cell).round() as u32).max(1);
        let left = 8 + (room_w - plot_w.min(room_w)) as i32 / 2;
        let centered = text(16).pos(Pos::new(HPos::Center, VPos::Top));
        let middle = left + (y_labels + plot_w / 2) as i32;
        area.draw_text(self.title, &centered, (middle, 6))
            .map_err(drawing)?;
        let chart_area = area
            .clone()
            .shrink((left, top as i32), (y_labels + plot_w, plot_h + x_labels));
        let mut chart = ChartBuilder::on(&chart_area)
            .x_label_area_size(x_labels)
            .y_label_area_size(y_labels)
            .build_cartesian_2d(0.0..w as f64, 0.0..h as f64)
            .map_err(drawing)?;
        // Row 0 is drawn on top, as in an image.
        let row_label = |y: &f64| format!("{}", (h as f64 - y).round());
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(6)
            .y_labels(6)
            .x_label_formatter(&|x| format!("{}", x.round()))
            .y_label_formatter(&row_label)
            .label_style(text(12))
            .draw()
            .map_err(drawing)?;
        let colors: Vec<RGBColor> = self.values.iter().map(|&v| self.color(v)).collect();
        match surface {
            Surface::Bitmap => {
                // One bitmap, each pixel the colour of its nearest cell.
                let plot = chart.plotting_area().strip_coord_spec();
                let (pw, ph) = plot.dim_in_pixel();
                let columns: Vec<usize> = (0..pw as usize)
                    .map(|px| (px * w / pw as usize).min(w - 1))
                    .collect();
                let line = pw as usize * 3;
                let mut pixels: Vec<u8> = Vec::with_capacity(line * ph as usize);
                let mut previous = usize::MAX;
                for py in 0..ph as usize {
                    let r = (py * h / ph as usize).min(h - 1);
                    if r == previous {
                        // The same cells as the line above.
                        pixels.extend_from_within(pixels.len() - line..);
                        continue;
                    }
                    previous = r;
                    for &c in &columns {
                        let RGBColor(red, green, blue) = colors[r * w + c];
                        pixels.extend_from_slice(&[red, green, blue]);
                    }
                }
                let image = BitMapElement::with_owned_buffer((0, 0), (pw, ph), pixels)
                    .ok_or_else(|| "drawing: heatmap buffer of the wrong size".to_string())?;
                plot.draw(&image).map_err(drawing)?;
            }
            Surface::Vector => {
                // One rectangle per cell.
                let cells = (0..h).flat_map(|r| (0..w).map(move |c| (r, c)));
                chart
                    .draw_series(cells.map(|(r, c)| {
                        let (x, y) = (c as f64, (h - 1 - r) as f64);
                        Rectangle::new([(x, y), (x + 1.0, y + 1.0)], colors[r * w + c].filled())
                    }))
                    .map_err(drawing)?;
            }
        }
        // The colour bar, as tall as the plot, with its label above and ticks to its right.
        let bar_left = left + (y_labels + plot_w) as i32 + 14;
        area.draw_text(
            self.bar_label,
            &note(13).pos(Pos::new(HPos::Left, VPos::Bottom)),
            (bar_left, top as i32 - 4),
        )
        .map_err(drawing)?;
        let bar_area = area
            .clone()
            .shrink((bar_left, top as i32), (BAR_WIDTH, plot_h));
        let (low, high) = self.range;
        let colour_bar = ChartBuilder::on(&bar_area)
            .build_cartesian_2d(0.0..1.0, low..high)
            .map_err(drawing)?;
        let step = (high - low) / LEVELS as f64;
        colour_bar
            .plotting_area()
            .draw(&Rectangle::new(
                [(0.0, low), (1.0, high)],
                BLACK.stroke_width(1),
            ))
            .map_err(drawing)?;
        for level in 0..LEVELS {
            let y = low + level as f64 * step;
            colour_bar
                .plotting_area()
                .draw(&Rectangle::new(
                    [(0.0, y), (1.0, y + step)],
                    self.map.level(level).filled(),
                ))
                .map_err(drawing)?;
        }
        let base = area.get_base_pixel();
        let label = text(12).pos(Pos::new(HPos::Left, VPos::Center));
        for value in nice_ticks(low, high, 6) {
            let (x, y) = colour_bar.plotting_area().map_coordinate(&(1.0, value));
            let (x, y) = (x - base.0, y - base.1);
            area.draw(&PathElement::new(
                vec![(x, y), (x + 4, y)],
                BLACK.stroke_width(1),
            ))
            .map_err(drawing)?;
            area.draw_text(&tick(value), &label, (x + 7, y))
                .map_err(drawing)?;
        }
        Ok(())
    }
}

/// About `count` round tick values (1, 2 or 5 times a power of ten apart) within
/// `[low, high]`.
pub fn nice_ticks(low: f64, high: f64, count: usize) -> Vec<f64> {
    if high.partial_cmp(&low) != Some(std::cmp::Ordering::Greater) || count == 0 {
        return vec![low];
    }
    let rough = (high - low) / count as f64;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * power);
    let first = (low / step).ceil() as i64;
    let last = (high / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// Writes an animated GIF of `figures(i)` for each `i` in `frames`, rendering a few at a time
/// in parallel; `bar` advances one step per frame.
pub fn write_gif<'a, F>(
    path: &Path,
    frames: &[usize],
    figure: F,
    bar: &ProgressBar,
) -> Result<(), String>
where
    F: Fn(usize) -> FrameFigure<'a> + Sync,
{
    let palette = Palette::for_frames();
    let (width, height) = FRAME_FIGURE_SIZE;
    let at = |e: gif::EncodingError| format!("{}: {e}", path.display());
    let mut file = AtomicFile::create(path)?;
    {
        let mut encoder =
            gif::Encoder::new(file.writer(), width as u16, height as u16, &palette.bytes)
                .map_err(at)?;
        encoder.set_repeat(gif::Repeat::Infinite).map_err(at)?;
        // The first frame, indexed in full, is the reference the others are indexed against.
        let Some(&first) = frames.first() else {
            return Err(format!("{}: no frames to animate", path.display()));
        };
        let reference = render(&figure(first))?.pixels;
        let reference_indices = palette.index(&reference);
        for batch in frames.chunks(GIF_BATCH) {
            let indexed: Result<Vec<Vec<u8>>, String> = batch
                .par_iter()
                .map(|&i| {
                    if i == first {
                        return Ok(reference_indices.clone());
                    }
                    let image = render(&figure(i))?;
                    Ok(palette.index_like(
                        &image.pixels,
                        width as usize,
                        (&reference, &reference_indices),
                    ))
                })
                .collect();
            for pixels in indexed? {
                let frame = gif::Frame {
                    width: width as u16,
                    height: height as u16,
                    delay: GIF_DELAY,
                    buffer: Cow::Owned(pixels),
                    ..gif::Frame::default()
                };
                encoder.write_frame(&frame).map_err(at)?;
                bar.inc(1);
            }
        }
        encoder
            .into_inner()
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(file.commit()?)
}

/// The frames that go into the GIF: all, or an even sample of [`MAX_GIF_FRAMES`].
pub fn gif_frames(count: usize) -> Vec<usize> {
    let stride = count.div_ceil(MAX_GIF_FRAMES).max(1);
    (0..count).step_by(stride).collect()
}

#[cfg(test)]
mod tests {
    use super::nice_ticks;

    #[test]
    fn ticks_are_round_and_inside() {
        let close = |got: Vec<f64>, want: &[f64]| {
            assert_eq!(got.len(), want.len(), "{got:?}");
            assert!(
                got.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
                "{got:?}"
            );
        };
        close(nice_ticks(0.0, 1.0, 5), &[0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        close(
            nice_ticks(-0.013, 0.047, 6),
            &[-0.01, 0.0, 0.01, 0.02, 0.03, 0.04],
        );
        close(nice_ticks(3.0, 3.0, 5), &[3.0]);
    }
}
