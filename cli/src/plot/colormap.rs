//! Colour maps for heatmaps (viridis for values, blue-white-red for differences) and the
//! fixed 256-colour palette the GIF frames are written with.

use plotters::style::RGBColor;
use std::collections::HashMap;

/// Distinct colours per map: fine enough to look continuous, few enough that both maps fit in
/// a GIF palette with greys for text; odd, so that the middle level is exactly the middle.
pub const LEVELS: usize = 101;

/// viridis (matplotlib) at 9 evenly spaced points.
const VIRIDIS: [(u8, u8, u8); 9] = [
    (0x44, 0x01, 0x54),
    (0x47, 0x2d, 0x7b),
    (0x3b, 0x52, 0x8b),
    (0x2c, 0x72, 0x8e),
    (0x21, 0x90, 0x8c),
    (0x27, 0xad, 0x81),
    (0x5d, 0xc8, 0x63),
    (0xaa, 0xdc, 0x32),
    (0xfd, 0xe7, 0x25),
];

/// ColorBrewer RdBu (11 classes), reversed: blue for negative, white for zero, red for positive.
const BLUE_WHITE_RED: [(u8, u8, u8); 11] = [
    (0x05, 0x30, 0x61),
    (0x21, 0x66, 0xac),
    (0x43, 0x93, 0xc3),
    (0x92, 0xc5, 0xde),
    (0xd1, 0xe5, 0xf0),
    (0xf7, 0xf7, 0xf7),
    (0xfd, 0xdb, 0xc7),
    (0xf4, 0xa5, 0x82),
    (0xd6, 0x60, 0x4d),
    (0xb2, 0x18, 0x2b),
    (0x67, 0x00, 0x1f),
];

/// A colour map: `t` in `[0, 1]` to a colour, quantized to [`LEVELS`] colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMap {
    /// Sequential, for values.
    Viridis,
    /// Diverging around the middle, for differences.
    BlueWhiteRed,
}

impl ColorMap {
    fn anchors(self) -> &'static [(u8, u8, u8)] {
        match self {
            ColorMap::Viridis => &VIRIDIS,
            ColorMap::BlueWhiteRed => &BLUE_WHITE_RED,
        }
    }

    /// The colour of level `level` (0..LEVELS).
    pub fn level(self, level: usize) -> RGBColor {
        let anchors = self.anchors();
        let t = level.min(LEVELS - 1) as f64 / (LEVELS - 1) as f64;
        let position = t * (anchors.len() - 1) as f64;
        let i = (position.floor() as usize).min(anchors.len() - 2);
        let f = position - i as f64;
        let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
        let (a, b) = (anchors[i], anchors[i + 1]);
        RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }

    /// The colour of `t` in `[0, 1]` (clamped; NaN reads as 0).
    pub fn at(self, t: f64) -> RGBColor {
        let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
        self.level((t * (LEVELS - 1) as f64).round() as usize)
    }
}

const CACHE_SLOTS: usize = 4096;

/// A direct-mapped cache of recently looked-up colours (packed RGB) and their indices.
struct Cache(Vec<(u32, u8)>);

impl Cache {
    fn new() -> Cache {
        Cache(vec![(u32::MAX, 0); CACHE_SLOTS])
    }
}

/// The GIF palette: both colour maps, then greys (text and lines on white) and black.
pub struct Palette {
    /// `[r, g, b, ...]`, 256 entries.
    pub bytes: Vec<u8>,
    colors: Vec<(u8, u8, u8)>,
    exact: HashMap<(u8, u8, u8), u8>,
}

impl Palette {
    /// The palette for frame figures.
    pub fn for_frames() -> Palette {
        let mut colors: Vec<(u8, u8, u8)> = Vec::with_capacity(256);
        for map in [ColorMap::Viridis, ColorMap::BlueWhiteRed] {
            for level in 0..LEVELS {
                let c = map.level(level);
                colors.push((c.0, c.1, c.2));
            }
        }
        let greys = 256 - colors.len();
        for k in 0..greys {
            let v = (k * 255 / (greys - 1)) as u8;
            colors.push((v, v, v));
        }
        let exact = colors
            .iter()
            .enumerate()
            .rev()
            .map(|(i, &c)| (c, i as u8))
            .collect();
        let bytes = colors.iter().flat_map(|&(r, g, b)| [r, g, b]).collect();
        Palette {
            bytes,
            colors,
            exact,
        }
    }

    /// Palette indices of an RGB buffer: exact matches where the colour is in the palette,
    /// else the nearest colour.
    pub fn index(&self, rgb: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(rgb.len() / 3);
        self.index_into(rgb, &mut out, &mut Cache::new());
        out
    }

    /// Palette indices of an RGB image `width` pixels wide, of the size of `reference` (another
    /// image, and its indices). Runs of pixels equal to the reference's, or to the run just
    /// above, are copied; the rest looked up. Much of an animation frame (text, axes, colour
    /// bars) does not change, and a heatmap cell spans several identical rows.
    pub fn index_like(&self, rgb: &[u8], width: usize, reference: (&[u8], &[u8])) -> Vec<u8> {
        const RUN: usize = 64;
        let (reference_rgb, reference_indices) = reference;
        let mut out: Vec<u8> = Vec::with_capacity(rgb.len() / 3);
        let mut cache = Cache::new();
        for row in rgb.chunks(width * 3) {
            for run in row.chunks(RUN * 3) {
                let start = out.len();
                let len = run.len() / 3;
                let same = |image: &[u8], at: usize| image.get(at * 3..(at + len) * 3) == Some(run);
                if same(reference_rgb, start) && reference_indices.len() >= start + len {
                    out.extend_from_slice(&reference_indices[start..start + len]);
                } else if start >= width && same(rgb, start - width) {
                    out.extend_from_within(start - width..start - width + len);
                } else {
                    self.index_into(run, &mut out, &mut cache);
                }
            }
        }
        out
    }

    fn index_into(&self, rgb: &[u8], out: &mut Vec<u8>, cache: &mut Cache) {
        let (mut last_key, mut last_index) = (u32::MAX, 0u8);
        for p in rgb.chunks_exact(3) {
            let key = (u32::from(p[0]) << 16) | (u32::from(p[1]) << 8) | u32::from(p[2]);
            if key != last_key {
                let slot = (key.wrapping_mul(0x9e37_79b1) >> 20) as usize % CACHE_SLOTS;
                last_index = if cache.0[slot].0 == key {
                    cache.0[slot].1
                } else {
                    let color = (p[0], p[1], p[2]);
                    let index = match self.exact.get(&color) {
                        Some(&index) => index,
                        None => self.nearest(color),
                    };
                    cache.0[slot] = (key, index);
                    index
                };
                last_key = key;
            }
            out.push(last_index);
        }
    }

    fn nearest(&self, (r, g, b): (u8, u8, u8)) -> u8 {
        let distance = |c: &(u8, u8, u8)| {
            let d = |x: u8, y: u8| (i32::from(x) - i32::from(y)).pow(2);
            d(c.0, r) + d(c.1, g) + d(c.2, b)
        };
        self.colors
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| distance(c))
            .map_or(0, |(i, _)| i as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_run_from_end_to_end() {
        assert_eq!(ColorMap::Viridis.at(0.0), RGBColor(0x44, 0x01, 0x54));
        assert_eq!(ColorMap::Viridis.at(1.0), RGBColor(0xfd, 0xe7, 0x25));
        assert_eq!(ColorMap::BlueWhiteRed.at(0.5), RGBColor(0xf7, 0xf7, 0xf7));
        assert_eq!(ColorMap::Viridis.at(f64::NAN), ColorMap::Viridis.at(0.0));
    }

    #[test]
    fn palette_keeps_map_colours_exact() {
        let palette = Palette::for_frames();
        assert_eq!(palette.bytes.len(), 768);
        let c = ColorMap::BlueWhiteRed.at(0.8);
        let indices = palette.index(&[c.0, c.1, c.2, 255, 255, 255, 250, 10, 10]);
        let at = |i: u8| &palette.bytes[i as usize * 3..i as usize * 3 + 3];
        assert_eq!(at(indices[0]), &[c.0, c.1, c.2]);
        assert_eq!(at(indices[1]), &[255, 255, 255]);
        assert_eq!(indices.len(), 3);
        // Against a reference, the result is the same.
        let image: Vec<u8> = (0..600).map(|i| (i * 7 % 256) as u8).collect();
        let mut other = image.clone();
        other[301] = 0;
        other[3..6].copy_from_slice(&[9, 9, 9]);
        other[33..36].copy_from_slice(&[9, 9, 9]); // the same pixel one row below (width 10)
        let reference = palette.index(&image);
        assert_eq!(
            palette.index_like(&other, 10, (&image, &reference)),
            palette.index(&other)
        );
    }
}
