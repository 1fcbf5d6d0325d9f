//! The f32 reference forward pass (nalgebra), mirroring the integer path without rounding.
//!
//! It uses the model's dequantized weights and float scales, clamps where the integer path
//! saturates, and never rounds; the difference to the integer path is therefore exactly the
//! quantization of activations and latent codes. Tests bound that difference; float targets
//! may also use it directly.

use crate::error::Result;
use crate::model::spec::{Activation, LayerSpec, ACTIVATION_MAX};
use crate::model::Model;
use nalgebra::DVectorView;

/// Runs one layer in f32. `input` and `output` hold real activation values.
fn run_layer<const W: usize>(layer: &LayerSpec<'_>, input: &[f32], output: &mut [f32], clamp: f32) {
    let n_in = usize::from(layer.inputs);
    let x = DVectorView::from_slice(input, n_in);
    let mut row_f = [0f32; W];
    let rows = layer.weights.bytes().chunks_exact(n_in);
    let params = layer.weight_scales.iter().zip(layer.bias.iter());
    let max = ACTIVATION_MAX as f32;
    let (pre_scale, activation) = (pre_activation_scale(layer), layer.activation);
    for ((row, (ws, bias)), out) in rows.zip(params).zip(output.iter_mut()) {
        for (f, &w) in row_f.iter_mut().zip(row) {
            *f = f32::from(w as i8) * ws;
        }
        let w = DVectorView::from_slice(&row_f[..n_in], n_in);
        let z = w.dot(&x) + bias as f32 * layer.input_scale * ws;
        let pre = z.clamp(-max * pre_scale, max * pre_scale);
        let y = match activation {
            Activation::Identity => pre,
            Activation::Relu => pre.max(0.0),
            Activation::LeakyRelu { slope_q15 } => {
                if pre >= 0.0 {
                    pre
                } else {
                    pre * f32::from(slope_q15) / 32768.0
                }
            }
            Activation::Lut(lut) => lut.function.eval(pre),
        };
        *out = y.clamp(-clamp, clamp);
    }
}

fn pre_activation_scale(layer: &LayerSpec<'_>) -> f32 {
    match layer.activation {
        Activation::Lut(lut) => lut.input_scale,
        _ => layer.output_scale,
    }
}

impl<const MAX_LAYERS: usize, const MAX_WIDTH: usize> Model<'_, MAX_LAYERS, MAX_WIDTH> {
    fn reference_layers(
        &self,
        layers: &[LayerSpec<'_>],
        a: &mut [f32; MAX_WIDTH],
        last_clamp: f32,
    ) {
        let mut b = [0f32; MAX_WIDTH];
        let count = layers.len();
        for (i, layer) in layers.iter().enumerate() {
            let clamp = if i + 1 == count {
                last_clamp
            } else {
                ACTIVATION_MAX as f32 * layer.output_scale
            };
            run_layer::<MAX_WIDTH>(layer, &a[..], &mut b[..], clamp);
            a.copy_from_slice(&b);
        }
    }

    /// f32 encoder: returns unrounded latent values in code units (clamped to the code range).
    pub fn reference_encode(&self, frame: &[f32], latent: &mut [f32]) -> Result<()> {
        let mut codes = [0i16; MAX_WIDTH];
        // Reuse the integer path's checks of lengths and finiteness.
        self.encode_frame(frame, &mut codes[..latent.len().min(MAX_WIDTH)])?;
        let first_scale = self.layers().first().map_or(1.0, |l| l.input_scale);
        let head = self.head();
        let max = ACTIVATION_MAX as f32;
        let mut a = [0f32; MAX_WIDTH];
        for (i, (slot, &x)) in a.iter_mut().zip(frame).enumerate() {
            let code = (x - head.input_offset.at(i, 0.0)) * head.input_gain.at(i, 0.0);
            *slot = code.clamp(-max, max) * first_scale;
        }
        let latent_scale = self.encoder().last().map_or(1.0, |l| l.output_scale);
        let (lo, hi) = self.code_range();
        let bound = (-lo).max(hi) as f32 * latent_scale;
        self.reference_layers(self.encoder(), &mut a, bound);
        for (l, &v) in latent.iter_mut().zip(a.iter()) {
            *l = (v / latent_scale).clamp(lo as f32, hi as f32);
        }
        Ok(())
    }

    /// f32 decoder from latent values in code units (need not be integers) to real values.
    pub fn reference_decode(&self, latent: &[f32], out: &mut [f32]) -> Result<()> {
        let codes = [0i16; MAX_WIDTH];
        let mut scratch = [0f32; MAX_WIDTH];
        // Reuse the integer path's length checks.
        self.decode_frame(
            &codes[..latent.len().min(MAX_WIDTH)],
            &mut scratch[..out.len().min(MAX_WIDTH)],
        )?;
        let latent_scale = self.encoder().last().map_or(1.0, |l| l.output_scale);
        let mut a = [0f32; MAX_WIDTH];
        for (slot, &v) in a.iter_mut().zip(latent) {
            *slot = v * latent_scale;
        }
        let out_scale = self.layers().last().map_or(1.0, |l| l.output_scale);
        self.reference_layers(self.decoder(), &mut a, ACTIVATION_MAX as f32 * out_scale);
        let head = self.head();
        for (i, (o, &v)) in out.iter_mut().zip(a.iter()).enumerate() {
            *o = v / out_scale * head.output_gain.at(i, 0.0) + head.output_offset.at(i, 0.0);
        }
        Ok(())
    }
}
