//! The commands behind the CLI verbs. Errors are one-line messages.

use baler::data::{self, AtomicFile};
use baler::pipeline::bounded;
use baler::pipeline::{Bound, Chosen, ColumnBounds, Options, UseModel};
use baler::tiles::{parse_tile, Tiling};
use baler_codec::stream::FLAG_ERROR_BOUNDED;
use baler_codec::{HostModel, StreamHeader};
use baler_train::autoencoder::{self as train, Device, TrainConfig};
use baler_train::tune;
use indicatif::{ProgressBar, ProgressStyle};
use std::borrow::Cow;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// `println!` that ignores a closed stdout (e.g. `baler info x | head`) instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Quantization-aware fine-tuning starts when the quantized validation error exceeds the float
/// one by this factor.
const QAT_TRIGGER: f64 = 1.25;

/// Arguments of `baler train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Data file (.npz, .npy or .csv).
    #[arg(long)]
    pub input: std::path::PathBuf,
    /// Output model blob.
    #[arg(long)]
    pub output: std::path::PathBuf,
    /// Latent width (default: from --compression-ratio).
    #[arg(long)]
    pub latent: Option<usize>,
    /// Columns per latent value: latent = ceil(columns / R).
    #[arg(long, default_value_t = 4.0)]
    pub compression_ratio: f64,
    /// Hidden widths of the encoder (the decoder mirrors them).
    #[arg(long, value_delimiter = ',', default_value = "200,100,50")]
    pub hidden: Vec<usize>,
    /// Maximum epochs.
    #[arg(long, default_value_t = 200)]
    pub epochs: usize,
    /// Mini-batch size.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Initial learning rate (Adam).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Fraction of rows held out for validation.
    #[arg(long, default_value_t = 0.2)]
    pub validation_fraction: f64,
    /// Seed for initialization, shuffling and the split.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Latent code width in bits (1..=16).
    #[arg(long, default_value_t = 8)]
    pub code_bits: u8,
    /// cpu or cuda.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Epochs of quantization-aware fine-tuning, run when the quantized model's validation
    /// error exceeds 1.25x the float model's (0: never).
    #[arg(long, default_value_t = 20)]
    pub qat_epochs: usize,
    /// For [frames, h, w] fields: train on tiles of HxW (e.g. 10x10) so one small model
    /// serves any frame size.
    #[arg(long)]
    pub tile: Option<String>,
    /// Tune the model for `compress --rel-error-bound R`: quantize it with latent codes of
    /// 4, 6, 8, 10 and 12 bits (the latent step), estimate each one's compressed size (stream
    /// plus blob) on the data, and keep the smallest. Replaces --code-bits.
    #[arg(long, value_name = "R")]
    pub optimize_for_bound: Option<f64>,
    /// Discrete columns (charges, counts, flags: at most 64 distinct values) coded exactly
    /// beside the latent codes, in their own few bits per row: `auto` finds them in a table
    /// (not in fields, tiles or models for --optimize-for-bound), `none` codes every column
    /// through the network.
    #[arg(long, default_value = "auto", value_parser = ["auto", "none"])]
    pub exact_columns: String,
    /// Bits a row for per-column corrections of the network's output, spread by training
    /// over the columns it reconstructs worst (relative to each column's range): `auto` gives
    /// a table as many as its latent code has (so a row costs twice the latent code) and
    /// other data none; 0 turns them off. The rate stays fixed.
    #[arg(long, default_value = "auto", value_parser = parse_correction_bits)]
    pub correction_bits: CorrectionBits,
}

/// `--correction-bits`: `auto` or a number of bits a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorrectionBits {
    /// As many as the latent code's bits for a table, none otherwise.
    Auto,
    /// This many bits a row.
    Bits(usize),
}

fn parse_correction_bits(text: &str) -> Result<CorrectionBits, String> {
    match text {
        "auto" => Ok(CorrectionBits::Auto),
        _ => text
            .parse()
            .map(CorrectionBits::Bits)
            .map_err(|_| format!("expected `auto` or a number of bits, not `{text}`")),
    }
}

fn read_model(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn load<'a>(path: &Path, blob: &'a [u8]) -> Result<HostModel<'a>, String> {
    HostModel::from_bytes(blob).map_err(|e| format!("{}: {e}", path.display()))
}

/// A progress bar for `len` units of work.
pub(crate) fn progress(len: u64, what: &str, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{what} [{{bar:30}}] {{pos}}/{{len}} {unit} {{elapsed}}"
    )) {
        bar.set_style(style);
    }
    bar
}

/// The library's progress callback (done, total) shown on `bar`.
fn follow(bar: &ProgressBar) -> impl Fn(u64, u64) + '_ {
    |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    }
}

/// `baler train`.
pub fn train(args: &TrainArgs) -> Result<(), String> {
    let device = match args.device.as_str() {
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda,
        other => return Err(format!("unknown device '{other}' (cpu or cuda)")),
    };
    if !(1..=16).contains(&args.code_bits) {
        return Err(format!("--code-bits {} is outside 1..=16", args.code_bits));
    }
    if !(args.compression_ratio.is_finite() && args.compression_ratio > 0.0) {
        return Err(format!(
            "--compression-ratio must be a positive number, not {}",
            args.compression_ratio
        ));
    }
    distinct(&args.output, &[Some(&args.input)])?;
    let data = data::read_for_model(&args.input)?;
    // A model keeps its column names one per line.
    if let Some(c) = data.names.iter().position(|name| name.contains('\n')) {
        return Err(format!(
            "{}: the name of column {} has a line break, which a model cannot store; rename it",
            args.input.display(),
            data::column_label(&data.names, c)
        ));
    }
    if let Some(r) = args
        .optimize_for_bound
        .filter(|r| !(r.is_finite() && *r > 0.0))
    {
        return Err(format!(
            "--optimize-for-bound must be a positive fraction of the range, not {r}"
        ));
    }
    if let (Some(_), CorrectionBits::Bits(bits @ 1..)) =
        (args.optimize_for_bound, args.correction_bits)
    {
        return Err(format!(
            "--correction-bits {bits} is for fixed-rate streams; a model tuned with --optimize-for-bound serves the error-bounded mode, which codes its own residuals"
        ));
    }
    let mut tiling = None;
    let (values, n, shape, names) = match (&args.tile, data.shape.as_slice()) {
        (Some(tile), [_, h, w]) => {
            let tile = parse_tile(tile)?;
            let tiles = Tiling {
                frame: (*h, *w),
                tile,
            };
            tiling = Some(tiles);
            let shape = vec![tile.0 as u32, tile.1 as u32];
            (
                Cow::Owned(tiles.split(&data.values)),
                tiles.tile_len(),
                shape,
                Vec::new(),
            )
        }
        (Some(_), other) => {
            return Err(format!(
                "--tile needs [frames, h, w] data, not shape {other:?}"
            ));
        }
        (None, dims) => {
            let shape = dims[1..].iter().map(|&d| d as u32).collect();
            (
                Cow::Borrowed(&data.values[..]),
                data.row_len(),
                shape,
                data.names.clone(),
            )
        }
    };
    let latent = args
        .latent
        .unwrap_or_else(|| (n as f64 / args.compression_ratio).ceil().max(1.0) as usize);
    // A model blob stores layer widths in 16 bits.
    let widest = args.hidden.iter().chain([&n, &latent]).max().copied();
    if let Some(w) = widest.filter(|&w| w > usize::from(u16::MAX)) {
        return Err(format!(
            "a layer of {w} values is more than a model holds ({}); use --error-bound without a model for rows this wide",
            u16::MAX
        ));
    }
    // The outputs are opened before training, so an unwritable path fails at once; they
    // appear under their names only when complete.
    let history_path = args.output.with_extension("loss.json");
    let model_file = AtomicFile::create(&args.output)?;
    let history_file = AtomicFile::create(&history_path)?;
    let table = tiling.is_none() && data.shape.len() == 2;
    let exact = if args.exact_columns == "auto" && table && args.optimize_for_bound.is_none() {
        train::discrete_columns(&values, n)
    } else {
        Vec::new()
    };
    if !exact.is_empty() {
        let label = |c: usize| data::column_label(&data.names, c);
        let listed: Vec<String> = exact
            .iter()
            .map(|e| format!("{} ({} values)", label(e.column), e.values.len()))
            .collect();
        say!(
            "coded exactly beside the latent codes: {}",
            listed.join(", ")
        );
    }
    let config = TrainConfig {
        hidden: args.hidden.clone(),
        latent,
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        validation_fraction: args.validation_fraction,
        seed: args.seed,
        code_bits: args.code_bits,
        device,
        progress: true,
        exact,
    };
    let started = Instant::now();
    let mut outcome = train::train(&values, n, shape, names, &config)?;
    // From here on a failure keeps the trained float weights (fine-tuned, if that ran): they
    // are written beside the output, so minutes or hours of training are never thrown away.
    let finished = finish_training(
        args,
        &values,
        n,
        tiling,
        &mut outcome,
        &config,
        started,
        model_file,
        history_file,
    );
    finished.map_err(|e| {
        let checkpoint = args.output.with_extension("float.json");
        match save_float_checkpoint(&checkpoint, &outcome.model) {
            Ok(()) => format!(
                "{e}; the trained float model is kept in {}",
                checkpoint.display()
            ),
            Err(saving) => format!("{e}; saving the trained float model failed too: {saving}"),
        }
    })
}

/// The float model as JSON (normalization, layers with their weights, activations and
/// calibrated ranges): what a failed quantization leaves behind.
fn save_float_checkpoint(
    path: &Path,
    model: &baler_codec::model::quantize::FloatModel,
) -> Result<(), String> {
    let layers: Vec<serde_json::Value> = model
        .layers
        .iter()
        .map(|l| {
            serde_json::json!({
                "inputs": l.inputs, "outputs": l.outputs, "weights": l.weights, "bias": l.bias,
                "activation": format!("{:?}", l.activation), "pre_range": l.pre_range,
                "out_range": l.out_range,
            })
        })
        .collect();
    let json = serde_json::json!({
        "frame_shape": model.frame_shape, "names": model.names, "code_bits": model.code_bits,
        "encoder_layers": model.encoder_layers, "offset": model.offset, "scale": model.scale,
        "input_range": model.input_range, "layers": layers,
        "exact_columns": model.exact.iter().map(|e| serde_json::json!({
            "column": e.column, "values": e.values,
        })).collect::<Vec<_>>(),
        "corrections": model.corrections.iter().map(|c| serde_json::json!({
            "column": c.column, "bits": c.bits, "low": c.low, "step": c.step,
        })).collect::<Vec<_>>(),
    });
    let mut file = AtomicFile::create(path).map_err(|e| e.to_string())?;
    serde_json::to_writer(file.writer(), &json).map_err(|e| e.to_string())?;
    file.commit().map_err(|e| e.to_string())
}

/// What `train` does after training: quantization (with fine-tuning where it pays, which
/// replaces `outcome`), the outputs and the report.
#[allow(clippy::too_many_arguments)]
fn finish_training(
    args: &TrainArgs,
    values: &[f32],
    n: usize,
    tiling: Option<Tiling>,
    outcome: &mut train::TrainOutcome,
    config: &TrainConfig,
    started: Instant,
    mut model_file: AtomicFile,
    mut history_file: AtomicFile,
) -> Result<(), String> {
    let latent = outcome.model.layers[outcome.model.encoder_layers - 1].outputs;
    let history_path = args.output.with_extension("loss.json");
    let float_mse = float_validation_mse(values, n, outcome);
    let mut quant_mse =
        train::quantized_validation_mse(values, n, &outcome.model, &outcome.validation)?;
    say!("validation MSE (normalized): float {float_mse:.5}, quantized {quant_mse:.5}");
    if args.qat_epochs > 0 && quant_mse > QAT_TRIGGER * float_mse {
        say!(
            "quantized error exceeds {QAT_TRIGGER}x the float error: quantization-aware fine-tuning ({} epochs)",
            args.qat_epochs
        );
        *outcome = train::fine_tune_quantized(values, n, outcome, config, args.qat_epochs)?;
        quant_mse =
            train::quantized_validation_mse(values, n, &outcome.model, &outcome.validation)?;
        say!("after fine-tuning: quantized {quant_mse:.5}");
    }
    let blob = match args.optimize_for_bound {
        Some(rel) => latent_step_for_bound(&outcome.model, tiling, &args.input, rel)?,
        None => {
            let table = tiling.is_none() && outcome.model.frame_shape.len() == 1;
            let budget = match args.correction_bits {
                CorrectionBits::Auto if table => latent * usize::from(outcome.model.code_bits),
                CorrectionBits::Auto => 0,
                CorrectionBits::Bits(bits) => bits,
            };
            if budget > 0 {
                fit_corrections(values, n, &mut outcome.model, budget)?;
            }
            outcome
                .model
                .quantize()
                .map_err(|e| format!("quantization: {e}"))?
        }
    };
    let model = HostModel::from_bytes(&blob).map_err(|e| format!("quantization: {e}"))?;
    let history = serde_json::to_string_pretty(&outcome.history).map_err(|e| e.to_string())?;
    history_file
        .writer()
        .write_all(history.as_bytes())
        .map_err(|e| format!("{}: {e}", history_path.display()))?;
    model_file
        .writer()
        .write_all(&blob)
        .map_err(|e| format!("{}: {e}", args.output.display()))?;
    // The history first: a model under its name always has its history beside it.
    history_file.commit()?;
    model_file.commit()?;
    say!(
        "trained {n} -> {latent} ({} epochs, {:.1} s); validation MSE (normalized): float {float_mse:.5}, quantized {quant_mse:.5}",
        outcome.history.len(),
        started.elapsed().as_secs_f64(),
    );
    say!(
        "model {:016x}: {} bytes -> {}; loss history -> {}",
        model.id(),
        blob.len(),
        args.output.display(),
        history_path.display()
    );
    Ok(())
}

/// Fits `budget` bits a row of per-column corrections into `model` and says what they do.
fn fit_corrections(
    values: &[f32],
    n: usize,
    model: &mut baler_codec::model::quantize::FloatModel,
    budget: usize,
) -> Result<(), String> {
    let bar = progress((values.len() / n.max(1)) as u64, "corrections", "rows");
    let fit = baler_train::corrections::fit_corrections(values, n, model, budget, &bar);
    bar.finish_and_clear();
    let fit = fit?;
    let spent: usize = fit.corrections.iter().map(|c| usize::from(c.bits)).sum();
    let percent = |errors: &[f64]| {
        let mut sorted = errors.to_vec();
        sorted.sort_by(f64::total_cmp);
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
        let worst = sorted.last().copied().unwrap_or(0.0);
        (100.0 * median, 100.0 * worst)
    };
    let (before, after) = (percent(&fit.before), percent(&fit.after));
    say!(
        "per-column corrections: {spent} bits a row over {} columns; largest error on the data, median column {:.1}% -> {:.1}% of its range, worst column {:.1}% -> {:.1}%",
        fit.corrections.len(),
        before.0,
        after.0,
        before.1,
        after.1
    );
    model.corrections = fit.corrections;
    Ok(())
}

/// `--optimize-for-bound`: the blob of the latent code width that compresses smallest
/// within `rel` x range, after a table of every candidate and of the paths without a model.
fn latent_step_for_bound(
    model: &baler_codec::model::quantize::FloatModel,
    tiling: Option<Tiling>,
    input: &Path,
    rel: f64,
) -> Result<Vec<u8>, String> {
    say!("choosing the latent step for --rel-error-bound {rel} (estimated on a sample, blob counted):");
    let search = tune::search(model, tiling, input, rel)?;
    for (what, bytes) in &search.without_model {
        say!("  {what:<30} {:>12.0} bytes", bytes);
    }
    for c in &search.candidates {
        say!(
            "  autoencoder, {:>2}-bit codes     {:>12.0} bytes (blob {} bytes)",
            c.code_bits,
            c.total,
            c.blob.len()
        );
    }
    let best = search.best().ok_or("no candidate quantization")?;
    say!("kept {}-bit latent codes", best.code_bits);
    let smaller = search
        .without_model
        .iter()
        .filter(|(_, bytes)| *bytes < best.total)
        .min_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((what, bytes)) = smaller {
        say!(
            "note: the {what} path is smaller at this bound ({bytes:.0} against {:.0} bytes): compress --use-model auto will not use this model",
            best.total
        );
    }
    Ok(best.blob.clone())
}

/// Validation MSE of the float model, in normalized units.
fn float_validation_mse(values: &[f32], n: usize, outcome: &train::TrainOutcome) -> f64 {
    let model = &outcome.model;
    let mut ranges = vec![(0f32, 0f32); model.layers.len()];
    let (mut sq, mut count) = (0f64, 0usize);
    for &row in &outcome.validation {
        let z: Vec<f32> = values[row * n..(row + 1) * n]
            .iter()
            .zip(model.offset.iter().zip(&model.scale))
            .map(|(x, (o, s))| (x - o) / s)
            .collect();
        let mut recon = model.forward_normalized(&z, &mut ranges);
        // The exact columns come back as the stream codes them.
        for e in &model.exact {
            recon[e.column] = z[e.column];
        }
        sq += recon
            .iter()
            .zip(&z)
            .map(|(a, b)| f64::from((a - b).powi(2)))
            .sum::<f64>();
        count += n;
    }
    sq / count.max(1) as f64
}

/// Refuses an output that is one of the command's own files (the input or the model), which
/// the output would replace.
fn distinct(output: &Path, sources: &[Option<&Path>]) -> Result<(), String> {
    let Ok(target) = std::fs::canonicalize(output) else {
        return Ok(()); // not there yet
    };
    for (source, what) in sources.iter().zip(["input", "model", "column bounds"]) {
        if source.and_then(|p| std::fs::canonicalize(p).ok()).as_ref() == Some(&target) {
            return Err(format!(
                "{}: the output is the {what} file; choose another --output",
                output.display()
            ));
        }
    }
    Ok(())
}

/// `baler compress`: the library's file driver, which reads the input in chunks of whole
/// rows, codes each chunk's blocks in parallel and writes them as they come, so memory stays
/// bounded for any input size; then the one-line report.
pub fn compress(
    model_path: Option<&Path>,
    input: &Path,
    output: &Path,
    bound: Option<Bound>,
    column_bounds: Option<&Path>,
    use_model: UseModel,
    field: bool,
) -> Result<(), String> {
    distinct(output, &[Some(input), model_path, column_bounds])?;
    let spec = column_bounds
        .map(ColumnBounds::read)
        .transpose()
        .map_err(|e| e.to_string())?;
    let (bound, columns) = match spec {
        Some(spec) => {
            let (default, columns) = spec.with_default(bound).map_err(|e| e.to_string())?;
            (Some(default), columns)
        }
        None => (bound, Vec::new()),
    };
    if field && bound.is_none() {
        return Err(
            "--field goes with an error bound (--error-bound, --rel-error-bound, ...)".to_string(),
        );
    }
    if let Some(b) = &bound {
        b.check().map_err(|e| e.to_string())?;
    }
    if bound.is_none() && model_path.is_none() {
        return Err("--model is required (or give --error-bound)".to_string());
    }
    let blob = model_path.map(read_model).transpose()?;
    if let (Some(path), Some(bytes)) = (model_path, &blob) {
        load(path, bytes)?;
    }
    let options = Options {
        bound,
        use_model,
        model: blob.as_deref(),
        field,
        columns: &columns,
    };
    let started = Instant::now();
    let bar = progress(0, "compress", "rows");
    let report = follow(&bar);
    let outcome =
        baler::compress_file(input, output, &options, &report).map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let raw = outcome.raw_bytes as f64;
    let sizes = format!(
        "{} -> {}: {} -> {} bytes, ratio {:.2} ({:.2} with the {}-byte model",
        input.display(),
        output.display(),
        outcome.raw_bytes,
        outcome.stream_bytes,
        raw / outcome.stream_bytes as f64,
        raw / (outcome.stream_bytes + outcome.model_bytes) as f64,
        outcome.model_bytes,
    );
    let speed = raw / seconds.max(1e-9) / 1e6;
    let Some(bounded) = &outcome.bounded else {
        say!("{sizes}), {speed:.1} MB/s");
        return Ok(());
    };
    let how = match (model_path, bounded.predictor) {
        (_, Chosen::Model) => "with the model".to_string(),
        (_, Chosen::Learned(bytes)) => {
            format!("learned field predictor, its {bytes} bytes inside the stream")
        }
        (_, Chosen::LearnedInFrame(bytes)) => format!(
            "field predictor learned within each frame, its {bytes} bytes inside the stream"
        ),
        (_, Chosen::Relations(columns)) => {
            format!("{columns} columns predicted from earlier columns of their row")
        }
        (Some(_), Chosen::ModelFree) => {
            "model-free: smaller than with the model, its bytes counted".to_string()
        }
        (None, Chosen::ModelFree) => "model-free".to_string(),
        (_, Chosen::Interpolated) => "multilevel interpolation, model-free".to_string(),
    };
    say!(
        "{sizes}; {how}), max error {:.3} of the bound, {speed:.1} MB/s",
        bounded.worst_fraction_of_bound
    );
    if !bounded.estimates.is_empty() {
        let list: Vec<String> = bounded
            .estimates
            .iter()
            .map(|(what, bytes)| format!("{what} ~{bytes:.0} bytes"))
            .collect();
        say!(
            "  predictor chosen on a sample of rows: {}",
            list.join(", ")
        );
    }
    Ok(())
}

/// `baler decompress`: the library's file driver, which reads blocks in batches, decodes each
/// batch in parallel and writes the rows as they come; then the one-line report.
pub fn decompress(model_path: Option<&Path>, input: &Path, output: &Path) -> Result<(), String> {
    distinct(output, &[Some(input), model_path])?;
    let blob = model_path.map(read_model).transpose()?;
    if let (Some(path), Some(bytes)) = (model_path, &blob) {
        load(path, bytes)?;
    }
    let started = Instant::now();
    let bar = progress(0, "decompress", "frames");
    let report = follow(&bar);
    let decoded = baler::decompress_file(input, output, blob.as_deref(), &report)
        .map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    let raw = decoded.values * decoded.stream.dtype.size();
    let speed = raw as f64 / started.elapsed().as_secs_f64().max(1e-9) / 1e6;
    if decoded.stream.flags & FLAG_ERROR_BOUNDED != 0 {
        say!(
            "{} -> {}: {} values, {raw} bytes, {speed:.1} MB/s",
            input.display(),
            output.display(),
            decoded.values
        );
    } else {
        say!(
            "{} -> {}: {} frames of {}, {raw} bytes, {speed:.1} MB/s",
            input.display(),
            output.display(),
            decoded.stream.frame_count,
            decoded.stream.frame_len
        );
    }
    Ok(())
}

/// `baler info`.
/// An interpolation plan (as `params_report` gives it) in words, a line per level.
fn plan_lines(plan: &serde_json::Value) -> Vec<String> {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_string();
    let axes: Vec<String> = plan["axis_order"]
        .as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default();
    let mut lines = vec![format!(
        "{:>16}: {}, axes {}; {} fine bits, {} activity classes",
        "interpolation",
        text(&plan["volume"]),
        axes.join(", "),
        plan["fine_bits"],
        plan["activity_classes"]
    )];
    for level in plan["levels"].as_array().into_iter().flatten() {
        let cubic: Vec<String> = level["cubic"]
            .as_array()
            .map(|a| a.iter().map(text).collect())
            .unwrap_or_default();
        let how = match cubic.is_empty() {
            true => "linear".to_string(),
            false => format!("cubic along {}", cubic.join(", ")),
        };
        let stride = format!("stride {}", level["stride"]);
        lines.push(format!(
            "{stride:>16}: {how}, step {}",
            text(&level["step"])
        ));
    }
    lines
}

pub fn info(file: &Path, model_path: Option<&Path>, json: bool) -> Result<(), String> {
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let at = |e: baler_codec::Error| format!("{}: {e}", file.display());
    let report = match bytes.get(..4) {
        Some(b"BALM") => {
            let model = HostModel::from_bytes(&bytes).map_err(at)?;
            let half_bytes = |layers: &[baler_codec::LayerSpec<'_>]| -> usize {
                layers
                    .iter()
                    .map(|l| {
                        l.weights.bytes().len()
                            + l.bias.bytes().len()
                            + l.multiplier.bytes().len()
                            + l.shift.bytes().len()
                            + l.weight_scales.bytes().len()
                    })
                    .sum()
            };
            let widths: Vec<usize> = std::iter::once(model.input_len())
                .chain(model.layers().iter().map(|l| usize::from(l.outputs)))
                .collect();
            serde_json::json!({
                "kind": "model",
                "model_id": format!("{:016x}", model.id()),
                "bytes": bytes.len(),
                "widths": widths,
                "latent": model.latent_len(),
                "code_bits": model.code_bits(),
                "encoder_bytes": half_bytes(model.encoder()),
                "decoder_bytes": half_bytes(model.decoder()),
                "encoder_macs": model.encoder_macs(),
                "decoder_macs": model.decoder_macs(),
                "names": model.names().collect::<Vec<_>>(),
                "frame_bits": model.frame_bits(),
                "exact_columns": model.exact_columns().map(|(column, table)| {
                    let name = model.names().nth(column).map_or_else(|| column.to_string(), str::to_string);
                    serde_json::json!({"column": name, "values": table.len()})
                }).collect::<Vec<_>>(),
                "corrections": model.corrected_columns().map(|c| {
                    let name = model.names().nth(c.column).map_or_else(|| c.column.to_string(), str::to_string);
                    serde_json::json!({"column": name, "bits": c.bits, "step": c.step})
                }).collect::<Vec<_>>(),
            })
        }
        Some(b"BALS") => {
            let header = StreamHeader::read(&bytes).map_err(at)?;
            let dtype = header.dtype;
            let original = header
                .shape()
                .iter()
                .try_fold(dtype.size() as u64, |a, &d| a.checked_mul(d))
                .ok_or_else(|| format!("{}: header shape too large", file.display()))?;
            let mut report = serde_json::json!({
                "kind": "stream",
                "model_id": format!("{:016x}", header.model_id),
                "shape": header.shape(),
                "dtype": format!("{dtype:?}").to_lowercase(),
                "frames": header.frame_count,
                "frame_len": header.frame_len,
                "original_bytes": original,
                "compressed_bytes": bytes.len(),
                "ratio": original as f64 / bytes.len() as f64,
            });
            if header.flags & FLAG_ERROR_BOUNDED != 0 {
                let params = bounded::params_report(&bytes).map_err(at)?;
                // The data's own shape (a rank above 4 is folded in the header).
                report["shape"] = params["shape"].clone();
                report["error_bounded"] = params;
            }
            if let Some(path) = model_path {
                let blob = read_model(path)?;
                let model = load(path, &blob)?;
                if model.id() != header.model_id {
                    return Err(format!(
                        "{}: written by model {:016x}, not by {} ({:016x})",
                        file.display(),
                        header.model_id,
                        path.display(),
                        model.id()
                    ));
                }
                report["model_bytes"] = blob.len().into();
                report["ratio_with_model"] =
                    (original as f64 / (bytes.len() + blob.len()) as f64).into();
            }
            report
        }
        _ => return Err(format!("{}: not a baler model or stream", file.display())),
    };
    if json {
        say!("{report:#}");
    } else if let Some(map) = report.as_object() {
        for (key, value) in map {
            if key == "error_bounded" {
                continue;
            }
            say!("{key:>16}: {value}");
        }
        if let Some(params) = map.get("error_bounded").and_then(|p| p.as_object()) {
            for (key, value) in params {
                if key == "interpolation" {
                    for line in plan_lines(value) {
                        say!("{line}");
                    }
                } else if key != "bounds" && key != "column_bounds" && key != "shape" {
                    say!("{key:>16}: {value}");
                }
            }
            // Each column's promise, one line each.
            let promises = params.get("column_bounds").and_then(|c| c.as_array());
            for entry in promises.into_iter().flatten() {
                let column = match &entry["column"] {
                    serde_json::Value::String(name) => name.clone(),
                    other => format!("column {other}"),
                };
                say!("{column:>16}: {}", entry["bound"].as_str().unwrap_or(""));
            }
        }
    }
    Ok(())
}

/// `baler evaluate`: the summary line, then the table (or JSON); `bounds` are error bounds
/// as fractions of each column's range.
pub fn evaluate(
    original: &Path,
    reconstructed: &Path,
    json: bool,
    bounds: &[f64],
    periodic: bool,
    rate: Option<(&Path, Option<&Path>)>,
) -> Result<(), String> {
    baler::evaluate::check_bounds(bounds)?;
    let mut pair = baler::evaluate::DataPair::read(original, reconstructed)?;
    if periodic && pair.is_table() {
        // Azimuths are compared around the circle: a reconstruction of -3.14 for 3.14 is off
        // by 0.003, not by 6.28.
        let n = pair.columns();
        let names = pair.original.names.clone();
        // Which columns are azimuths is judged on float32 values, as training judges them;
        // the correction itself keeps full precision.
        let narrowed: Vec<f32> = pair.original.values.iter().map(|&v| v as f32).collect();
        let found = train::periodic_columns(&narrowed, n, &names);
        for p in &found {
            let rows = pair.original.values.chunks_exact(n);
            for (a, b) in rows.zip(pair.reconstructed.values.chunks_exact_mut(n)) {
                let d = b[p.column] - a[p.column];
                b[p.column] = a[p.column] + train::around_the_circle(d, f64::from(p.period));
            }
        }
        if !found.is_empty() && !json {
            let listed: Vec<String> = found
                .iter()
                .map(|p| data::column_label(&names, p.column))
                .collect();
            say!(
                "periodic, compared around the circle (--periodic none: as lines): {}",
                listed.join(", ")
            );
        }
    }
    let evaluation = baler::evaluate::Evaluation::new(&pair, bounds)?;
    let view = match rate {
        Some((stream, model)) => Some(rate_distortion(&pair, &evaluation, stream, model)?),
        None => None,
    };
    if json {
        let mut report = evaluation.to_json();
        if let Some((_, value)) = &view {
            report["same_size"] = value.clone();
        }
        say!("{report:#}");
    } else {
        say!("{}", evaluation.text());
        if let Some((text, _)) = view {
            say!("{text}");
        }
    }
    Ok(())
}

/// The rate-distortion view: the compressed size (stream, plus the model when given), and per
/// column NRMSE and max/range of the reconstruction next to the error-bounded mode's at the
/// same size. As text and as JSON.
fn rate_distortion(
    pair: &baler::evaluate::DataPair,
    evaluation: &baler::evaluate::Evaluation,
    stream: &Path,
    model: Option<&Path>,
) -> Result<(String, serde_json::Value), String> {
    if !pair.is_table() {
        return Err("--compressed compares tables column by column; this data is a field".into());
    }
    let same = crate::same_size::same_size_runs(&pair.original, stream, model)?;
    let (stream_bytes, model_bytes) = (same.stream_bytes, same.model_bytes);
    let total = stream_bytes + model_bytes;
    let raw = pair.original.values.len() * pair.original.dtype.size();
    let targets: Vec<(&str, usize)> = ["with the model", "stream alone"]
        .into_iter()
        .zip(same.runs.iter().map(|(bytes, _)| *bytes))
        .collect();
    let runs: Vec<_> = same.runs.into_iter().map(|(_, run)| run).collect();
    let names = evaluation.names.clone();
    let mut lines = vec![format!(
        "rate-distortion: {total} bytes ({stream_bytes} stream{}), ratio {:.2}",
        if model_bytes > 0 {
            format!(" + {model_bytes} model")
        } else {
            String::new()
        },
        raw as f64 / total.max(1) as f64,
    )];
    for ((what, bytes), run) in targets.iter().zip(&runs) {
        lines.push(format!(
            "  error-bounded at {bytes} bytes ({what}): bound {:.3e} x range{}, {} bytes",
            run.bound,
            if run.bound <= 1.01e-6 {
                " (the finest tried: nearly lossless)"
            } else {
                ""
            },
            run.bytes
        ));
    }
    lines.push(
        "  (SZ3 is not called by the command: `python scripts/fixed_rate_vs_sz3.py` puts pysz beside both)"
            .to_string(),
    );
    let mut heading = format!("{:>18} {:>10} {:>10}", "column", "NRMSE", "max/range");
    for (what, _) in &targets {
        heading += &format!(" | bounded, {what}: {:>8} {:>10}", "NRMSE", "max/range");
    }
    lines.push(heading);
    let mut columns = Vec::new();
    for (c, (name, here)) in names.iter().zip(&evaluation.columns).enumerate() {
        let a = &here.errors;
        let mut line = format!(
            "{name:>18} {:>9.3}% {:>9.3}%",
            100.0 * a.nrmse(),
            100.0 * a.max_relative_to_range()
        );
        let mut entry = serde_json::json!({
            "name": name,
            "nrmse": a.nrmse(),
            "max_relative_to_range": a.max_relative_to_range(),
        });
        for ((what, _), run) in targets.iter().zip(&runs) {
            let b = &run.errors[c];
            let pad = what.len() + 12;
            line += &format!(
                " | {:>pad$.3}% {:>9.3}%",
                100.0 * b.nrmse(),
                100.0 * b.max_relative_to_range()
            );
            entry[format!("bounded_{}", what.replace(' ', "_"))] = serde_json::json!({
                "nrmse": b.nrmse(),
                "max_relative_to_range": b.max_relative_to_range(),
            });
        }
        lines.push(line);
        columns.push(entry);
    }
    let json = serde_json::json!({
        "total_bytes": total,
        "stream_bytes": stream_bytes,
        "model_bytes": model_bytes,
        "bounded": targets.iter().zip(&runs).map(|((what, bytes), run)| serde_json::json!({
            "size": what, "target_bytes": bytes, "bound": run.bound, "bytes": run.bytes,
        })).collect::<Vec<_>>(),
        "columns": columns,
    });
    Ok((lines.join("\n"), json))
}

/// `baler export`: the model blob as Rust or C source.
pub fn export(model_path: &Path, format: &str, output: &Path) -> Result<(), String> {
    let blob = read_model(model_path)?;
    let model = load(model_path, &blob)?;
    let bytes: Vec<String> = blob
        .chunks(16)
        .map(|row| {
            row.iter()
                .map(|b| format!("0x{b:02x},"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let body = bytes.join("\n    ");
    let id = model.id();
    let len = blob.len();
    let description = format!(
        "{} -> {} codes of {} bits, {} layers",
        model.input_len(),
        model.latent_len(),
        model.code_bits(),
        model.layers().len()
    );
    let source = match format {
        "rust" => format!(
            "//! baler model {id:016x} ({description}), written by `baler export`.\n\
             \n\
             /// The model id (CRC-64/XZ of the blob body).\n\
             pub const BALER_MODEL_ID: u64 = 0x{id:016x};\n\
             /// Length of the model blob in bytes.\n\
             pub const BALER_MODEL_LEN: usize = {len};\n\
             /// The model blob; load it with `baler_codec::Model::from_bytes(&BALER_MODEL)`.\n\
             pub static BALER_MODEL: [u8; BALER_MODEL_LEN] = [\n    {body}\n];\n"
        ),
        "c" => format!(
            "/* baler model {id:016x} ({description}), written by `baler export`. */\n\
             #ifndef BALER_MODEL_H\n#define BALER_MODEL_H\n\
             #include <stddef.h>\n#include <stdint.h>\n\n\
             #define BALER_MODEL_ID UINT64_C(0x{id:016x})\n\
             #define BALER_MODEL_LEN ((size_t){len})\n\n\
             static const uint8_t baler_model[{len}] = {{\n    {body}\n}};\n\n\
             #endif /* BALER_MODEL_H */\n"
        ),
        other => return Err(format!("unknown export format '{other}' (rust or c)")),
    };
    let mut file = AtomicFile::create(output)?;
    file.writer()
        .write_all(source.as_bytes())
        .map_err(|e| format!("{}: {e}", output.display()))?;
    file.commit()?;
    say!(
        "{} -> {}: {len} bytes, model {id:016x}",
        model_path.display(),
        output.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use baler_codec::model::quantize::{FloatActivation, FloatModel};

    /// What a failed quantization leaves behind holds the whole float model: normalization,
    /// every layer's weights, biases, activation and ranges.
    #[test]
    fn the_float_checkpoint_keeps_every_weight() {
        let (model, _) = FloatModel::random(3, &[6, 4, 2], 8, &[FloatActivation::Relu], 16);
        let dir = std::env::temp_dir().join(format!("baler-checkpoint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("model.float.json");
        save_float_checkpoint(&path, &model).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json["encoder_layers"], model.encoder_layers);
        assert_eq!(json["code_bits"], model.code_bits);
        let layers = json["layers"].as_array().unwrap();
        assert_eq!(layers.len(), model.layers.len());
        for (saved, layer) in layers.iter().zip(&model.layers) {
            let weights: Vec<f32> = serde_json::from_value(saved["weights"].clone()).unwrap();
            let bias: Vec<f32> = serde_json::from_value(saved["bias"].clone()).unwrap();
            assert_eq!(weights, layer.weights, "weights survive bit for bit");
            assert_eq!(bias, layer.bias);
            assert_eq!(saved["activation"], format!("{:?}", layer.activation));
        }
        let offset: Vec<f32> = serde_json::from_value(json["offset"].clone()).unwrap();
        assert_eq!(offset, model.offset);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
