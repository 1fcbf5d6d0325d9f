//! What `baler evaluate` reports: the errors of a reconstruction against its original, per
//! column of a table or for a whole field, as text, as JSON, and as rows for the HTML report.

pub mod metrics;

use crate::data::{self, Dataset};
use crate::evaluate::metrics::{column_summaries, ColumnSummary};
use crate::Error;
use std::path::Path;

/// Default error bounds, as fractions of each column's range.
pub const DEFAULT_BOUNDS: [f64; 3] = [1e-2, 1e-3, 1e-4];

/// An original and its reconstruction, read with full precision and checked against each
/// other.
#[derive(Debug, Clone)]
pub struct DataPair {
    /// The original data.
    pub original: Dataset<f64>,
    /// The reconstruction, of the same shape.
    pub reconstructed: Dataset<f64>,
}

impl DataPair {
    /// Reads both files; refuses shapes that differ, empty data and NaN or infinity.
    pub fn read(original: &Path, reconstructed: &Path) -> Result<DataPair, Error> {
        let a = data::read_f64(original)?;
        let b = data::read_f64(reconstructed)?;
        if a.shape != b.shape {
            return Err(Error::input(format!(
                "shapes differ: {} is {:?}, {} is {:?}",
                original.display(),
                a.shape,
                reconstructed.display(),
                b.shape
            )));
        }
        for (set, path) in [(&a, original), (&b, reconstructed)] {
            let data_error = |message: String| Error::Data {
                path: path.to_path_buf(),
                message,
            };
            if set.values.is_empty() {
                return Err(data_error("no values".to_string()));
            }
            if let Some((row, column)) = set.first_non_finite() {
                return Err(data_error(format!(
                    "NaN or infinity at row {row}, column {column}"
                )));
            }
        }
        Ok(DataPair {
            original: a,
            reconstructed: b,
        })
    }

    /// True for `[rows, columns]` tables, judged per column; fields of rank 3 or more are
    /// judged as one whole.
    pub fn is_table(&self) -> bool {
        self.original.shape.len() == 2
    }

    /// Number of columns judged separately (1 for a field).
    pub fn columns(&self) -> usize {
        if self.is_table() {
            self.original.row_len()
        } else {
            1
        }
    }

    /// Column names: the original's, else the reconstruction's, else `column_N`; `field` for a
    /// field.
    pub fn names(&self) -> Vec<String> {
        if !self.is_table() {
            return vec!["field".to_string()];
        }
        (0..self.columns())
            .map(|c| {
                self.original
                    .names
                    .get(c)
                    .or_else(|| self.reconstructed.names.get(c))
                    .filter(|name| !name.is_empty())
                    .cloned()
                    .unwrap_or_else(|| format!("column_{c}"))
            })
            .collect()
    }
}

/// Checks error bounds: finite and positive.
pub fn check_bounds(bounds: &[f64]) -> Result<(), Error> {
    match bounds.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
        Some(bad) => Err(Error::Options(format!(
            "--bounds {bad} is not a positive fraction of the range (e.g. 1e-2,1e-3,1e-4)"
        ))),
        None => Ok(()),
    }
}

/// The evaluation of a reconstruction: one summary per column.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Shape of the data.
    pub shape: Vec<usize>,
    /// Column names (`field` for a field).
    pub names: Vec<String>,
    /// Error bounds as fractions of each column's range.
    pub bounds: Vec<f64>,
    /// Per-column summaries, in column order.
    pub columns: Vec<ColumnSummary>,
}

impl Evaluation {
    /// Evaluates `pair` against `bounds` (fractions of each column's range).
    pub fn new(pair: &DataPair, bounds: &[f64]) -> Result<Evaluation, Error> {
        check_bounds(bounds)?;
        Ok(Evaluation {
            shape: pair.original.shape.clone(),
            names: pair.names(),
            bounds: bounds.to_vec(),
            columns: column_summaries(
                &pair.original.values,
                &pair.reconstructed.values,
                pair.columns(),
                bounds,
            ),
        })
    }

    /// Number of values.
    pub fn values(&self) -> usize {
        self.shape.iter().product()
    }

    /// RMSE over all values (every column has the same number of rows).
    pub fn rmse(&self) -> f64 {
        let n = self.columns.len().max(1) as f64;
        (self
            .columns
            .iter()
            .map(|c| c.errors.rmse * c.errors.rmse)
            .sum::<f64>()
            / n)
            .sqrt()
    }

    /// For each bound, the fraction of all values within it of their column's range.
    pub fn within_bounds(&self) -> Vec<f64> {
        let n = self.columns.len().max(1) as f64;
        (0..self.bounds.len())
            .map(|k| self.columns.iter().map(|c| c.within_bounds[k]).sum::<f64>() / n)
            .collect()
    }

    /// The column whose max error is the largest fraction of its range, with its name.
    pub fn worst(&self) -> Option<(&ColumnSummary, &str)> {
        self.columns
            .iter()
            .zip(&self.names)
            .max_by(|x, y| {
                x.0.errors
                    .max_relative_to_range()
                    .total_cmp(&y.0.errors.max_relative_to_range())
            })
            .map(|(c, name)| (c, name.as_str()))
    }

    /// The one-line summary printed first.
    pub fn summary_line(&self) -> String {
        let shape: Vec<String> = self.shape.iter().map(usize::to_string).collect();
        let mut line = format!(
            "{} values ({}) in {} column(s); RMSE {}",
            self.values(),
            shape.join(" x "),
            self.columns.len(),
            number(self.rmse())
        );
        if let Some((c, name)) = self.worst() {
            line += &format!(
                "; worst max error {} ({:.3}% of the range of {name})",
                number(c.errors.max_abs),
                100.0 * c.errors.max_relative_to_range()
            );
        }
        if let Some((c, name)) = self
            .columns
            .iter()
            .zip(&self.names)
            .max_by(|x, y| x.0.max_relative.total_cmp(&y.0.max_relative))
        {
            line += &format!(
                "; worst |error|/|value| {} ({name})",
                number(c.max_relative)
            );
        }
        if !self.bounds.is_empty() {
            let bounds: Vec<String> = self.bounds.iter().map(|b| format!("{b:e}")).collect();
            let within: Vec<String> = self
                .within_bounds()
                .iter()
                .map(|f| format!("{:.2}%", 100.0 * f))
                .collect();
            line += &format!(
                "; within {} of the range: {}",
                bounds.join(" / "),
                within.join(" / ")
            );
        }
        line
    }

    /// Table headings, matching [`Evaluation::rows`].
    pub fn headings(&self) -> Vec<String> {
        let mut headings: Vec<String> = [
            "column",
            "max |err|",
            "RMSE",
            "range",
            "max/range",
            "mean rel",
            "max rel",
            "W1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        headings.extend(self.bounds.iter().map(|b| format!("<={b:e}")));
        headings
    }

    /// One row of formatted cells per column.
    pub fn rows(&self) -> Vec<Vec<String>> {
        self.columns
            .iter()
            .zip(&self.names)
            .map(|(c, name)| {
                let e = &c.errors;
                let mut row = vec![
                    name.clone(),
                    number(e.max_abs),
                    number(e.rmse),
                    number(e.range),
                    percent(e.max_relative_to_range()),
                    large_percent(e.mean_relative),
                    large_percent(c.max_relative),
                    number(c.wasserstein_1),
                ];
                row.extend(c.within_bounds.iter().map(|f| percent(*f)));
                row
            })
            .collect()
    }

    /// The report as text: the summary line, then the table.
    pub fn text(&self) -> String {
        let headings = self.headings();
        let rows = self.rows();
        let widths: Vec<usize> = (0..headings.len())
            .map(|k| {
                rows.iter()
                    .map(|r| r[k].chars().count())
                    .chain([headings[k].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| -> String {
            cells
                .iter()
                .zip(&widths)
                .map(|(cell, &w)| format!("{cell:>w$}"))
                .collect::<Vec<_>>()
                .join("  ")
        };
        let mut text = self.summary_line();
        text.push('\n');
        text += &line(&headings);
        for row in &rows {
            text.push('\n');
            text += &line(row);
        }
        text
    }

    /// The report as JSON: `summary`, `bounds` and one object per column in `columns`.
    pub fn to_json(&self) -> serde_json::Value {
        let columns: Vec<serde_json::Value> = self
            .columns
            .iter()
            .zip(&self.names)
            .map(|(c, name)| {
                let e = &c.errors;
                serde_json::json!({
                    "name": name,
                    "max_abs": e.max_abs,
                    "rmse": e.rmse,
                    "range": e.range,
                    "max_relative_to_range": e.max_relative_to_range(),
                    "mean_relative": e.mean_relative,
                    "max_relative": c.max_relative,
                    "mean_error": c.mean_error,
                    "wasserstein_1": c.wasserstein_1,
                    "within_bounds": c.within_bounds,
                })
            })
            .collect();
        let worst = self.worst().map(|(c, name)| {
            serde_json::json!({
                "name": name,
                "max_abs": c.errors.max_abs,
                "max_relative_to_range": c.errors.max_relative_to_range(),
            })
        });
        serde_json::json!({
            "shape": self.shape,
            "bounds": self.bounds,
            "summary": {
                "values": self.values(),
                "rmse": self.rmse(),
                "worst": worst,
                "within_bounds": self.within_bounds(),
            },
            "columns": columns,
        })
    }
}

/// A number in at most 6 significant digits, in scientific notation when very large or small.
pub fn number(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    if x.abs() >= 1e6 || x.abs() < 1e-3 {
        return format!("{x:.4e}");
    }
    let decimals = (5 - x.abs().log10().floor() as i32).clamp(0, 8) as usize;
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A fraction that may be huge (relative errors of values near zero) as a short percentage.
fn large_percent(x: f64) -> String {
    format!("{}%", number(100.0 * x))
}

/// A fraction as a percentage with three decimals.
fn percent(x: f64) -> String {
    format!("{:.3}%", 100.0 * x)
}

#[cfg(test)]
mod tests {
    use super::number;

    #[test]
    fn numbers_are_short() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(17.7), "17.7");
        assert_eq!(number(123456.0), "123456");
        assert_eq!(number(0.012345678), "0.0123457");
        assert_eq!(number(2.5e-5), "2.5000e-5");
        assert_eq!(number(-3.25), "-3.25");
    }
}
