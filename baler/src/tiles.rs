//! Splitting frames of a 2-D field (`[frames, h, w]`) into fixed tiles, the model's frames, and
//! back. Edge tiles are padded by repeating the last row and column; decoding crops them.

/// Tile grid of one `h x w` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiling {
    /// Frame height and width.
    pub frame: (usize, usize),
    /// Tile height and width.
    pub tile: (usize, usize),
}

impl Tiling {
    /// Tiles per frame along each axis.
    pub fn grid(&self) -> (usize, usize) {
        (
            self.frame.0.div_ceil(self.tile.0),
            self.frame.1.div_ceil(self.tile.1),
        )
    }

    /// Values per tile.
    pub fn tile_len(&self) -> usize {
        self.tile.0 * self.tile.1
    }

    /// Splits `frames` (row-major `[n, h, w]`) into tiles, frame by frame, tiles row-major.
    pub fn split(&self, frames: &[f32]) -> Vec<f32> {
        let (h, w) = self.frame;
        let (th, tw) = self.tile;
        let (gy, gx) = self.grid();
        let mut out = Vec::with_capacity(frames.len() / (h * w).max(1) * gy * gx * th * tw);
        for frame in frames.chunks_exact((h * w).max(1)) {
            for ty in 0..gy {
                for tx in 0..gx {
                    for y in 0..th {
                        let row = (ty * th + y).min(h - 1);
                        for x in 0..tw {
                            out.push(frame[row * w + (tx * tw + x).min(w - 1)]);
                        }
                    }
                }
            }
        }
        out
    }

    /// Reassembles frames from tiles written by [`Tiling::split`], dropping the padding.
    pub fn join(&self, tiles: &[f32]) -> Vec<f32> {
        let (h, w) = self.frame;
        let (th, tw) = self.tile;
        let (gy, gx) = self.grid();
        let per_frame = gy * gx * th * tw;
        let mut out = Vec::with_capacity(tiles.len() / per_frame.max(1) * h * w);
        for frame in tiles.chunks_exact(per_frame.max(1)) {
            for row in 0..h {
                let (ty, y) = (row / th, row % th);
                for col in 0..w {
                    let (tx, x) = (col / tw, col % tw);
                    out.push(frame[((ty * gx + tx) * th + y) * tw + x]);
                }
            }
        }
        out
    }
}

/// The tiling a model implies for data of `shape`: a rank-3 field whose model frame is a 2-D tile
/// smaller than the field's frame.
pub fn tiling_for(shape: &[usize], frame_shape: &[usize]) -> Option<Tiling> {
    match (shape, frame_shape) {
        ([_, h, w], [th, tw]) if (*th, *tw) != (*h, *w) => Some(Tiling {
            frame: (*h, *w),
            tile: (*th, *tw),
        }),
        _ => None,
    }
}

/// Parses `HxW` (e.g. `10x10`).
pub fn parse_tile(text: &str) -> Result<(usize, usize), crate::Error> {
    let parse = |s: &str| s.trim().parse::<usize>().ok().filter(|&v| v > 0);
    match text.split_once(['x', 'X']) {
        Some((a, b)) => match (parse(a), parse(b)) {
            (Some(h), Some(w)) => Ok((h, w)),
            _ => Err(crate::Error::Options(format!(
                "--tile '{text}': expected HxW with positive sizes, e.g. 10x10"
            ))),
        },
        None => Err(crate::Error::Options(format!(
            "--tile '{text}': expected HxW, e.g. 10x10"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_then_join_is_the_identity_with_padding() {
        let tiling = Tiling {
            frame: (5, 7),
            tile: (2, 3),
        };
        let frames: Vec<f32> = (0..2 * 35).map(|v| v as f32).collect();
        let tiles = tiling.split(&frames);
        assert_eq!(tiles.len(), 2 * 3 * 3 * 6);
        assert_eq!(tiling.join(&tiles), frames);
        // Padding repeats the edge: the last tile row of frame 0 repeats row 4.
        assert_eq!(tiles[(2 * 3) * 6 + 3], 28.0);
    }

    #[test]
    fn tile_sizes_parse() {
        assert_eq!(parse_tile("10x12").ok(), Some((10, 12)));
        assert!(parse_tile("10").is_err());
        assert!(parse_tile("0x3").is_err());
    }
}
