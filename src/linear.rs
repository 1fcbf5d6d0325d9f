//! A linear autoencoder (principal components) fitted in closed form: the simplest model the
//! codec can carry, used by the quick start and the real-data tests as a training-free baseline.

use baler_codec::model::quantize::{FloatActivation, FloatLayer, FloatModel};
use nalgebra::{DMatrix, SymmetricEigen};

/// Fits `columns -> latent -> columns` on `values` (row-major): features are standardized
/// (constant columns get scale 1), the encoder projects on the top `latent` principal
/// components and the decoder projects back. Calibrated on the same data.
pub fn fit_pca(values: &[f32], columns: usize, latent: usize, code_bits: u8) -> FloatModel {
    let rows = values.len() / columns;
    let mut mean = vec![0f64; columns];
    let mut var = vec![0f64; columns];
    for row in values.chunks_exact(columns) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v) / rows as f64;
        }
    }
    for row in values.chunks_exact(columns) {
        for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (f64::from(v) - m).powi(2) / rows as f64;
        }
    }
    let scale: Vec<f64> = var
        .iter()
        .map(|v| if *v > 0.0 { v.sqrt() } else { 1.0 })
        .collect();
    let z = DMatrix::from_fn(rows, columns, |r, c| {
        (f64::from(values[r * columns + c]) - mean[c]) / scale[c]
    });
    let cov = z.transpose() * &z / rows as f64;
    let eigen = SymmetricEigen::new(cov);
    let mut order: Vec<usize> = (0..columns).collect();
    order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
    let components: Vec<usize> = order.into_iter().take(latent).collect();
    let encoder: Vec<f32> = components
        .iter()
        .flat_map(|&k| (0..columns).map(move |c| (k, c)))
        .map(|(k, c)| eigen.eigenvectors[(c, k)] as f32)
        .collect();
    let decoder: Vec<f32> = (0..columns)
        .flat_map(|c| components.iter().map(move |&k| (c, k)))
        .map(|(c, k)| eigen.eigenvectors[(c, k)] as f32)
        .collect();
    let layer = |inputs, outputs, weights| FloatLayer {
        inputs,
        outputs,
        weights,
        bias: vec![0.0; outputs],
        activation: FloatActivation::Identity,
        pre_range: 0.0,
        out_range: 0.0,
    };
    let mut model = FloatModel {
        frame_shape: vec![columns as u32],
        names: Vec::new(),
        code_bits,
        encoder_layers: 1,
        offset: mean.iter().map(|&m| m as f32).collect(),
        scale: scale.iter().map(|&s| s as f32).collect(),
        input_range: 0.0,
        layers: vec![
            layer(columns, latent, encoder),
            layer(latent, columns, decoder),
        ],
        exact: Vec::new(),
        corrections: Vec::new(),
    };
    model.calibrate(values);
    model
}
