//! The integer path against the f32 reference: a rigorous per-model error bound.

use baler_codec::model::quantize::{FloatActivation, FloatModel, SplitMix64};
use baler_codec::{Activation, HostModel, LayerSpec};
use proptest::prelude::*;

/// Worst-case error (real units) after `layers`, given the worst-case input error `e_in`:
/// each layer adds its weights' row sums times the input error, the requantization mismatch,
/// half a step of rounding (twice for leaky ReLU), and a float slack for the reference path.
fn propagate(layers: &[LayerSpec<'_>], mut e: f64) -> f64 {
    for layer in layers {
        let n_in = usize::from(layer.inputs);
        let pre_scale = match layer.activation {
            Activation::Lut(l) => f64::from(l.input_scale),
            _ => f64::from(layer.output_scale),
        };
        let mut worst = 0f64;
        let s_in = f64::from(layer.input_scale);
        let rows = layer.weights.bytes().chunks_exact(n_in);
        let per_channel = layer
            .weight_scales
            .iter()
            .zip(layer.multiplier.iter().zip(layer.shift.iter()))
            .zip(layer.bias.iter());
        for (row, ((ws, (m, s)), b)) in rows.zip(per_channel) {
            let ws = f64::from(ws);
            let row_sum: f64 = row
                .iter()
                .map(|&w| f64::from((w as i8).unsigned_abs()))
                .sum();
            let ratio = s_in * ws / pre_scale;
            let actual = f64::from(m) * (-f64::from(s)).exp2();
            let magnitude = row_sum * ws * 32768.0 * s_in + f64::from(b).abs() * s_in * ws;
            let mismatch = (actual - ratio).abs() / ratio * magnitude;
            // f32 accumulation error of the reference's dot product and bias.
            let float_slack = (n_in as f64 + 4.0) * 1.2e-7 * magnitude;
            worst = worst.max(row_sum * ws * e + mismatch + float_slack);
        }
        let rounding = match layer.activation {
            Activation::LeakyRelu { .. } => 0.5 * pre_scale + 0.5 * f64::from(layer.output_scale),
            _ => 0.5 * pre_scale,
        };
        e = worst + rounding;
    }
    e
}

fn widths() -> impl Strategy<Value = Vec<usize>> {
    (1usize..40, prop::collection::vec(1usize..40, 1..4)).prop_map(|(n, mut rest)| {
        rest.insert(0, n);
        rest
    })
}

fn activation() -> impl Strategy<Value = FloatActivation> {
    prop_oneof![
        Just(FloatActivation::Identity),
        Just(FloatActivation::Relu),
        (0.0f32..0.5).prop_map(FloatActivation::LeakyRelu),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn integer_path_within_bound_of_reference(
        seed in any::<u64>(),
        widths in widths(),
        code_bits in 1u8..=16,
        acts in prop::collection::vec(activation(), 1..3),
    ) {
        let (float, data) = FloatModel::random(seed, &widths, code_bits, &acts, 64);
        let checked = integer_path_within_bound(&float, &data, seed);
        prop_assert!(checked.is_ok(), "{}", checked.unwrap_err());
    }
}

/// Quantizes `float` and checks the integer path against the f32 reference of the quantized
/// model on `data` plus out-of-range frames, within the bound [`propagate`] derives.
fn integer_path_within_bound(float: &FloatModel, data: &[f32], seed: u64) -> Result<(), String> {
    let blob = float.quantize().map_err(|e| e.to_string())?;
    let model = HostModel::from_bytes(&blob).map_err(|e| e.to_string())?;
    let n = model.input_len();
    let z = model.latent_len();
    let latent_scale = f64::from(model.encoder().last().unwrap().output_scale);
    let first_scale = f64::from(model.layers()[0].input_scale);
    let enc_bound = propagate(model.encoder(), 0.5 * first_scale) / latent_scale;
    let dec_bound = propagate(model.decoder(), 0.0);
    let out_scale = f64::from(model.layers().last().unwrap().output_scale);
    // Calibration frames plus out-of-range frames that exercise saturation.
    let mut rng = SplitMix64(seed ^ 0x5eed);
    let mut frames = data.to_vec();
    frames.extend((0..8 * n).map(|i| data[i % data.len()] * (1.0 + 10.0 * rng.symmetric())));
    let (mut codes, mut latent) = (vec![0i16; z], vec![0f32; z]);
    let (mut out_int, mut out_ref) = (vec![0f32; n], vec![0f32; n]);
    for frame in frames.chunks_exact(n) {
        model
            .encode_frame(frame, &mut codes)
            .map_err(|e| e.to_string())?;
        model
            .reference_encode(frame, &mut latent)
            .map_err(|e| e.to_string())?;
        for (c, l) in codes.iter().zip(&latent) {
            let err = (f64::from(*c) - f64::from(*l)).abs();
            if err > enc_bound {
                return Err(format!("latent error {err} > bound {enc_bound}"));
            }
        }
        let exact: Vec<f32> = codes.iter().map(|&c| f32::from(c)).collect();
        model
            .decode_frame(&codes, &mut out_int)
            .map_err(|e| e.to_string())?;
        model
            .reference_decode(&exact, &mut out_ref)
            .map_err(|e| e.to_string())?;
        let gains = model.head().output_gain;
        for (i, (a, b)) in out_int.iter().zip(&out_ref).enumerate() {
            let gain = f64::from(gains.get(i).unwrap()).abs();
            let bound = dec_bound / out_scale * gain + 1e-5 * f64::from(b.abs()) + 1e-3;
            let err = f64::from((a - b).abs());
            if err > bound {
                return Err(format!("output {i}: error {err} > bound {bound}"));
            }
        }
    }
    Ok(())
}

/// Detector-sized frames: a layer of 4,096 inputs cannot keep weights of up to 127 under the
/// loader's overflow proof, so quantization coarsens those rows' scales. The proof holds (the
/// blob loads), the integer path stays within its derived bound of the reference, and the
/// cost against the float model is measured: the reconstruction's RMS difference from the
/// float autoencoder's, as a fraction of the data's spread.
#[test]
fn a_model_of_4096_inputs_quantizes_within_its_bound() {
    for (widths, limit) in [(vec![4096usize, 32, 8], 0.05), (vec![48, 32, 16], 0.05)] {
        let (float, data) =
            FloatModel::random(11, &widths, 12, &[FloatActivation::LeakyRelu(0.01)], 24);
        integer_path_within_bound(&float, &data, 11).unwrap();
        let blob = float.quantize().unwrap();
        let model = HostModel::from_bytes(&blob).unwrap();
        let n = widths[0];
        let (mut codes, mut out) = (vec![0i16; model.latent_len()], vec![0f32; n]);
        let (mut sq, mut spread) = (0f64, 0f64);
        for frame in data.chunks_exact(n) {
            model.encode_frame(frame, &mut codes).unwrap();
            model.decode_frame(&codes, &mut out).unwrap();
            let z: Vec<f32> = frame
                .iter()
                .zip(float.offset.iter().zip(&float.scale))
                .map(|(x, (o, s))| (x - o) / s)
                .collect();
            let mut ranges = vec![(0f32, 0f32); float.layers.len()];
            let y = float.forward_normalized(&z, &mut ranges);
            for i in 0..n {
                let reference = y[i] * float.scale[i] + float.offset[i];
                sq += f64::from(out[i] - reference).powi(2);
                spread += f64::from(float.scale[i]).powi(2);
            }
        }
        let cost = (sq / spread).sqrt();
        eprintln!(
            "{} inputs: integer vs float model, RMS {:.4} of the data's scale",
            n, cost
        );
        assert!(cost < limit, "{n} inputs: {cost}");
    }
}

#[test]
fn lookup_table_activations_track_the_reference() {
    for (seed, act) in [(1u64, FloatActivation::Tanh), (2, FloatActivation::Sigmoid)] {
        let (float, data) = FloatModel::random(seed, &[12, 24, 6], 16, &[act], 200);
        let blob = float.quantize().unwrap();
        let model = HostModel::from_bytes(&blob).unwrap();
        assert!(matches!(model.layers()[0].activation, Activation::Lut(_)));
        let (mut codes, mut latent) = (vec![0i16; 6], vec![0f32; 6]);
        let latent_scale = model.encoder().last().unwrap().output_scale;
        let mut worst = 0f32;
        for frame in data.chunks_exact(12) {
            model.encode_frame(frame, &mut codes).unwrap();
            model.reference_encode(frame, &mut latent).unwrap();
            for (c, l) in codes.iter().zip(&latent) {
                worst = worst.max((f32::from(*c) - l).abs() * latent_scale);
            }
        }
        // The calibrated latent range is about ±3; the 257-entry tables interpolate the
        // smooth functions to well under 1e-3 of it.
        assert!(worst < 3e-3, "{act:?}: latent error {worst}");
    }
}

#[test]
fn f32_and_i16_frames_encode_alike() {
    let (float, _) = FloatModel::random(7, &[16, 8, 4], 8, &[FloatActivation::Relu], 50);
    let blob = float.quantize().unwrap();
    let model = HostModel::from_bytes(&blob).unwrap();
    let adc: Vec<i16> = (0..16).map(|i| (i * 37 - 300) as i16).collect();
    let real: Vec<f32> = adc.iter().map(|&v| f32::from(v)).collect();
    let (mut a, mut b) = (vec![0i16; 4], vec![0i16; 4]);
    model.encode_frame_i16(&adc, &mut a).unwrap();
    model.encode_frame(&real, &mut b).unwrap();
    assert_eq!(a, b);
}
