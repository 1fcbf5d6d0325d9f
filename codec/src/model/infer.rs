//! Integer-only inference: the one implementation of encode and decode.
//!
//! The only float steps are the per-feature affine maps at the edges, each written as single
//! IEEE-754 operations (one subtract and one multiply in, one multiply and one add out; no
//! fused multiply-add), so every target computes the same bits.

use crate::error::{Error, Result};
use crate::model::arith::{activate, dot, requantize};
use crate::model::spec::{LayerSpec, ACTIVATION_MAX};
use crate::model::Model;

/// Runs one layer on `input` into `output`, saturating the result to `lo..=hi`.
fn run_layer(layer: &LayerSpec<'_>, input: &[i16], output: &mut [i16], lo: i32, hi: i32) {
    let n_in = usize::from(layer.inputs);
    let rows = layer.weights.bytes().chunks_exact(n_in);
    let params = layer
        .bias
        .iter()
        .zip(layer.multiplier.iter())
        .zip(layer.shift.iter());
    for ((row, ((bias, multiplier), shift)), out) in rows.zip(params).zip(output.iter_mut()) {
        let acc = bias.wrapping_add(dot(row, input));
        let y = activate(requantize(acc, multiplier, shift), &layer.activation);
        *out = y.clamp(lo, hi) as i16;
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
        mut a: &'b mut [i16; MAX_WIDTH],
        mut b: &'b mut [i16; MAX_WIDTH],
        last: (i32, i32),
    ) -> &'b mut [i16; MAX_WIDTH] {
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

    /// Quantizes one real value of feature `i` to an input activation code.
    #[inline(always)]
    fn quantize_input(&self, i: usize, x: f32) -> Result<i16> {
        if !x.is_finite() {
            return Err(Error::NonFiniteInput { index: i });
        }
        let head = self.head();
        let centered = x - head.input_offset.at(i, 0.0);
        let scaled = centered * head.input_gain.at(i, 0.0);
        // `as` saturates (and maps an overflow to infinity to the extremes): deterministic.
        let code = libm::roundf(scaled) as i32;
        Ok(code.clamp(-ACTIVATION_MAX, ACTIVATION_MAX) as i16)
    }

    fn encode_codes(&self, input: &[i16; MAX_WIDTH], codes: &mut [i16]) {
        let mut a = *input;
        let mut b = [0i16; MAX_WIDTH];
        let out = self.run_layers(self.encoder(), &mut a, &mut b, self.code_range());
        for (c, &v) in codes.iter_mut().zip(out.iter()) {
            *c = v;
        }
    }

    /// Encodes one frame of real values into latent codes (`latent_len` of them, each within
    /// [`Model::code_range`]).
    pub fn encode_frame(&self, frame: &[f32], codes: &mut [i16]) -> Result<()> {
        check_len(self.input_len(), frame.len())?;
        check_len(self.latent_len(), codes.len())?;
        let mut input = [0i16; MAX_WIDTH];
        for (i, (slot, &x)) in input.iter_mut().zip(frame).enumerate() {
            *slot = self.quantize_input(i, x)?;
        }
        self.encode_codes(&input, codes);
        Ok(())
    }

    /// Encodes one frame of integer ADC counts: each count is converted exactly to f32 and
    /// normalized like [`Model::encode_frame`], so both give the same codes for the same values.
    pub fn encode_frame_i16(&self, frame: &[i16], codes: &mut [i16]) -> Result<()> {
        check_len(self.input_len(), frame.len())?;
        check_len(self.latent_len(), codes.len())?;
        let mut input = [0i16; MAX_WIDTH];
        for (i, (slot, &x)) in input.iter_mut().zip(frame).enumerate() {
            *slot = self.quantize_input(i, f32::from(x))?;
        }
        self.encode_codes(&input, codes);
        Ok(())
    }

    /// Decodes latent codes into one frame of output activation codes (int16), before the
    /// output affine step.
    pub fn decode_codes(&self, codes: &[i16], out: &mut [i16]) -> Result<()> {
        check_len(self.latent_len(), codes.len())?;
        check_len(self.output_len(), out.len())?;
        let (lo, hi) = self.code_range();
        let mut a = [0i16; MAX_WIDTH];
        for (i, (slot, &c)) in a.iter_mut().zip(codes).enumerate() {
            if !(lo..=hi).contains(&i32::from(c)) {
                return Err(Error::CodeOutOfRange { index: i });
            }
            *slot = c;
        }
        let mut b = [0i16; MAX_WIDTH];
        let span = (-ACTIVATION_MAX, ACTIVATION_MAX);
        let result = self.run_layers(self.decoder(), &mut a, &mut b, span);
        out.copy_from_slice(&result[..out.len()]);
        Ok(())
    }

    /// Decodes latent codes into one frame of real values.
    pub fn decode_frame(&self, codes: &[i16], out: &mut [f32]) -> Result<()> {
        check_len(self.output_len(), out.len())?;
        let mut q = [0i16; MAX_WIDTH];
        let q = &mut q[..out.len()];
        self.decode_codes(codes, q)?;
        let head = self.head();
        for (i, (o, &v)) in out.iter_mut().zip(q.iter()).enumerate() {
            let scaled = f32::from(v) * head.output_gain.at(i, 0.0);
            *o = scaled + head.output_offset.at(i, 0.0);
        }
        Ok(())
    }
}
