//! Reading and writing data files: Baler-style `.npz` (keys `data` and optional `names`),
//! `.npy`, and `.csv` with a header row. Values are held as f32 (the codec's input type);
//! the file's element type is remembered so output is written back as it came in.

use baler_codec::DType;
use npyz::{NpyFile, TypeChar, WriterBuilder};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// A data array with its shape, element type and column names.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Values, row-major.
    pub values: Vec<f32>,
    /// Shape: `[rows, columns]` for tables, `[frames, h, w]` for fields.
    pub shape: Vec<usize>,
    /// Element type in the file.
    pub dtype: DType,
    /// Column names (empty when the file has none).
    pub names: Vec<String>,
}

impl Dataset {
    /// Number of rows (first dimension).
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    /// Values per row (product of the other dimensions).
    pub fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    /// The first NaN or infinity as `(row, column)`.
    pub fn first_non_finite(&self) -> Option<(usize, usize)> {
        let n = self.row_len().max(1);
        self.values
            .iter()
            .position(|v| !v.is_finite())
            .map(|i| (i / n, i % n))
    }
}

/// File formats, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// NumPy zip archive with `data` (and `names`).
    Npz,
    /// One NumPy array.
    Npy,
    /// Comma-separated values with a header row of names.
    Csv,
}

impl Format {
    /// The format of `path` by its extension.
    pub fn of(path: &Path) -> Result<Format, String> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
        {
            Some(e) if e == "npz" => Ok(Format::Npz),
            Some(e) if e == "npy" => Ok(Format::Npy),
            Some(e) if e == "csv" => Ok(Format::Csv),
            _ => Err(format!(
                "{}: unknown data format (expected .npz, .npy or .csv)",
                path.display()
            )),
        }
    }
}

fn at(path: &Path) -> impl Fn(String) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

/// Reads a data file.
pub fn read(path: &Path) -> Result<Dataset, String> {
    let format = Format::of(path)?;
    let file = File::open(path).map_err(|e| at(path)(e.to_string()))?;
    let reader = BufReader::new(file);
    let data = match format {
        Format::Npy => read_npy_array(reader).map_err(at(path))?,
        Format::Npz => read_npz(reader).map_err(at(path))?,
        Format::Csv => read_csv(reader).map_err(at(path))?,
    };
    if data.shape.len() < 2 {
        return Err(at(path)(format!(
            "expected a 2-D table or 3-D frames, found shape {:?}",
            data.shape
        )));
    }
    if data.rows() == 0 || data.row_len() == 0 {
        return Err(at(path)(format!("no data (shape {:?})", data.shape)));
    }
    if !data.names.is_empty() && data.names.len() != data.row_len() {
        return Err(at(path)(format!(
            "{} names for {} columns",
            data.names.len(),
            data.row_len()
        )));
    }
    Ok(data)
}

fn read_npy_array<R: Read>(reader: R) -> Result<Dataset, String> {
    let npy = NpyFile::new(reader).map_err(|e| format!("not a .npy array: {e}"))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let dtype = npy.dtype();
    let npyz::DType::Plain(ts) = &dtype else {
        return Err(format!("unsupported element type {}", dtype.descr()));
    };
    let e = |e: std::io::Error| e.to_string();
    let (values, dtype) = match (ts.type_char(), ts.size_field()) {
        (TypeChar::Float, 8) => {
            let v: Vec<f64> = npy.into_vec().map_err(e)?;
            (v.into_iter().map(|x| x as f32).collect(), DType::F64)
        }
        (TypeChar::Float, 4) => (npy.into_vec::<f32>().map_err(e)?, DType::F32),
        (TypeChar::Int, 2) => {
            let v: Vec<i16> = npy.into_vec().map_err(e)?;
            (v.into_iter().map(f32::from).collect(), DType::I16)
        }
        (TypeChar::Int, 4) => {
            let v: Vec<i32> = npy.into_vec().map_err(e)?;
            (v.into_iter().map(|x| x as f32).collect(), DType::I32)
        }
        _ => return Err(format!("unsupported element type {}", dtype.descr())),
    };
    Ok(Dataset {
        values,
        shape,
        dtype,
        names: Vec::new(),
    })
}

fn read_npz<R: Read + std::io::Seek>(reader: R) -> Result<Dataset, String> {
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| format!("not an .npz archive: {e}"))?;
    let mut data = {
        let entry = zip
            .by_name("data.npy")
            .map_err(|_| "no array named 'data' (Baler's layout: keys 'data' and 'names')")?;
        read_npy_array(entry)?
    };
    if let Ok(entry) = zip.by_name("names.npy") {
        let npy = NpyFile::new(entry).map_err(|e| format!("'names': {e}"))?;
        if npy.shape().iter().product::<u64>() > 0 {
            data.names = npy
                .into_vec::<String>()
                .map_err(|e| format!("'names' must be strings: {e}"))?;
        }
    }
    Ok(data)
}

fn read_csv<R: Read>(reader: R) -> Result<Dataset, String> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(reader);
    let names: Vec<String> = csv
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|s| s.trim().to_string())
        .collect();
    let mut values = Vec::new();
    let mut rows = 0;
    for (r, record) in csv.records().enumerate() {
        let record = record.map_err(|e| e.to_string())?;
        for (c, field) in record.iter().enumerate() {
            let v: f32 = field
                .trim()
                .parse()
                .map_err(|_| format!("row {} column {c}: '{field}' is not a number", r + 1))?;
            values.push(v);
        }
        rows += 1;
    }
    Ok(Dataset {
        values,
        shape: vec![rows, names.len()],
        dtype: DType::F64,
        names,
    })
}

/// A file written next to its final path and renamed into place only when complete, so a
/// failed or interrupted run never leaves a truncated file under the final name.
pub struct AtomicFile {
    temp: PathBuf,
    target: PathBuf,
    file: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Creates the temporary file for `target`.
    pub fn create(target: &Path) -> Result<AtomicFile, String> {
        let name = target
            .file_name()
            .ok_or_else(|| format!("{}: not a file path", target.display()))?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{}.tmp", std::process::id()));
        let temp = target.with_file_name(temp_name);
        let file = File::create(&temp).map_err(|e| format!("{}: {e}", target.display()))?;
        Ok(AtomicFile {
            temp,
            target: target.to_path_buf(),
            file: Some(BufWriter::new(file)),
        })
    }

    /// The writer.
    pub fn writer(&mut self) -> &mut BufWriter<File> {
        self.file.as_mut().expect("file is open until commit")
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> Result<(), String> {
        let err = |e: std::io::Error| format!("{}: {e}", self.target.display());
        let file = self.file.take().expect("file is open until commit");
        let file = file.into_inner().map_err(|e| err(e.into_error()))?;
        file.sync_all().map_err(err)?;
        std::fs::rename(&self.temp, &self.target).map_err(err)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

fn write_typed<T: npyz::AutoSerialize, W: Write>(
    out: W,
    shape: &[u64],
    values: impl IntoIterator<Item = T>,
) -> std::io::Result<()> {
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(out)
        .begin_nd()?;
    w.extend(values)?;
    w.finish()
}

fn write_npy_array<W: Write>(out: W, data: &Dataset) -> std::io::Result<()> {
    let shape: Vec<u64> = data.shape.iter().map(|&d| d as u64).collect();
    let v = data.values.iter().copied();
    match data.dtype {
        DType::F32 => write_typed(out, &shape, v),
        DType::I16 => write_typed(
            out,
            &shape,
            v.map(|x| x.round().clamp(-32768.0, 32767.0) as i16),
        ),
        DType::I32 => write_typed(out, &shape, v.map(|x| x.round() as i32)),
        _ => write_typed(out, &shape, v.map(f64::from)),
    }
}

fn write_names<W: Write>(out: W, names: &[String]) -> std::io::Result<()> {
    let width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(1)
        .max(1);
    let type_str: npyz::TypeStr = format!("<U{width}")
        .parse()
        .map_err(std::io::Error::other)?;
    let mut w = npyz::WriteOptions::<str>::new()
        .dtype(npyz::DType::Plain(type_str))
        .shape(&[names.len() as u64])
        .writer(out)
        .begin_nd()?;
    for name in names {
        w.push(name.as_str())?;
    }
    w.finish()
}

/// Writes a data file in the format of its extension, atomically.
pub fn write(path: &Path, data: &Dataset) -> Result<(), String> {
    let format = Format::of(path)?;
    let mut file = AtomicFile::create(path)?;
    let e = |e: std::io::Error| format!("{}: {e}", path.display());
    match format {
        Format::Npy => write_npy_array(file.writer(), data).map_err(e)?,
        Format::Csv => write_csv(file.writer(), data).map_err(e)?,
        Format::Npz => {
            let z = |e: zip::result::ZipError| format!("{}: {e}", path.display());
            let mut zip = zip::ZipWriter::new(file.writer());
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            zip.start_file("data.npy", options).map_err(z)?;
            write_npy_array(&mut zip, data).map_err(e)?;
            zip.start_file("names.npy", options).map_err(z)?;
            write_names(&mut zip, &data.names).map_err(e)?;
            zip.finish().map_err(z)?;
        }
    }
    file.commit()
}

fn write_csv<W: Write>(out: W, data: &Dataset) -> std::io::Result<()> {
    let mut csv = csv::Writer::from_writer(out);
    let n = data.row_len();
    let names: Vec<String> = if data.names.is_empty() {
        (0..n).map(|i| format!("column_{i}")).collect()
    } else {
        data.names.clone()
    };
    csv.write_record(&names)?;
    for row in data.values.chunks_exact(n.max(1)) {
        csv.write_record(row.iter().map(|v| v.to_string()))?;
    }
    csv.flush()
}
