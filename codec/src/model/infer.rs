//! Integer-only inference: the one implementation of encode and decode.
//!
//! The only float steps are the per-feature affine maps at the edges, each written as single
//! IEEE-754 operations (one subtract and one multiply in, one multiply and one add out; no
//! fused multiply-add), so every target computes the same bits.

use crate::error::{Error, Result};
use crate::model::arith::{activate, dot, dot4, requantize, round_to_code};
use crate::model::le::LeSlice;
use crate::model::spec::{LayerSpec, ACTIVATION_MAX};
use crate::model::Model;

/// Activations between layers, packed two int16 values to a word (element `2k` in the low
/// half of word `k`, `2k + 1` in the high half; a missing last element is 0), so the layer
/// kernels load each input pair once. Sized `MAX_WIDTH` words, of which the first half is used:
/// stable Rust cannot size an array by `MAX_WIDTH / 2`.
type Packed<const MAX_WIDTH: usize> = [u32; MAX_WIDTH];

/// Packs int16 values two per word into `words` (see [`put`]).
fn pack(values: impl Iterator<Item = i16>, words: &mut [u32]) {
    for (i, v) in values.enumerate() {
        put(words, i, u32::from(v as u16));
    }
}

/// The int16 values packed in `words`, in order, into `values`.
fn unpack(words: &[u32], values: &mut [i16]) {
    for (pair, &word) in values.chunks_mut(2).zip(words) {
        for (v, half) in pair.iter_mut().zip([word, word >> 16]) {
            *v = half as u16 as i16;
        }
    }
}

/// One output code: bias, requantization, activation, then saturation to `lo..=hi`, as the
/// low 16 bits of a word.
#[inline(always)]
fn output_code(layer: &LayerSpec<'_>, acc: i32, params: (i32, i32, u8), lo: i32, hi: i32) -> u32 {
    let (bias, multiplier, shift) = params;
    let y = activate(
        requantize(bias.wrapping_add(acc), multiplier, shift),
        &layer.activation,
    );
    u32::from(y.clamp(lo, hi) as i16 as u16)
}

/// Writes output code `y` (in the low 16 bits) as element `o` of the packed `output`. Outputs
/// are written in order, so the low half of each word comes first and clears the high half.
#[inline(always)]
fn put(output: &mut [u32], o: usize, y: u32) {
    if let Some(word) = output.get_mut(o / 2) {
        *word = if o & 1 == 0 { y } else { *word | y << 16 };
    }
}

/// Runs one layer on packed `input` into packed `output`, saturating each result to
/// `lo..=hi`. Rows go four at a time through [`dot4`], with their biases, multipliers and
/// shifts read as one block and their outputs written as two words, and the last one to three
/// through [`dot`]; the scaling and activation run once per output, outside the
/// multiply-accumulate loops.
#[allow(clippy::map_identity)] // the identity `map` is there on purpose, see below
fn run_layer(layer: &LayerSpec<'_>, input: &[u32], output: &mut [u32], lo: i32, hi: i32) {
    let n_in = usize::from(layer.inputs).max(1);
    let weights = layer.weights.bytes();
    let (bias, multiplier, shift) = (
        layer.bias.bytes(),
        layer.multiplier.bytes(),
        layer.shift.bytes(),
    );
    let quads = weights.chunks_exact(4 * n_in);
    let rest = quads.remainder();
    // The identity `map` gives this zip a type of its own, so its `Zip::new` is inlined and
    // the block lengths stay known (no bounds checks below).
    let blocks = quads
        .map(|block| block)
        .zip(bias.chunks_exact(16))
        .zip(multiplier.chunks_exact(16))
        .zip(shift.chunks_exact(4))
        .zip(output.chunks_exact_mut(2));
    let mut done = 0;
    for ((((block, b), m), s), words) in blocks {
        let (r0, r) = block.split_at(n_in);
        let (r1, r) = r.split_at(n_in);
        let (r2, r3) = r.split_at(n_in);
        let acc = dot4([r0, r1, r2, r3], input);
        let mut y = [0u32; 4];
        let (b, m, s) = (
            LeSlice::<i32>::new(b),
            LeSlice::<i32>::new(m),
            LeSlice::<u8>::new(s),
        );
        for (j, (y, acc)) in y.iter_mut().zip(acc).enumerate() {
            let params = (b.at(j, 0), m.at(j, 0), s.at(j, 1));
            *y = output_code(layer, acc, params, lo, hi);
        }
        words[0] = y[0] | y[1] << 16;
        words[1] = y[2] | y[3] << 16;
        done += 4;
    }
    for (o, row) in (done..).zip(rest.chunks_exact(n_in)) {
        let params = (
            layer.bias.at(o, 0),
            layer.multiplier.at(o, 0),
            layer.shift.at(o, 1),
        );
        put(
            output,
            o,
            output_code(layer, dot(row, input), params, lo, hi),
        );
    }
}

fn check_len(expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::FrameLength { expected, found })
    }
}

impl<const MAX_LAYERS: usize, const MAX_WIDTH: usize> Model<'_, MAX_LAYERS, MAX_WIDTH> {
    /// Runs `layers` starting from the activations in `a`; returns the buffer holding the
    /// result. The last layer saturates to `last_lo..=last_hi`.
    fn run_layers<'b>(
        &self,
        layers: &[LayerSpec<'_>],
        mut a: &'b mut Packed<MAX_WIDTH>,
        mut b: &'b mut Packed<MAX_WIDTH>,
        last: (i32, i32),
    ) -> &'b mut Packed<MAX_WIDTH> {
        let count = layers.len();
        for (i, layer) in layers.iter().enumerate() {
            let (lo, hi) = if i + 1 == count {
                last
            } else {
                (-ACTIVATION_MAX, ACTIVATION_MAX)
            };
            run_layer(layer, &a[..], &mut b[..], lo, hi);
            core::mem::swap(&mut a, &mut b);
        }
        a
    }

    /// Runs the encoder on packed input activations (`a`, which it overwrites).
    fn encode_codes(&self, a: &mut Packed<MAX_WIDTH>, codes: &mut [i16]) {
        let mut b = [0u32; MAX_WIDTH];
        let out = self.run_layers(self.encoder(), a, &mut b, self.code_range());
        unpack(&out[..], codes);
    }

    /// Quantizes a frame to packed input activations: per feature, one subtract and one
    /// multiply in f32, then [`round_to_code`].
    fn quantize_frame(
        &self,
        frame: impl Iterator<Item = f32>,
        input: &mut Packed<MAX_WIDTH>,
    ) -> Result<()> {
        let head = self.head();
        let affine = head.input_offset.iter().zip(head.input_gain.iter());
        for (i, (x, (offset, gain))) in frame.zip(affine).enumerate() {
            if !x.is_finite() {
                return Err(Error::NonFiniteInput { index: i });
            }
            let centered = x - offset;
            put(input, i, u32::from(round_to_code(centered * gain) as u16));
        }
        Ok(())
    }

    /// Encodes one frame of real values into latent codes (`latent_len` of them, each within
    /// [`Model::code_range`]).
    pub fn encode_frame(&self, frame: &[f32], codes: &mut [i16]) -> Result<()> {
        check_len(self.input_len(), frame.len())?;
        check_len(self.latent_len(), codes.len())?;
        let mut input = [0u32; MAX_WIDTH];
        self.quantize_frame(frame.iter().copied(), &mut input)?;
        self.encode_codes(&mut input, codes);
        Ok(())
    }

    /// Encodes one frame of integer ADC counts: each count is converted exactly to f32 and
    /// normalized like [`Model::encode_frame`], so both give the same codes for the same values.
    pub fn encode_frame_i16(&self, frame: &[i16], codes: &mut [i16]) -> Result<()> {
        check_len(self.input_len(), frame.len())?;
        check_len(self.latent_len(), codes.len())?;
        let mut input = [0u32; MAX_WIDTH];
        self.quantize_frame(frame.iter().map(|&x| f32::from(x)), &mut input)?;
        self.encode_codes(&mut input, codes);
        Ok(())
    }

    /// Decodes latent codes into one frame of output activation codes (int16), before the
    /// output affine step.
    pub fn decode_codes(&self, codes: &[i16], out: &mut [i16]) -> Result<()> {
        check_len(self.latent_len(), codes.len())?;
        check_len(self.output_len(), out.len())?;
        let (lo, hi) = self.code_range();
        if let Some(index) = codes
            .iter()
            .position(|&c| !(lo..=hi).contains(&i32::from(c)))
        {
            return Err(Error::CodeOutOfRange { index });
        }
        let mut a = [0u32; MAX_WIDTH];
        pack(codes.iter().copied(), &mut a);
        let mut b = [0u32; MAX_WIDTH];
        let span = (-ACTIVATION_MAX, ACTIVATION_MAX);
        let result = self.run_layers(self.decoder(), &mut a, &mut b, span);
        unpack(&result[..], out);
        Ok(())
    }

    /// Decodes latent codes into one frame of real values.
    pub fn decode_frame(&self, codes: &[i16], out: &mut [f32]) -> Result<()> {
        check_len(self.output_len(), out.len())?;
        let mut q = [0i16; MAX_WIDTH];
        let q = &mut q[..out.len()];
        self.decode_codes(codes, q)?;
        let head = self.head();
        let affine = head.output_gain.iter().zip(head.output_offset.iter());
        for ((o, &v), (gain, offset)) in out.iter_mut().zip(q.iter()).zip(affine) {
            let scaled = f32::from(v) * gain;
            *o = scaled + offset;
        }
        Ok(())
    }
}
