//! The `baler` command line: train, compress, decompress, info.

use baler_trainer::commands;
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

#[derive(Subcommand)]
enum Command {
    /// Train an autoencoder on DATA and write the quantized model blob.
    Train(commands::TrainArgs),
    /// Compress DATA with MODEL into a .baler stream.
    Compress {
        /// Model blob written by `baler train`.
        #[arg(long)]
        model: PathBuf,
        /// Data file (.npz, .npy or .csv).
        #[arg(long)]
        input: PathBuf,
        /// Output stream.
        #[arg(long)]
        output: PathBuf,
    },
    /// Decompress a .baler stream with the MODEL that wrote it.
    Decompress {
        /// Model blob that compressed the stream.
        #[arg(long)]
        model: PathBuf,
        /// Compressed stream.
        #[arg(long)]
        input: PathBuf,
        /// Output data file (.npz, .npy or .csv).
        #[arg(long)]
        output: PathBuf,
    },
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
            model,
            input,
            output,
        } => commands::compress(&model, &input, &output),
        Command::Decompress {
            model,
            input,
            output,
        } => commands::decompress(&model, &input, &output),
        Command::Evaluate {
            original,
            reconstructed,
            json,
        } => commands::evaluate(&original, &reconstructed, json),
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
