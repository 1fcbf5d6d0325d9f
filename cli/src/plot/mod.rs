//! `baler plot`: what compression did to the data, as figures and one HTML report.
//!
//! For `[events, columns]` tables: one figure per column (original and reconstructed
//! distributions, residual, response) and a residual overview. For `[frames, h, w]` fields:
//! original | reconstructed | difference heatmaps for chosen frames and an animated GIF over
//! all frames. With `--model`, the training loss curve. Then `index.html` with the
//! `baler evaluate` table. Text is drawn with an embedded font, so no system fonts are needed.

pub mod canvas;
pub mod colormap;
pub mod frames;
pub mod glyphs;
pub mod loss;
pub mod rate;
pub mod stats;
pub mod table;

use crate::report::{FigureEntry, Report, Section};
use baler::evaluate::{check_bounds, DataPair, Evaluation};
use canvas::{file_stem, render, write_png, write_svg, Figure};
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Arguments of `baler plot`.
#[derive(clap::Args, Debug)]
pub struct PlotArgs {
    /// Original data file (.npz, .npy or .csv).
    #[arg(long)]
    pub original: PathBuf,
    /// Reconstructed data file (from `baler decompress`), of the same shape.
    #[arg(long)]
    pub reconstructed: PathBuf,
    /// Model blob from `baler train`: its loss history (MODEL.loss.json) becomes the loss
    /// curve; without it, or without the history, the loss figure is left out.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Directory for the figures and index.html (created if missing).
    #[arg(long)]
    pub output_dir: PathBuf,
    /// For [frames, h, w] data: the frames drawn as PNG (default: first, middle, last).
    #[arg(long, value_delimiter = ',')]
    pub frames: Vec<usize>,
    /// For [frames, h, w] data: leave out the animated GIF over all frames.
    #[arg(long)]
    pub no_gif: bool,
    /// Also write every figure as SVG (text in the viewer's sans-serif font).
    #[arg(long)]
    pub svg: bool,
    /// Error bounds for the table, as fractions of each column's range.
    #[arg(long, value_delimiter = ',', default_value = "1e-2,1e-3,1e-4")]
    pub bounds: Vec<f64>,
    /// For tables: the compressed stream the reconstruction came from. Adds the
    /// rate-distortion figure: each column's max |error| / range next to the error-bounded
    /// mode's at the same total size (with `--model`'s bytes) and at the stream's size alone.
    #[arg(long)]
    pub compressed: Option<PathBuf>,
}

/// `println!` that ignores a closed stdout.
fn say(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Renders `figure` to `dir/stem.png` (and `.svg` when asked); returns the report entry.
fn save<F: Figure>(
    figure: &F,
    dir: &Path,
    stem: &str,
    svg: bool,
    caption: String,
    anchor: String,
) -> Result<FigureEntry, String> {
    let image = render(figure)?;
    let file = format!("{stem}.png");
    write_png(&image, &dir.join(&file))?;
    if svg {
        write_svg(figure, &dir.join(format!("{stem}.svg")))?;
    }
    Ok(FigureEntry {
        file,
        caption,
        anchor,
        size: (image.width, image.height),
    })
}

/// The loss history of `model`, if it has one; a model path that does not exist is an error.
fn loss_history(
    model: Option<&Path>,
    notes: &mut Vec<String>,
) -> Result<Option<Vec<loss::Epoch>>, String> {
    let Some(model) = model else {
        notes.push("No loss curve: no --model given.".to_string());
        return Ok(None);
    };
    if !model.exists() {
        return Err(format!("{}: no such model file", model.display()));
    }
    let path = loss::history_path(model);
    if !path.exists() {
        notes.push(format!(
            "No loss curve: {} has no loss history ({} is missing).",
            model.display(),
            path.display()
        ));
        return Ok(None);
    }
    loss::read_history(&path).map(Some)
}

/// The rate-distortion figure: the reconstruction's max |error| / range per column, and the
/// error-bounded mode's at the size of `stream` plus `model` and at the stream's alone.
fn rate_figure(
    pair: &DataPair,
    evaluation: &Evaluation,
    stream: &Path,
    model: Option<&Path>,
) -> Result<rate::RateFigure, String> {
    let same = crate::same_size::same_size_runs(&pair.original, stream, model)?;
    let mut series = vec![(
        format!(
            "this reconstruction ({} B)",
            same.stream_bytes + same.model_bytes
        ),
        evaluation
            .columns
            .iter()
            .map(|c| c.errors.max_relative_to_range())
            .collect::<Vec<_>>(),
    )];
    let labels = ["same total size", "the stream's size"];
    for (what, (_, run)) in labels.into_iter().zip(same.runs) {
        series.push((
            format!("error-bounded, {what} (bound {:.2e})", run.bound),
            run.errors
                .iter()
                .map(|e| e.max_relative_to_range())
                .collect(),
        ));
    }
    Ok(rate::RateFigure {
        series,
        columns: evaluation.columns.len(),
    })
}

/// `baler plot`.
pub fn plot(args: &PlotArgs) -> Result<(), String> {
    check_bounds(&args.bounds)?;
    canvas::register_font()?;
    let pair = DataPair::read(&args.original, &args.reconstructed)?;
    let rank = pair.original.shape.len();
    if rank != 2 && rank != 3 {
        return Err(format!(
            "{}: plot draws [events, columns] tables and [frames, h, w] fields, not shape {:?}",
            args.original.display(),
            pair.original.shape
        ));
    }
    let mut notes = Vec::new();
    let history = loss_history(args.model.as_deref(), &mut notes)?;
    let evaluation = Evaluation::new(&pair, &args.bounds)?;
    let dir = &args.output_dir;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;

    let (mut sections, row_anchors) = if rank == 2 {
        table_figures(&pair, &evaluation, dir, args.svg)?
    } else {
        frame_figures(&pair, dir, args, &mut notes)?
    };
    if let (Some(stream), 2) = (&args.compressed, rank) {
        let figure = rate_figure(&pair, &evaluation, stream, args.model.as_deref())?;
        let entry = save(
            &figure,
            dir,
            "rate",
            args.svg,
            "Max |error| / range per column: the reconstruction, and the error-bounded mode at the same total size and at the stream's size alone".to_string(),
            "rate".to_string(),
        )?;
        sections.insert(
            sections.len().min(1),
            Section {
                heading: "Rate and distortion".to_string(),
                figures: vec![entry],
            },
        );
    }
    if let Some(history) = history {
        match loss::LossFigure::new(history) {
            Some(figure) => {
                let entry = save(
                    &figure,
                    dir,
                    "loss",
                    args.svg,
                    "Training loss per epoch (train and validation, log scale), from the model's loss history".to_string(),
                    "loss".to_string(),
                )?;
                // After the first section (the overview or the frames), before the columns.
                sections.insert(
                    sections.len().min(1),
                    Section {
                        heading: "Training".to_string(),
                        figures: vec![entry],
                    },
                );
            }
            None => notes.push("No loss curve: the loss history has no finite loss.".to_string()),
        }
    }
    let full = |path: &Path| {
        std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
            .to_string()
    };
    let mut details = vec![
        ("original".to_string(), full(&args.original)),
        ("reconstructed".to_string(), full(&args.reconstructed)),
    ];
    if let Some(model) = &args.model {
        details.push(("model".to_string(), full(model)));
    }
    let report = Report {
        title: format!(
            "baler: what compression did to {}",
            args.original.file_name().map_or_else(
                || args.original.display().to_string(),
                |n| n.to_string_lossy().into_owned()
            )
        ),
        details,
        evaluation: &evaluation,
        row_anchors,
        notes: notes.clone(),
        sections,
    };
    let index = dir.join("index.html");
    report.write(&index)?;
    let figures: usize = report.sections.iter().map(|s| s.figures.len()).sum();
    say(&evaluation.summary_line());
    for note in &notes {
        say(note);
    }
    say(&format!(
        "{figures} figures in {}; open {}",
        dir.display(),
        index.display()
    ));
    Ok(())
}

/// Column figures and the residual overview of a table.
fn table_figures(
    pair: &DataPair,
    evaluation: &Evaluation,
    dir: &Path,
    svg: bool,
) -> Result<(Vec<Section>, Vec<String>), String> {
    let columns = pair.columns();
    let rows = pair.original.rows();
    let column = |values: &[f64], c: usize| -> Vec<f64> {
        (0..rows).map(|r| values[r * columns + c]).collect()
    };
    let data: Vec<(Vec<f64>, Vec<f64>, f64)> = (0..columns)
        .map(|c| {
            (
                column(&pair.original.values, c),
                column(&pair.reconstructed.values, c),
                evaluation.columns[c].errors.range,
            )
        })
        .collect();
    let bar = crate::commands::progress(columns as u64 + 1, "plot", "figures");
    let overview = table::OverviewFigure::new(&evaluation.names, &data);
    let overview = save(
        &overview,
        dir,
        "residuals_overview",
        svg,
        "Residuals of every column in % of its range: box from the first to the third quartile, bar at the median, whiskers from the 1st to the 99th percentile, dots at the min and max".to_string(),
        "overview".to_string(),
    )?;
    bar.inc(1);
    let anchors: Vec<String> = (0..columns).map(|c| format!("column-{c}")).collect();
    let entries: Result<Vec<FigureEntry>, String> = (0..columns)
        .into_par_iter()
        .map(|c| {
            let name = &evaluation.names[c];
            let figure = table::ColumnFigure::new(
                name,
                &data[c].0,
                &data[c].1,
                &evaluation.columns[c],
                &evaluation.bounds,
            );
            let entry = save(
                &figure,
                dir,
                &format!("column_{c:02}_{}", file_stem(name)),
                svg,
                format!("{name}: distributions of the original and the reconstruction (log counts), residual and response"),
                anchors[c].clone(),
            );
            bar.inc(1);
            entry
        })
        .collect();
    bar.finish_and_clear();
    Ok((
        vec![
            Section {
                heading: "Residuals per column".to_string(),
                figures: vec![overview],
            },
            Section {
                heading: "Columns".to_string(),
                figures: entries?,
            },
        ],
        anchors,
    ))
}

/// Heatmaps of the chosen frames and the GIF over all frames of a field.
fn frame_figures(
    pair: &DataPair,
    dir: &Path,
    args: &PlotArgs,
    notes: &mut Vec<String>,
) -> Result<(Vec<Section>, Vec<String>), String> {
    let shape = &pair.original.shape;
    let (count, h, w) = (shape[0], shape[1], shape[2]);
    let mut chosen = if args.frames.is_empty() {
        vec![0, count / 2, count - 1]
    } else {
        args.frames.clone()
    };
    if let Some(bad) = chosen.iter().find(|&&f| f >= count) {
        return Err(format!(
            "--frames {bad}: {} has frames 0..{}",
            args.original.display(),
            count - 1
        ));
    }
    chosen.sort_unstable();
    chosen.dedup();
    let scales = frames::Scales::of(&pair.original.values, &pair.reconstructed.values);
    let frame_len = h * w;
    let figure = |i: usize| frames::FrameFigure {
        index: i,
        count,
        shape: (h, w),
        original: &pair.original.values[i * frame_len..(i + 1) * frame_len],
        reconstructed: &pair.reconstructed.values[i * frame_len..(i + 1) * frame_len],
        scales,
    };
    let gif_frames = if args.no_gif {
        Vec::new()
    } else {
        frames::gif_frames(count)
    };
    let bar = crate::commands::progress((chosen.len() + gif_frames.len()) as u64, "plot", "frames");
    let entries: Result<Vec<FigureEntry>, String> = chosen
        .par_iter()
        .map(|&i| {
            let entry = save(
                &figure(i),
                dir,
                &format!("frame_{i:04}"),
                args.svg,
                format!("Frame {i}: original | reconstructed (shared colour scale) | difference"),
                format!("frame-{i}"),
            );
            bar.inc(1);
            entry
        })
        .collect();
    let mut figures = entries?;
    if !gif_frames.is_empty() {
        frames::write_gif(&dir.join("frames.gif"), &gif_frames, figure, &bar)?;
        let every = if gif_frames.len() < count {
            format!(
                "every {}th of the {count} frames",
                gif_frames[1] - gif_frames[0]
            )
        } else {
            format!("all {count} frames")
        };
        figures.push(FigureEntry {
            file: "frames.gif".to_string(),
            caption: format!("Animation over {every}, 10 frames per second"),
            anchor: "animation".to_string(),
            size: frames::FRAME_FIGURE_SIZE,
        });
    } else {
        notes.push("No animation: --no-gif.".to_string());
    }
    bar.finish_and_clear();
    Ok((
        vec![Section {
            heading: "Frames".to_string(),
            figures,
        }],
        Vec::new(),
    ))
}
