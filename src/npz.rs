//! Reading the `data` array of a Baler-style `.npz` file.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

/// A 2-D (or flattened n-D) float array: row-major values and the original shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Values, row-major, as f32.
    pub values: Vec<f32>,
    /// Shape as stored in the file.
    pub shape: Vec<u64>,
}

impl Table {
    /// Number of rows (first dimension).
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(0) as usize
    }

    /// Values per row (product of the remaining dimensions).
    pub fn columns(&self) -> usize {
        self.shape.iter().skip(1).product::<u64>() as usize
    }
}

/// Reads the array `key` of an `.npz` file as f32 (from float32 or float64).
pub fn read_npz(path: &Path, key: &str) -> Result<Table, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut archive = npyz::npz::NpzArchive::new(BufReader::new(file))
        .map_err(|e| format!("{}: not an npz archive: {e}", path.display()))?;
    let array = archive
        .by_name(key)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .ok_or_else(|| format!("{}: no array named '{key}'", path.display()))?;
    let shape = array.shape().to_vec();
    let values: Vec<f32> = match array.dtype() {
        npyz::DType::Plain(t) if t.type_char() == npyz::TypeChar::Float && t.size_field() == 8 => {
            let v: Vec<f64> = array.into_vec().map_err(|e| e.to_string())?;
            v.into_iter().map(|x| x as f32).collect()
        }
        npyz::DType::Plain(t) if t.type_char() == npyz::TypeChar::Float && t.size_field() == 4 => {
            array.into_vec().map_err(|e| e.to_string())?
        }
        other => {
            return Err(format!(
                "{}: '{key}' has unsupported dtype {other:?}",
                path.display()
            ))
        }
    };
    Ok(Table { values, shape })
}
