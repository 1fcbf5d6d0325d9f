//! Where figures are drawn: the embedded font, RGB buffers, PNG and SVG files, and the text
//! styles and number formats every figure shares.

use super::glyphs::FontText;
use baler::data::AtomicFile;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

/// DejaVu Sans (subset; license in `cli/assets/fonts/LICENSE`): text renders the same on
/// every machine, with no system fonts.
pub(crate) static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-subset.ttf");

/// The font family every figure uses (the embedded font is registered under it).
pub const FAMILY: &str = "sans-serif";

/// Registers the embedded font with plotters, once.
pub fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
                .map_err(|_| "the embedded font does not load".to_string())
        })
        .clone()
}

/// A drawing error as a one-line message.
pub fn drawing<E: std::fmt::Display>(error: E) -> String {
    format!("drawing: {error}")
}

/// What a figure is drawn on: pixels, or vector shapes (where a bitmap would be written
/// pixel by pixel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// An RGB buffer (PNG, GIF).
    Bitmap,
    /// SVG.
    Vector,
}

/// A figure that can be drawn on any plotters backend (bitmap or SVG).
pub trait Figure: Sync {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws the figure on `area`, which is already filled white.
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        surface: Surface,
    ) -> Result<(), String>;
}

/// An RGB image, 3 bytes per pixel, row-major.
pub struct Rgb {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The pixels.
    pub pixels: Vec<u8>,
}

/// Renders `figure` into an RGB buffer, with text from the embedded font.
pub fn render<F: Figure>(figure: &F) -> Result<Rgb, String> {
    register_font()?;
    let (width, height) = figure.size();
    let mut pixels = vec![255u8; width as usize * height as usize * 3];
    {
        let backend = BitMapBackend::with_buffer(&mut pixels, (width, height));
        let root = FontText(backend).into_drawing_area();
        figure.draw(&root, Surface::Bitmap)?;
        root.present().map_err(drawing)?;
    }
    Ok(Rgb {
        width,
        height,
        pixels,
    })
}

/// Writes `image` as a PNG file (atomically).
pub fn write_png(image: &Rgb, path: &Path) -> Result<(), String> {
    let at = |e: png::EncodingError| format!("{}: {e}", path.display());
    let mut file = AtomicFile::create(path)?;
    {
        let mut encoder = png::Encoder::new(file.writer(), image.width, image.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Balanced);
        let mut writer = encoder.write_header().map_err(at)?;
        writer.write_image_data(&image.pixels).map_err(at)?;
        writer.finish().map_err(at)?;
    }
    Ok(file.commit()?)
}

/// Draws `figure` as an SVG file (atomically). Text is left to the viewer's sans-serif font.
pub fn write_svg<F: Figure>(figure: &F, path: &Path) -> Result<(), String> {
    register_font()?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, figure.size()).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        figure.draw(&root, Surface::Vector)?;
        root.present().map_err(drawing)?;
    }
    let mut file = AtomicFile::create(path)?;
    file.writer()
        .write_all(svg.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(file.commit()?)
}

/// Text of `size` pixels in the figures' font and colour.
pub fn text(size: u32) -> TextStyle<'static> {
    TextStyle::from((FAMILY, size)).color(&BLACK)
}

/// Text of `size` pixels in a mid grey, for notes.
pub fn note(size: u32) -> TextStyle<'static> {
    TextStyle::from((FAMILY, size)).color(&RGBColor(90, 90, 90))
}

/// An axis tick label: short, in scientific notation when very large or small.
pub fn tick(x: f64) -> String {
    if x == 0.0 {
        return "0".to_string();
    }
    let magnitude = x.abs();
    if !(1e-3..1e5).contains(&magnitude) {
        let text = format!("{x:.1e}");
        return text.replace(".0e", "e");
    }
    let decimals = (3 - magnitude.log10().floor() as i32).clamp(0, 5) as usize;
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// `x`, or 0 when it is only rounding noise on an axis `span` long (ticks such as -5.6e-17).
pub fn snap(x: f64, span: f64) -> f64 {
    if x.abs() < span.abs() * 1e-9 {
        0.0
    } else {
        x
    }
}

/// A file name made of the safe characters of `name`.
pub fn file_stem(name: &str) -> String {
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    stem.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(250.0), "250");
        assert_eq!(tick(0.125), "0.125");
        assert_eq!(tick(-1.5), "-1.5");
        assert_eq!(tick(123456.0), "1.2e5");
        assert_eq!(tick(0.0001), "1e-4");
        assert_eq!(tick(snap(-5.55e-17, 1.0)), "0");
        assert_eq!(snap(1e-5, 1e-3), 1e-5);
    }

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("Muon_Px"), "Muon_Px");
        assert_eq!(file_stem("a/b c"), "a_b_c");
    }
}
