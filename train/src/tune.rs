//! `baler train --optimize-for-bound R`: choose the latent quantization step of a trained
//! model for error-bounded compression. Coarser latent codes cost fewer bits but leave larger
//! residuals; which total is smallest depends on the bound, so it is measured with the codec
//! on the data, the model blob counted.

use baler::pipeline::bounded::{self, Bound};
use baler::tiles::Tiling;
use baler_codec::bounded::Predictor;
use baler_codec::model::quantize::FloatModel;
use baler_codec::HostModel;
use std::path::Path;

/// Latent code widths tried: each sets the latent quantization step (range / 2^bits).
pub const CANDIDATE_CODE_BITS: [u8; 5] = [4, 6, 8, 10, 12];

/// One quantization of the trained model and what it would compress to.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Latent code width in bits.
    pub code_bits: u8,
    /// The quantized model blob.
    pub blob: Vec<u8>,
    /// Estimated stream bytes plus blob bytes at the bound.
    pub total: f64,
}

/// What the search found.
#[derive(Debug, Clone)]
pub struct Search {
    /// Every candidate, in [`CANDIDATE_CODE_BITS`] order.
    pub candidates: Vec<Candidate>,
    /// The paths that need no model (model-free, and the learned predictor for fields), with
    /// their estimated bytes: what the autoencoder has to beat.
    pub without_model: Vec<(&'static str, f64)>,
}

impl Search {
    /// The candidate with the smallest estimated total.
    pub fn best(&self) -> Option<&Candidate> {
        self.candidates
            .iter()
            .min_by(|a, b| a.total.total_cmp(&b.total))
    }
}

/// Quantizes `model` at every candidate code width and estimates the error-bounded size of
/// `input` within `rel` x range with each, as `baler compress --rel-error-bound` would judge.
pub fn search(
    model: &FloatModel,
    tiling: Option<Tiling>,
    input: &Path,
    rel: f64,
) -> Result<Search, String> {
    if !(rel.is_finite() && rel > 0.0) {
        return Err(format!(
            "--optimize-for-bound must be a positive fraction of the range, not {rel}"
        ));
    }
    let blobs = CANDIDATE_CODE_BITS
        .iter()
        .map(|&code_bits| {
            let mut candidate = model.clone();
            candidate.code_bits = code_bits;
            candidate
                .quantize()
                .map_err(|e| format!("quantization at {code_bits} bits: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let hosts = blobs
        .iter()
        .map(|blob| HostModel::from_bytes(blob).map_err(|e| format!("quantization: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let sized: Vec<_> = hosts
        .iter()
        .zip(&blobs)
        .map(|(h, b)| (h, b.len()))
        .collect();
    // One read of the input and one sample for every candidate.
    let open = baler::rows::file_opener(input);
    let estimates = bounded::estimate(&sized, tiling, &open, Bound::Relative(rel))
        .map_err(|e| e.at(input).to_string())?;
    let (with_model, without_model): (Vec<_>, Vec<_>) = estimates
        .into_iter()
        .partition(|&(what, _)| what == bounded::describe(&Predictor::Model));
    if with_model.len() != blobs.len() {
        return Err("the autoencoders were not among the candidates".into());
    }
    let candidates = CANDIDATE_CODE_BITS
        .into_iter()
        .zip(blobs.iter().cloned())
        .zip(with_model)
        .map(|((code_bits, blob), (_, total))| Candidate {
            code_bits,
            blob,
            total,
        })
        .collect();
    Ok(Search {
        candidates,
        without_model,
    })
}
