//! `baler_rs._baler`: the compiled core of the Python package. It converts numpy arrays to
//! the `baler` library's `Array` and back, calls `baler::compress` / `baler::decompress` with
//! the GIL released, and turns the library's errors into Python exceptions. No pipeline of
//! its own: the bytes are exactly those `baler compress` writes.
//!
//! This crate holds no `unsafe` of its own: pyo3 and rust-numpy wrap the CPython and numpy C
//! APIs.
#![forbid(unsafe_code)]

use baler::{Array, Bound as ErrorBound, Error, Options, Values};
use numpy::{IntoPyArray, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// A library error as the Python exception a user expects: damaged or foreign bytes and
/// impossible options are `ValueError`, a failing file `OSError`.
fn to_py(e: Error) -> PyErr {
    match e {
        Error::Io { .. } => pyo3::exceptions::PyOSError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

/// The values of a C-contiguous, native-endian numpy array of a supported type (the Python
/// wrapper makes it so), copied into the library's `Values`.
fn values_of(array: &Bound<'_, PyAny>) -> PyResult<(Vec<usize>, Values)> {
    macro_rules! try_type {
        ($t:ty, $variant:ident) => {
            if let Ok(a) = array.extract::<PyReadonlyArrayDyn<'_, $t>>() {
                let shape = a.shape().to_vec();
                let values = match a.as_slice() {
                    Ok(slice) => slice.to_vec(),
                    // Not contiguous after all: numpy's logical order.
                    Err(_) => a.as_array().iter().copied().collect(),
                };
                return Ok((shape, Values::$variant(values)));
            }
        };
    }
    try_type!(f64, F64);
    try_type!(f32, F32);
    try_type!(i16, I16);
    try_type!(i32, I32);
    Err(PyTypeError::new_err(
        "baler compresses float32, float64, int16 and int32 arrays",
    ))
}

/// Compresses `array` (a numpy array of rank 1 to 8) into a baler stream: within
/// `error_bound` (absolute) or `rel_error_bound` (a fraction of each column's range for a
/// table, of the whole array's range otherwise), or at a fixed rate with the model blob
/// `model`. `field`: a 2-D array is one field of rows (an image) rather than a table.
/// `names`: a table's column names, kept in error-bounded streams. `pointwise_rel_bound`:
/// every value within R x |value|; `mantissa_bits` the same as NanoAOD's rounding.
/// `column_bounds`: a per-column specification as JSON text (`baler::ColumnBounds`).
#[pyfunction]
#[pyo3(signature = (array, *, error_bound=None, rel_error_bound=None, pointwise_rel_bound=None, mantissa_bits=None, column_bounds=None, model=None, field=false, names=None))]
#[allow(clippy::too_many_arguments)]
fn compress<'py>(
    py: Python<'py>,
    array: &Bound<'py, PyAny>,
    error_bound: Option<f64>,
    rel_error_bound: Option<f64>,
    pointwise_rel_bound: Option<f64>,
    mantissa_bits: Option<u32>,
    column_bounds: Option<String>,
    model: Option<Vec<u8>>,
    field: bool,
    names: Option<Vec<String>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let given = [
        error_bound.map(ErrorBound::Absolute),
        rel_error_bound.map(ErrorBound::Relative),
        pointwise_rel_bound.map(ErrorBound::Pointwise),
        mantissa_bits
            .map(ErrorBound::mantissa_bits)
            .transpose()
            .map_err(to_py)?,
    ];
    let mut flags = given.into_iter().flatten();
    let flag = flags.next();
    if flags.next().is_some() {
        return Err(PyValueError::new_err(
            "give one of error_bound, rel_error_bound, pointwise_rel_bound and mantissa_bits",
        ));
    }
    let spec = column_bounds
        .map(|text| baler::ColumnBounds::parse(&text, false))
        .transpose()
        .map_err(to_py)?;
    let (bound, columns) = match spec {
        Some(spec) => {
            let (default, columns) = spec.with_default(flag).map_err(to_py)?;
            (Some(default), columns)
        }
        None if flag.is_none() && model.is_none() => {
            return Err(PyValueError::new_err(
                "give error_bound, rel_error_bound, pointwise_rel_bound or mantissa_bits (or a model for fixed-rate compression)",
            ))
        }
        None => (flag, Vec::new()),
    };
    let (shape, values) = values_of(array)?;
    let stream = py.detach(move || -> Result<Vec<u8>, Error> {
        let mut array = Array::new(&shape, values)?;
        if let Some(names) = names.filter(|n| !n.is_empty()) {
            array = array.with_names(names)?;
        }
        let options = Options {
            bound,
            model: model.as_deref(),
            field,
            columns: &columns,
            ..Options::default()
        };
        baler::compress(&array, &options)
    });
    Ok(PyBytes::new(py, &stream.map_err(to_py)?))
}

/// Decompresses a baler stream into a numpy array of its original shape and type. `model`
/// is the model blob the stream was coded with, if it was.
#[pyfunction]
#[pyo3(signature = (data, *, model=None))]
fn decompress<'py>(
    py: Python<'py>,
    data: Vec<u8>,
    model: Option<Vec<u8>>,
) -> PyResult<Bound<'py, PyAny>> {
    let array = py
        .detach(move || baler::decompress(&data, model.as_deref()))
        .map_err(to_py)?;
    let shape = array.shape().to_vec();
    let flat = match array.into_values() {
        Values::F64(v) => v.into_pyarray(py).into_any(),
        Values::F32(v) => v.into_pyarray(py).into_any(),
        Values::I16(v) => v.into_pyarray(py).into_any(),
        Values::I32(v) => v.into_pyarray(py).into_any(),
    };
    flat.call_method1("reshape", (shape,))
}

/// The user's `cd_values` of the HDF5 filter for a bound (`kind`: "absolute", "relative" or
/// "pointwise") and the 2-D-as-image flag: the layout of `baler::filter_params`.
#[pyfunction]
fn hdf5_cd_values(kind: &str, value: f64, field: bool) -> PyResult<Vec<u32>> {
    let bound = match kind {
        "absolute" => ErrorBound::Absolute(value),
        "relative" => ErrorBound::Relative(value),
        "pointwise" => ErrorBound::Pointwise(value),
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown bound kind {other:?}"
            )))
        }
    };
    bound.check().map_err(to_py)?;
    let user = baler::filter_params::UserParams { bound, field };
    Ok(baler::filter_params::pack_user(&user).to_vec())
}

/// The compiled core of `baler_rs`.
#[pymodule]
fn _baler(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(compress, module)?)?;
    module.add_function(wrap_pyfunction!(decompress, module)?)?;
    module.add_function(wrap_pyfunction!(hdf5_cd_values, module)?)?;
    Ok(())
}
