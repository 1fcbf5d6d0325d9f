//! The `baler` command line: train, compress, decompress, info, evaluate, plot.

use baler::pipeline::{Bound, UseModel};
use baler_cli::commands;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Machine-learning compression of scientific data.
#[derive(Parser)]
#[command(name = "baler", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The model, the input and the output of compress and decompress.
#[derive(clap::Args)]
struct Files {
    /// Model blob written by `baler train` (optional for error-bounded streams).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Input file.
    #[arg(long)]
    input: PathBuf,
    /// Output file, written atomically.
    #[arg(long)]
    output: PathBuf,
}

/// Whether error-bounded compression uses the model (`--use-model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum UseModelArg {
    /// When it makes the stream plus the model smaller (judged on a sample of rows).
    Auto,
    /// Always (to measure what it does).
    Always,
    /// Never: the model-free path.
    Never,
}

impl From<UseModelArg> for UseModel {
    fn from(arg: UseModelArg) -> Self {
        match arg {
            UseModelArg::Auto => UseModel::Auto,
            UseModelArg::Always => UseModel::Always,
            UseModelArg::Never => UseModel::Never,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Train an autoencoder on DATA and write the quantized model blob.
    Train(commands::TrainArgs),
    /// Compress DATA (.npz, .npy, .csv) with MODEL into a .baler stream.
    Compress {
        #[command(flatten)]
        files: Files,
        /// Guarantee |original - decoded| <= EPS for every value (entropy-coded residuals).
        #[arg(long, value_name = "EPS", group = "bound")]
        error_bound: Option<f64>,
        /// Guarantee an error of at most R x each column's range (tables) or R x the whole
        /// array's range (fields of rank 3 or more).
        #[arg(long, value_name = "R", group = "bound")]
        rel_error_bound: Option<f64>,
        /// Guarantee |original - decoded| <= R x |original| for every value (zeros exact, no
        /// sign flips); integer columns are kept exactly.
        #[arg(long, value_name = "R", group = "bound")]
        pointwise_rel_bound: Option<f64>,
        /// The pointwise bound of rounding the mantissa to N bits, as NanoAOD does:
        /// R = 2^-(N+1) (10 bits: every value within 4.9e-4 of itself).
        #[arg(long, value_name = "N", group = "bound")]
        mantissa_bits: Option<u32>,
        /// A bound per column (JSON, or TOML for .toml): {"default": {"mantissa_bits": 10},
        /// "columns": {"NAME or INDEX": {"absolute"|"relative"|"pointwise": X} |
        /// {"mantissa_bits": N} | "lossless"}}. The bound flag, if given, is the default.
        #[arg(long, value_name = "FILE")]
        column_bounds: Option<PathBuf>,
        /// With an error bound: predict with a model when it pays, the stream plus the model
        /// counted (auto): the --model autoencoder, or for fields a linear predictor learned
        /// from the data or a multilevel interpolation fitted to it, stored in the stream;
        /// always; or never (the model-free path).
        #[arg(long, value_enum, default_value = "auto")]
        use_model: UseModelArg,
        /// With an error bound, for 2-D data: code it as one field of rows (an image, a
        /// detector plane), each row predicted from the rows above, one grid for the whole
        /// array (a relative bound is then R x the whole array's range), not as a table.
        #[arg(long)]
        field: bool,
    },
    /// Decompress a .baler stream with the MODEL that wrote it into DATA (.npz, .npy, .csv).
    Decompress(Files),
    /// Compare a reconstruction with the original: per-column (or whole-field) errors.
    Evaluate {
        /// Original data file.
        #[arg(long)]
        original: PathBuf,
        /// Reconstructed data file (from `baler decompress`).
        #[arg(long)]
        reconstructed: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Error bounds, as fractions of each column's range (of the whole field's range for
        /// frames): reports the fraction of values within each.
        #[arg(long, value_delimiter = ',', default_value = "1e-2,1e-3,1e-4")]
        bounds: Vec<f64>,
        /// Periodic columns (azimuths named `phi` spanning [-pi, pi]): `auto` compares them
        /// around the circle, `none` as lines.
        #[arg(long, default_value = "auto", value_parser = ["auto", "none"])]
        periodic: String,
        /// The compressed stream the reconstruction came from: adds the rate-distortion view,
        /// per column NRMSE and max/range next to the error-bounded mode's at the same total
        /// size (tables).
        #[arg(long)]
        compressed: Option<PathBuf>,
        /// The model of a fixed-rate `--compressed` stream: its bytes count in the size.
        #[arg(long, requires = "compressed")]
        model: Option<PathBuf>,
    },
    /// Draw what compression did: per-column histograms, residuals and responses for tables,
    /// original | reconstructed | difference heatmaps and a GIF for frames, the loss curve,
    /// and an index.html that shows them all with the evaluate table.
    Plot(baler_cli::plot::PlotArgs),
    /// Write a model blob as Rust or C source (a byte array, its length and the model id) for
    /// firmware that does not use `include_bytes!`.
    Export {
        /// Model blob.
        #[arg(long)]
        model: PathBuf,
        /// rust or c.
        #[arg(long)]
        format: String,
        /// Output source file.
        #[arg(long)]
        output: PathBuf,
    },
    /// Describe a model blob or a compressed stream.
    Info {
        /// A model blob or a .baler stream.
        file: PathBuf,
        /// The model, to count its decoder in the ratio of a stream.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => commands::train(&args),
        Command::Compress {
            files,
            error_bound,
            rel_error_bound,
            pointwise_rel_bound,
            mantissa_bits,
            column_bounds,
            use_model,
            field,
        } => {
            let bound = match (
                error_bound,
                rel_error_bound,
                pointwise_rel_bound,
                mantissa_bits,
            ) {
                (Some(e), ..) => Ok(Some(Bound::Absolute(e))),
                (_, Some(r), ..) => Ok(Some(Bound::Relative(r))),
                (_, _, Some(r), _) => Ok(Some(Bound::Pointwise(r))),
                (.., Some(n)) => Bound::mantissa_bits(n).map(Some).map_err(|e| e.to_string()),
                _ => Ok(None),
            };
            bound.and_then(|bound| {
                commands::compress(
                    files.model.as_deref(),
                    &files.input,
                    &files.output,
                    bound,
                    column_bounds.as_deref(),
                    use_model.into(),
                    field,
                )
            })
        }
        Command::Decompress(f) => commands::decompress(f.model.as_deref(), &f.input, &f.output),
        Command::Evaluate {
            original,
            reconstructed,
            json,
            bounds,
            periodic,
            compressed,
            model,
        } => commands::evaluate(
            &original,
            &reconstructed,
            json,
            &bounds,
            periodic == "auto",
            compressed.as_deref().map(|c| (c, model.as_deref())),
        ),
        Command::Plot(args) => baler_cli::plot::plot(&args),
        Command::Export {
            model,
            format,
            output,
        } => commands::export(&model, &format, &output),
        Command::Info { file, model, json } => commands::info(&file, model.as_deref(), json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
