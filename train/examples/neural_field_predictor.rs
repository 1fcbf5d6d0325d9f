//! Issue 21's one promising neural design, measured for real: the learned linear field
//! predictor corrected by a small integer MLP, trained with dfdx on the field itself,
//! quantized by the codec's quantizer and run by the codec's integer inference
//! (`HostModel::encode_frame`), its residuals coded by the codec's tabled coder with the
//! field contexts baler uses (kind 6). Not a codec path: nothing here is offered to
//! `--use-model auto`; it measures whether one would be worth building.
//!
//! ```text
//! cargo run --release -p baler-train --example neural_field_predictor -- \
//!     ../shared/data/dev_name_ash.npz [--bounds 1e-2,1e-3,1e-4] [--epochs 40] [--hidden 32,32] \
//!     [--in-frame]
//! ```
//!
//! `--in-frame` corrects the in-frame learned predictor (parameters predictor 5) instead of
//! the 60-tap one, against `--use-model auto`'s stream, which must have chosen it.
//!
//! For each bound R (times the array's range) it prints, in bytes:
//! - `baler`: the real stream of `baler::compress` (`--use-model auto`), and its predictor;
//! - `linear`: this harness coding the same grid indices with the learned linear predictor
//!   (`baler::fit::learned`, the codec's `field_taps`) in one block, to check the harness
//!   against the real learned stream;
//! - `mlp`: the same with the MLP's correction added, and the blob that carries it.
//!
//! The grid is the codec's linear grid of step 2 x bound at 0, so the decoder would see
//! exactly the grid indices the MLP is trained on: open loop is closed loop here.

use baler::{compress_reporting, decompress, Array, Bound, Options, UseModel, Values};
use baler_codec::bounded::field::{lorenzo, residual_activity, round_fixed};
use baler_codec::bounded::{
    field_taps, grid_index, Coded, ColumnGrid, ContextTable, ResidualCoder, FIELD_CLASSES,
    LEARNED_TAPS,
};
use baler_codec::entropy::tabled::TabledEncoder;
use baler_codec::model::quantize::{quantize, FloatActivation, FloatLayer, FloatModel, SplitMix64};
use baler_codec::HostModel;
use dfdx::losses::huber_loss;
use dfdx::optim::AdamConfig;
use dfdx::shapes::Shape;
use dfdx::shapes::{Axes2, Axis, HasShape};
use dfdx::tensor::{Cpu, Gradients, Tape, Tensor, TensorFromVec, Trace};
use dfdx::tensor_ops::{leakyrelu, Backward, BroadcastTo, PermuteTo, TryMatMul};
use std::path::PathBuf;
use std::time::Instant;

/// Positions the MLP trains on at most.
const TRAIN_POSITIONS: usize = 1 << 17;
/// Leaky ReLU slope (as the autoencoder's).
const SLOPE: f32 = 0.01;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

struct Args {
    input: PathBuf,
    bounds: Vec<f64>,
    epochs: usize,
    hidden: Vec<usize>,
    /// Correct the in-frame learned predictor (parameters predictor 5) instead of the 60-tap one.
    in_frame: bool,
}

fn args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut input = None;
    let mut bounds = vec![1e-2, 1e-3, 1e-4];
    let mut epochs = 40;
    let mut hidden = vec![32, 32];
    let mut in_frame = false;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--in-frame" => in_frame = true,
            "--bounds" => {
                let v = it.next().ok_or("--bounds needs a list")?;
                bounds = v
                    .split(',')
                    .map(|s| s.parse().map_err(|_| format!("bad bound {s}")))
                    .collect::<Result<_, _>>()?;
            }
            "--epochs" => {
                let v = it.next().ok_or("--epochs needs a number")?;
                epochs = v.parse().map_err(|_| format!("bad epoch count {v}"))?;
            }
            "--hidden" => {
                let v = it.next().ok_or("--hidden needs a list")?;
                hidden = v
                    .split(',')
                    .map(|s| s.parse().map_err(|_| format!("bad width {s}")))
                    .collect::<Result<_, _>>()?;
            }
            _ if input.is_none() => input = Some(PathBuf::from(a)),
            _ => return Err(format!("unexpected argument {a}")),
        }
    }
    Ok(Args {
        input: input
            .ok_or("usage: neural_field_predictor FIELD.npz [--bounds R,..] [--epochs N] [--hidden W,..] [--in-frame]")?,
        bounds,
        epochs,
        hidden,
        in_frame,
    })
}

fn run() -> Result<(), String> {
    let args = args()?;
    let data = baler::data::read_f64(&args.input).map_err(|e| e.to_string())?;
    if data.shape.len() != 3 {
        return Err(format!("{} is not a field of frames", args.input.display()));
    }
    let (height, width) = (data.shape[1], data.shape[2]);
    let (lo, hi) = data
        .values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let name = args
        .input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned());
    let name = name.unwrap_or_default();
    let hidden: Vec<String> = args.hidden.iter().map(usize::to_string).collect();
    let hidden = hidden.join("-");
    // Speeds are MB/s of the input as f32 (4 bytes a value), the unit of the README's tables.
    let megabytes = data.values.len() as f64 * 4.0 / 1e6;
    println!("| data | R | hidden | baler, auto (its choice) | baler, learned linear (this harness) | learned + MLP correction: stream + MLP = total | over baler's best | learned + MLP contexts: stream + MLP = total | over baler's best | baler encode / decode MB/s | MLP inference alone MB/s |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &r in &args.bounds {
        let array =
            Array::new(&data.shape, Values::F64(data.values.clone())).map_err(|e| e.to_string())?;
        let started = Instant::now();
        let (stream, outcome) = compress_reporting(&array, &Options::bounded(Bound::Relative(r)))
            .map_err(|e| e.to_string())?;
        let encode_speed = megabytes / started.elapsed().as_secs_f64();
        let started = Instant::now();
        decompress(&stream, None).map_err(|e| e.to_string())?;
        let decode_speed = megabytes / started.elapsed().as_secs_f64();
        let chosen = outcome
            .bounded
            .map(|o| format!("{:?}", o.predictor))
            .unwrap_or_default();
        // `Always` without an autoencoder: the learned linear predictor, as baler codes it.
        let mut options = Options::bounded(Bound::Relative(r));
        options.use_model = UseModel::Always;
        let (learned_stream, _) =
            compress_reporting(&array, &options).map_err(|e| e.to_string())?;
        let best = stream.len().min(learned_stream.len());

        let bound = r * (hi - lo);
        let grid = ColumnGrid::linear(0.0, 2.0 * bound, bound);
        let mut field = Field::new(&data.values, height, width, &grid);
        let weights = match args.in_frame {
            false => baler::fit::learned::fit(&data.values, height, width, &grid),
            true => {
                baler::fit::learned::fit_in_frame(&data.values, height, width, &grid).map(|w| {
                    let mut all = [0i32; LEARNED_TAPS];
                    all[..w.len()].copy_from_slice(&w);
                    field.lorenzo_frames = 0;
                    field.weight_bytes = 4 * w.len();
                    all
                })
            }
        }
        .ok_or("the learned fit failed")?;
        // The real stream this harness's linear predictor reproduces: the learned one, or with
        // --in-frame auto's, which must have chosen the in-frame predictor.
        let baseline = match args.in_frame {
            false => learned_stream.len(),
            true if chosen.starts_with("LearnedInFrame") => stream.len(),
            true => {
                return Err(format!(
                    "{name} at {r:e}: auto chose {chosen}, not the in-frame predictor"
                ))
            }
        };
        let plain = field.residuals(&weights, None)?;
        let linear = field.code(&plain, |j| Ok(field.kind6_class(&plain, j)))?;
        // The real stream's bytes beyond this harness's payload and weights (stream and block
        // headers, parameters) come with either MLP's stream too.
        let overhead = baseline.saturating_sub(linear);

        // Design 1: the prediction corrected by an MLP over the causal neighbourhood.
        let started = Instant::now();
        let (xs, ys) = samples(&field, |j| {
            let (p, taps) = field.linear(&weights, j);
            let y = field.k[j].wrapping_sub(p) as f32;
            (!field.escaped[j]).then(|| (correction_features(&taps, p), y))
        });
        let trained = fit_mlp(xs, &ys, CORRECTION_FEATURES, args.epochs, &args.hidden)?;
        let (blob, side) = trained.blob()?;
        let model = HostModel::from_bytes(&blob).map_err(|e| e.to_string())?;
        let mlp = Mlp {
            model: &model,
            clip: trained.clip,
            out_step: trained.out_step,
        };
        // The MLP's pass over every value: what a codec path would add to encode and, run
        // value by value in the same order, to decode.
        let inference = Instant::now();
        let residuals = field.residuals(&weights, Some(&mlp))?;
        let inference_speed = megabytes / inference.elapsed().as_secs_f64();
        let corrected = field.code(&residuals, |j| Ok(field.kind6_class(&residuals, j)))?;
        let corrected_total = corrected + overhead + side;
        eprintln!(
            "{name} R={r:e} correction: {:.1} s, blob {} B, validation loss {:.4} -> {:.4}",
            started.elapsed().as_secs_f64(),
            blob.len(),
            trained.start_loss,
            trained.best_loss
        );

        // Design 2: the context classes of the linear residuals from an MLP over the bit
        // lengths of the neighbours' residuals (a learned entropy model).
        let started = Instant::now();
        let (xs, ys) = samples(&field, |j| {
            let y = bit_len(plain[j].unsigned_abs()) as f32;
            (!field.escaped[j]).then(|| (field.context_features(&plain, j), y))
        });
        let trained = fit_mlp(xs, &ys, CONTEXT_FEATURES, args.epochs, &args.hidden)?;
        let (blob, context_side) = trained.blob()?;
        let model = HostModel::from_bytes(&blob).map_err(|e| e.to_string())?;
        let mlp = Mlp {
            model: &model,
            clip: trained.clip,
            out_step: trained.out_step,
        };
        let contexts = field.code(&plain, |j| {
            let class = mlp.eval(&field.context_features(&plain, j))?.round();
            Ok(class.clamp(0.0, (FIELD_CLASSES - 1) as f32) as usize)
        })?;
        let contexts_total = contexts + overhead + context_side;
        eprintln!(
            "{name} R={r:e} contexts: {:.1} s, blob {} B, validation loss {:.4} -> {:.4}",
            started.elapsed().as_secs_f64(),
            blob.len(),
            trained.start_loss,
            trained.best_loss
        );
        println!(
            "| {name} | {r:e} | {hidden} | {} ({chosen}) | {} ({}) | {} + {side} = {corrected_total} | {:.3}x | {} + {context_side} = {contexts_total} | {:.3}x | {encode_speed:.1} / {decode_speed:.1} | {inference_speed:.1} |",
            stream.len(),
            baseline,
            linear + overhead,
            corrected + overhead,
            best as f64 / corrected_total as f64,
            contexts + overhead,
            best as f64 / contexts_total as f64,
        );
    }
    Ok(())
}

/// A field on its grid: the indices every decoder sees, and which values escape it.
struct Field<'a> {
    values: &'a [f64],
    k: Vec<i64>,
    escaped: Vec<bool>,
    height: usize,
    width: usize,
    /// A block's first frames that 3-D Lorenzo predicts (2 for the 60-tap predictor, 0 for
    /// the in-frame one).
    lorenzo_frames: usize,
    /// The stream bytes of the learned weights.
    weight_bytes: usize,
}

impl<'a> Field<'a> {
    fn new(values: &'a [f64], height: usize, width: usize, g: &ColumnGrid) -> Self {
        let (k, escaped) = values
            .iter()
            .map(
                |&v| match grid_index(v, g).filter(|&k| g.keeps(v, g.value(k))) {
                    Some(k) => (k, false),
                    None => (0, true),
                },
            )
            .unzip();
        Field {
            values,
            k,
            escaped,
            height,
            width,
            lorenzo_frames: 2,
            weight_bytes: 4 * LEARNED_TAPS,
        }
    }

    fn n(&self) -> usize {
        self.height * self.width
    }

    /// The three frames `field_taps` reads for frame `f` (missing ones empty).
    fn window(&self, f: usize) -> [&[i64]; 3] {
        let n = self.n();
        let frame = |t: Option<usize>| t.map_or(&[][..], |t| &self.k[t * n..(t + 1) * n]);
        [
            frame(f.checked_sub(2)),
            frame(f.checked_sub(1)),
            frame(Some(f)),
        ]
    }

    /// The linear prediction and the taps of value `j`, as the codec predicts it: a block's
    /// first `lorenzo_frames` frames by 3-D Lorenzo, the others by the learned weights.
    fn linear(&self, weights: &[i32; LEARNED_TAPS], j: usize) -> (i64, [i64; LEARNED_TAPS]) {
        let (f, i) = (j / self.n(), j % self.n());
        let mut taps = [0i64; LEARNED_TAPS];
        field_taps(self.window(f), i, self.width, self.height, &mut taps);
        if f < self.lorenzo_frames {
            let [_, previous, current] = self.window(f);
            let at = (i / self.width, i % self.width);
            return (lorenzo(current, previous, at, self.width).0, taps);
        }
        let sum = taps.iter().zip(weights).fold(0i64, |a, (&t, &w)| {
            a.wrapping_add(t.wrapping_mul(i64::from(w)))
        });
        (round_fixed(sum), taps)
    }

    /// Every value's residual (0 where it escapes), its prediction corrected by `mlp`.
    fn residuals(
        &self,
        weights: &[i32; LEARNED_TAPS],
        mlp: Option<&Mlp<'_>>,
    ) -> Result<Vec<i64>, String> {
        (0..self.k.len())
            .map(|j| {
                let (mut p, taps) = self.linear(weights, j);
                if let Some(mlp) = mlp {
                    p = p.wrapping_add(mlp.eval(&correction_features(&taps, p))?.round() as i64);
                }
                Ok(if self.escaped[j] {
                    0
                } else {
                    self.k[j].wrapping_sub(p)
                })
            })
            .collect()
    }

    /// Kind 6's context class of value `j` (`residual_activity` with the residual to its
    /// left), from the `residuals` coded before it.
    fn kind6_class(&self, residuals: &[i64], j: usize) -> usize {
        let (f, i) = (j / self.n(), j % self.n());
        let (row, col) = (i / self.width, i % self.width);
        let [_, previous, current] = self.window(f);
        let left = if col > 0 {
            residuals[j - 1].unsigned_abs()
        } else {
            0
        };
        let activity = residual_activity(current, previous, (row, col), self.width, left);
        bit_len(activity).min(FIELD_CLASSES - 1)
    }

    /// Codes every value in one block with the tabled coder, in the context `class` gives;
    /// returns the payload's bytes plus the learned weights' (4 bytes a tap).
    fn code(
        &self,
        residuals: &[i64],
        class: impl Fn(usize) -> Result<usize, String>,
    ) -> Result<usize, String> {
        let total = self.k.len();
        let mut tokens = vec![0u16; total];
        let mut raw = vec![0u8; total * 9 + 64];
        let mut coder = TabledEncoder::new(&mut tokens, &mut raw);
        for (j, &r) in residuals.iter().enumerate() {
            let wanted = match self.escaped[j] {
                true => Coded::Raw(self.values[j].to_bits()),
                false => Coded::Residual(r),
            };
            let class = class(j)?.min(FIELD_CLASSES - 1);
            coder
                .residual(&mut [], class, wanted)
                .map_err(|e| e.to_string())?;
        }
        let mut tables = vec![ContextTable::EMPTY; FIELD_CLASSES];
        let mut out = vec![0u8; total * 12 + (1 << 20)];
        let len = coder
            .finish(&mut tables, &mut out)
            .map_err(|e| e.to_string())?;
        Ok(len + self.weight_bytes)
    }

    /// The learned entropy model's inputs for value `j`: the bit lengths of the residuals
    /// of its causal neighbours (left, two left, up, up-left, up-right, two up; the same
    /// place in the frame before) and of kind 6's gradient activity.
    fn context_features(&self, residuals: &[i64], j: usize) -> [f32; CONTEXT_FEATURES] {
        let (f, i) = (j / self.n(), j % self.n());
        let (row, col) = ((i / self.width) as isize, (i % self.width) as isize);
        let at = |dr: isize, dc: isize| {
            let (r, c) = (row + dr, col + dc);
            let inside = r >= 0 && c >= 0 && c < self.width as isize;
            let j = f * self.n() + (r.max(0) as usize) * self.width + c.max(0) as usize;
            match inside {
                true => bit_len(residuals[j].unsigned_abs()) as f32,
                false => 0.0,
            }
        };
        let before = match f {
            0 => 0.0,
            _ => bit_len(residuals[j - self.n()].unsigned_abs()) as f32,
        };
        let [_, previous, current] = self.window(f);
        let gradients = residual_activity(
            current,
            previous,
            (row as usize, col as usize),
            self.width,
            0,
        );
        [
            at(0, -1),
            at(0, -2),
            at(-1, 0),
            at(-1, -1),
            at(-1, 1),
            at(-2, 0),
            before,
            bit_len(gradients) as f32,
        ]
    }
}

fn bit_len(v: u64) -> usize {
    (64 - v.leading_zeros()) as usize
}

/// Features of the predictor correction.
const CORRECTION_FEATURES: usize = 14;
/// Features of the learned entropy model.
const CONTEXT_FEATURES: usize = 8;

/// The correction's inputs for a value with `taps` and linear prediction `p`: the 10 causal
/// taps and the centres of the two earlier frames' 5 x 5 windows, each less `p`, and the
/// two nearest causal neighbours as they are (a zero neighbourhood from a busy one).
fn correction_features(taps: &[i64; LEARNED_TAPS], p: i64) -> [f32; CORRECTION_FEATURES] {
    let mut x = [0f32; CORRECTION_FEATURES];
    for (x, &t) in x.iter_mut().zip(&taps[..10]) {
        *x = t.wrapping_sub(p) as f32;
    }
    x[10] = taps[10 + 12].wrapping_sub(p) as f32;
    x[11] = taps[35 + 12].wrapping_sub(p) as f32;
    x[12] = taps[0] as f32;
    x[13] = taps[1] as f32;
    x
}

/// A quantized MLP as a coder would run it: its inputs clipped, the codec's integer
/// inference, its one output in the target's units.
struct Mlp<'m> {
    model: &'m HostModel<'m>,
    /// Inputs are clipped to +-clip (part of the model).
    clip: f32,
    /// Target units per output code.
    out_step: f32,
}

impl Mlp<'_> {
    fn eval(&self, x: &[f32]) -> Result<f32, String> {
        let clipped: Vec<f32> = x.iter().map(|v| v.clamp(-self.clip, self.clip)).collect();
        let mut code = [0i16; 1];
        self.model
            .encode_frame(&clipped, &mut code)
            .map_err(|e| e.to_string())?;
        Ok(f32::from(code[0]) * self.out_step)
    }
}

struct Trained {
    model: FloatModel,
    clip: f32,
    out_step: f32,
    start_loss: f64,
    best_loss: f64,
}

impl Trained {
    /// The blob, and the bytes a stream would carry for the MLP (the blob, the clip and
    /// the output step).
    fn blob(&self) -> Result<(Vec<u8>, usize), String> {
        let blob = quantize(&self.model).map_err(|e| e.to_string())?;
        let side = blob.len() + 8;
        Ok((blob, side))
    }
}

/// Up to [`TRAIN_POSITIONS`] values spread over the field, as (features, target) rows.
fn samples<const F: usize>(
    field: &Field<'_>,
    row: impl Fn(usize) -> Option<([f32; F], f32)>,
) -> (Vec<f32>, Vec<f32>) {
    let total = field.k.len();
    let stride = total.div_ceil(TRAIN_POSITIONS).max(1);
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for j in (0..total).step_by(stride) {
        if let Some((x, y)) = row(j) {
            xs.extend_from_slice(&x);
            ys.push(y);
        }
    }
    (xs, ys)
}

/// Trains a regression MLP `features -> target` (10% of the rows held out for early
/// stopping): Huber loss in units of the target's spread (its 90th percentile magnitude),
/// inputs and targets clipped at their 99.9th percentile magnitude.
fn fit_mlp(
    mut xs: Vec<f32>,
    ys: &[f32],
    features: usize,
    epochs: usize,
    hidden: &[usize],
) -> Result<Trained, String> {
    let rows = ys.len();
    if rows < 100 {
        return Err("too few values to train on".into());
    }
    let percentile = |mut v: Vec<f32>, q: f64| {
        v.sort_by(f32::total_cmp);
        v[((v.len() - 1) as f64 * q) as usize].max(1.0)
    };
    let clip = percentile(xs.iter().map(|v| v.abs()).collect(), 0.999);
    for x in xs.iter_mut() {
        *x = x.clamp(-clip, clip);
    }
    let spread = percentile(ys.iter().map(|v| v.abs()).collect(), 0.9);
    let target_clip = percentile(ys.iter().map(|v| v.abs()).collect(), 0.999);
    let (offset, scale): (Vec<f32>, Vec<f32>) = (0..features)
        .map(|c| {
            let col = || xs.iter().skip(c).step_by(features);
            let mean = col().map(|&v| f64::from(v)).sum::<f64>() / rows as f64;
            let var = col().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / rows as f64;
            (mean as f32, (var.sqrt() as f32).max(1e-3))
        })
        .unzip();
    let z: Vec<f32> = xs
        .chunks_exact(features)
        .flat_map(|x| {
            x.iter()
                .zip(offset.iter().zip(&scale))
                .map(|(v, (o, s))| (v - o) / s)
        })
        .collect();
    let t: Vec<f32> = ys
        .iter()
        .map(|&y| y.clamp(-target_clip, target_clip) / spread)
        .collect();

    let dev = Cpu::default();
    let mut rng = SplitMix64(0x6e65_7572_616c);
    let widths: Vec<usize> = [features]
        .into_iter()
        .chain(hidden.iter().copied())
        .chain([1])
        .collect();
    let mut layers: Vec<Layer> = widths
        .windows(2)
        .map(|w| {
            let b = 1.0 / (w[0] as f32).sqrt();
            let wt: Vec<f32> = (0..w[0] * w[1]).map(|_| rng.symmetric() * b).collect();
            let bias: Vec<f32> = (0..w[1]).map(|_| rng.symmetric() * b).collect();
            (
                dev.tensor_from_vec(wt, (w[1], w[0])),
                dev.tensor_from_vec(bias, (w[1],)),
            )
        })
        .collect();
    let mut order: Vec<usize> = (0..rows).collect();
    for i in (1..rows).rev() {
        order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    let held = rows / 10;
    let (val, train) = order.split_at(held);
    let mut train = train.to_vec();
    let batch = |idx: &[usize]| {
        let mut x = Vec::with_capacity(idx.len() * features);
        let mut y = Vec::with_capacity(idx.len());
        for &i in idx {
            x.extend_from_slice(&z[i * features..(i + 1) * features]);
            y.push(t[i]);
        }
        (
            dev.tensor_from_vec(x, (idx.len(), features)),
            dev.tensor_from_vec(y, (idx.len(), 1)),
        )
    };
    let evaluate = |layers: &[Layer]| {
        let mut sum = 0f64;
        for chunk in val.chunks(4096) {
            let (x, y) = batch(chunk);
            let loss = huber_loss(forward(layers, x), y, 1.0).as_vec()[0];
            sum += f64::from(loss) * chunk.len() as f64;
        }
        sum / val.len().max(1) as f64
    };
    let mut adam = AdamConfig {
        lr: 2e-3,
        ..Default::default()
    };
    let (mut m1, mut m2): (Gradients<f32, Cpu>, Gradients<f32, Cpu>) =
        (Gradients::leaky(), Gradients::leaky());
    let start_loss = evaluate(&layers);
    let mut best_loss = start_loss;
    let snapshot = |l: &[Layer]| {
        l.iter()
            .map(|(w, b)| (w.as_vec(), b.as_vec()))
            .collect::<Vec<_>>()
    };
    let mut best = snapshot(&layers);
    let mut step = 0i32;
    let mut since = 0;
    for _ in 0..epochs {
        for i in (1..train.len()).rev() {
            train.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        for idx in train.chunks(256) {
            let (x, y) = batch(idx);
            let loss = huber_loss(forward(&layers, x.leaky_traced()), y, 1.0);
            let mut grads = loss.backward();
            step += 1;
            for (w, b) in layers.iter_mut() {
                adam_step(&adam, step, w, &mut grads, &mut m1, &mut m2)?;
                adam_step(&adam, step, b, &mut grads, &mut m1, &mut m2)?;
            }
        }
        let loss = evaluate(&layers);
        if loss < best_loss {
            (best_loss, best, since) = (loss, snapshot(&layers), 0);
        } else {
            since += 1;
            if since == 3 {
                adam.lr *= 0.5;
            }
            if since >= 8 {
                break;
            }
        }
    }
    let depth = best.len();
    let float_layers: Vec<FloatLayer> = best
        .into_iter()
        .zip(widths.windows(2))
        .enumerate()
        .map(|(i, ((weights, bias), w))| FloatLayer {
            inputs: w[0],
            outputs: w[1],
            weights,
            bias,
            activation: match i + 1 == depth {
                true => FloatActivation::Identity,
                false => FloatActivation::LeakyRelu(SLOPE),
            },
            pre_range: 0.0,
            out_range: 0.0,
        })
        .chain([FloatLayer {
            // The codec's model is an autoencoder: a decoder of one zero row per feature
            // that nothing runs (its bytes are counted in the blob all the same).
            inputs: 1,
            outputs: features,
            weights: vec![0.0; features],
            bias: vec![0.0; features],
            activation: FloatActivation::Identity,
            pre_range: 0.0,
            out_range: 0.0,
        }])
        .collect();
    let mut model = FloatModel {
        frame_shape: vec![features as u32],
        names: Vec::new(),
        code_bits: 16,
        encoder_layers: depth,
        offset,
        scale,
        input_range: 0.0,
        layers: float_layers,
        exact: Vec::new(),
        corrections: Vec::new(),
    };
    model.calibrate(&xs);
    let out_range = model.layers[depth - 1].out_range.max(f32::MIN_POSITIVE);
    Ok(Trained {
        out_step: out_range / f32::from(i16::MAX) * spread,
        model,
        clip,
        start_loss,
        best_loss,
    })
}

type Layer = (Tensor<(usize, usize), f32, Cpu>, Tensor<(usize,), f32, Cpu>);

fn forward<T: Tape<f32, Cpu>>(
    layers: &[Layer],
    x: Tensor<(usize, usize), f32, Cpu, T>,
) -> Tensor<(usize, usize), f32, Cpu, T> {
    let mut a = x;
    let last = layers.len() - 1;
    for (i, (w, b)) in layers.iter().enumerate() {
        let y = a.matmul(w.retaped::<T>().permute::<(usize, usize), Axes2<1, 0>>());
        let shape = *y.shape();
        let y = y + b.retaped::<T>().broadcast_like::<_, Axis<0>>(&shape);
        a = if i == last { y } else { leakyrelu(y, SLOPE) };
    }
    a
}

/// One Adam update of `param` (as `baler-train` does it).
fn adam_step<S: Shape>(
    cfg: &AdamConfig,
    step: i32,
    param: &mut Tensor<S, f32, Cpu>,
    grads: &mut Gradients<f32, Cpu>,
    moment1: &mut Gradients<f32, Cpu>,
    moment2: &mut Gradients<f32, Cpu>,
) -> Result<(), String> {
    let err = |e| format!("training step failed: {e:?}");
    let g = grads.get_or_alloc_mut(param).map_err(err)?;
    let m = moment1.get_or_alloc_mut(param).map_err(err)?;
    let v = moment2.get_or_alloc_mut(param).map_err(err)?;
    cfg.try_update(step, param, m, v, g).map_err(err)
}
