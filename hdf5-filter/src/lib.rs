//! # baler-hdf5
//!
//! An HDF5 filter plugin: each chunk of a dataset compressed by the `baler` library within an
//! error bound. HDF5 loads `libh5baler.so` from a folder on `HDF5_PLUGIN_PATH`, so h5py,
//! netCDF-4, `h5dump` and every other HDF5 program read and write such datasets.
//!
//! - Filter id [`FILTER_ID`] (in the range 256-511 HDF5 keeps for testing; see the README for
//!   registering a permanent one).
//! - Parameters (`cd_values`): the bound kind and value, and flags, from the user; the element
//!   type, byte order and chunk shape added by `set_local` ([`params`], in the library, has
//!   the layout).
//! - Datasets of `f32`, `f64`, `i16` and `i32` (either byte order), chunks of rank 1 to 8.
//! - A failure returns HDF5's failure value with the reason on HDF5's error stack; it never
//!   aborts the host program, and a damaged chunk is a read error, not wrong values.
//!
//! The plugin links no HDF5: it finds the copy that called it ([`host`]), since h5py and
//! netCDF4-python each bring their own.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod chunk;
pub mod host;
/// The `cd_values` layout (in the library, shared with the Python package).
pub use baler::filter_params as params;

use host::{Hdf5, Herr, Hid, Hsize, H5T_FLOAT, H5T_INTEGER, H5T_ORDER_BE, H5T_ORDER_LE, H5T_SGN_2};
use libc::{c_char, c_int, c_uint, c_void, size_t};
use params::{ChunkLayout, MAX_CHUNK_RANK, USER_VALUES};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The filter id: 256-511 are HDF5's ids for testing, not registered to anyone.
pub const FILTER_ID: c_int = 400;

/// `H5Z_FLAG_REVERSE`: the filter is asked to decode.
const FLAG_REVERSE: c_uint = 0x0100;
/// `H5PL_TYPE_FILTER`.
const PLUGIN_TYPE_FILTER: c_int = 0;
/// `H5Z_CLASS_T_VERS`.
const CLASS_VERSION: c_int = 1;
/// HDF5's largest rank (`H5S_MAX_RANK`).
const HDF5_MAX_RANK: usize = 32;

type CanApply = unsafe extern "C" fn(Hid, Hid, Hid) -> c_int;
type SetLocal = unsafe extern "C" fn(Hid, Hid, Hid) -> Herr;
type FilterFn = unsafe extern "C" fn(
    c_uint,
    size_t,
    *const c_uint,
    size_t,
    *mut size_t,
    *mut *mut c_void,
) -> size_t;

/// `H5Z_class2_t`, as HDF5 1.8.11+ reads it.
#[repr(C)]
pub struct FilterClass {
    version: c_int,
    id: c_int,
    encoder_present: c_uint,
    decoder_present: c_uint,
    name: *const c_char,
    can_apply: Option<CanApply>,
    set_local: Option<SetLocal>,
    filter: Option<FilterFn>,
}

/// The class lives in a static that HDF5 reads from any thread.
struct SharedClass(FilterClass);
// SAFETY: the class is immutable; its one pointer is to a static string.
unsafe impl Sync for SharedClass {}

static CLASS: SharedClass = SharedClass(FilterClass {
    version: CLASS_VERSION,
    id: FILTER_ID,
    encoder_present: 1,
    decoder_present: 1,
    name: c"baler: error-bounded compression (baler-rs)".as_ptr(),
    can_apply: Some(can_apply),
    set_local: Some(set_local),
    filter: Some(filter),
});

/// HDF5 asks what kind of plugin this is: a filter.
#[no_mangle]
pub extern "C" fn H5PLget_plugin_type() -> c_int {
    PLUGIN_TYPE_FILTER
}

/// HDF5 asks for the filter's class.
#[no_mangle]
pub extern "C" fn H5PLget_plugin_info() -> *const c_void {
    &CLASS.0 as *const FilterClass as *const c_void
}

/// The chunk layout of a dataset of type `type_id` with creation properties `dcpl`.
fn layout_of(hdf5: &Hdf5, dcpl: Hid, type_id: Hid) -> Result<ChunkLayout, String> {
    // SAFETY: HDF5 passed this id to the callback; the functions only query it.
    let (class, size) = unsafe { ((hdf5.type_class)(type_id), (hdf5.type_size)(type_id)) };
    // H5Tget_sign is defined for integer types only.
    // SAFETY: as above.
    let signed = class == H5T_INTEGER && unsafe { (hdf5.type_sign)(type_id) } == H5T_SGN_2;
    let dtype = match (class, size) {
        (H5T_FLOAT, 4) => baler::DType::F32,
        (H5T_FLOAT, 8) => baler::DType::F64,
        (H5T_INTEGER, 2) if signed => baler::DType::I16,
        (H5T_INTEGER, 4) if signed => baler::DType::I32,
        _ => {
            return Err(format!(
                "baler filter: datasets of float32, float64, int16 or int32 only (this one's type has class {class}, {size} bytes)"
            ))
        }
    };
    // SAFETY: as above.
    let big_endian = match unsafe { (hdf5.type_order)(type_id) } {
        H5T_ORDER_LE => false,
        H5T_ORDER_BE => true,
        other => return Err(format!("baler filter: byte order {other} is not supported")),
    };
    let mut dims = [0 as Hsize; HDF5_MAX_RANK];
    // SAFETY: `dims` holds HDF5_MAX_RANK values, the most H5Pget_chunk writes.
    let rank = unsafe { (hdf5.get_chunk)(dcpl, HDF5_MAX_RANK as c_int, dims.as_mut_ptr()) };
    if rank < 1 {
        return Err("baler filter: the dataset is not chunked".into());
    }
    let rank = rank as usize;
    if rank > MAX_CHUNK_RANK {
        return Err(format!(
            "baler filter: chunks of rank 1 to {MAX_CHUNK_RANK}, not {rank}"
        ));
    }
    Ok(ChunkLayout {
        dtype,
        big_endian,
        dims: dims[..rank].iter().map(|&d| d as usize).collect(),
    })
}

/// Reads this filter's `cd_values` and flags from `dcpl`.
fn filter_values(hdf5: &Hdf5, dcpl: Hid) -> Result<(c_uint, Vec<u32>), String> {
    let mut flags: c_uint = 0;
    let mut values = [0 as c_uint; 64];
    let mut count: size_t = values.len();
    // SAFETY: `values` holds `count` slots; name and config are not asked for (null, 0).
    let status = unsafe {
        (hdf5.get_filter_by_id)(
            dcpl,
            FILTER_ID,
            &mut flags,
            &mut count,
            values.as_mut_ptr(),
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if status < 0 {
        return Err("baler filter: cannot read the filter's parameters".into());
    }
    Ok((flags, values[..count.min(values.len())].to_vec()))
}

/// Runs `body` for a callback, with the HDF5 library that called it; a panic or an error is
/// reported to that library and becomes `failed`.
fn guarded<T>(failed: T, body: impl FnOnce(Option<&Hdf5>) -> Result<T, String>) -> T {
    let hdf5 = Hdf5::calling();
    let outcome = catch_unwind(AssertUnwindSafe(|| body(hdf5.as_ref())))
        .unwrap_or_else(|_| Err("baler filter: internal error (a panic was caught)".into()));
    match outcome {
        Ok(value) => value,
        Err(message) => {
            if let Some(hdf5) = &hdf5 {
                hdf5.report(&message);
            }
            failed
        }
    }
}

fn required(hdf5: Option<&Hdf5>) -> Result<&Hdf5, String> {
    hdf5.ok_or_else(|| "baler filter: cannot find the HDF5 library that called it".into())
}

/// Whether the filter can code this dataset (element type and chunk rank).
unsafe extern "C" fn can_apply(dcpl: Hid, type_id: Hid, _space: Hid) -> c_int {
    guarded(-1, |hdf5| {
        let hdf5 = required(hdf5)?;
        match layout_of(hdf5, dcpl, type_id) {
            Ok(_) => Ok(1),
            Err(message) => {
                hdf5.report(&message);
                Ok(0)
            }
        }
    })
}

/// Appends the chunk layout to the user's parameters (replacing any earlier layout, as when
/// a dataset's properties are copied to a new one of another type or chunk shape).
unsafe extern "C" fn set_local(dcpl: Hid, type_id: Hid, _space: Hid) -> Herr {
    guarded(-1, |hdf5| {
        let hdf5 = required(hdf5)?;
        let (flags, values) = filter_values(hdf5, dcpl)?;
        let user = params::parse(&values[..values.len().min(USER_VALUES)])
            .map_err(|e| e.0)?
            .user;
        let layout = layout_of(hdf5, dcpl, type_id)?;
        let full = params::pack(&user, &layout);
        // SAFETY: `full` holds `full.len()` values and outlives the call, which copies them.
        let status =
            unsafe { (hdf5.modify_filter)(dcpl, FILTER_ID, flags, full.len(), full.as_ptr()) };
        if status < 0 {
            return Err("baler filter: cannot store the chunk layout".into());
        }
        Ok(0)
    })
}

/// Compresses (or, with `H5Z_FLAG_REVERSE`, decompresses) the chunk in `*buf`, replacing it.
/// Returns the new size, or 0 on failure (HDF5's convention).
unsafe extern "C" fn filter(
    flags: c_uint,
    cd_nelmts: size_t,
    cd_values: *const c_uint,
    nbytes: size_t,
    buf_size: *mut size_t,
    buf: *mut *mut c_void,
) -> size_t {
    guarded(0, |hdf5| {
        if buf.is_null() || buf_size.is_null() || (nbytes > 0 && unsafe { (*buf).is_null() }) {
            return Err("baler filter: no chunk buffer".into());
        }
        let values: &[c_uint] = if cd_nelmts == 0 || cd_values.is_null() {
            &[]
        } else {
            // SAFETY: HDF5 passes `cd_nelmts` values at `cd_values`, alive for the call.
            unsafe { std::slice::from_raw_parts(cd_values, cd_nelmts) }
        };
        let params = params::parse(values).map_err(|e| e.0)?;
        let layout = params
            .layout
            .ok_or("baler filter: the chunk layout is missing (set_local did not run)")?;
        let input: &[u8] = if nbytes == 0 {
            &[]
        } else {
            // SAFETY: `*buf` holds at least `nbytes` valid bytes (HDF5's filter contract),
            // checked non-null above; the slice is dropped before the buffer is freed.
            unsafe { std::slice::from_raw_parts(*buf as *const u8, nbytes) }
        };
        let output = if flags & FLAG_REVERSE != 0 {
            chunk::decode(input, &layout)?
        } else {
            chunk::encode(input, &params.user, &layout)?
        };
        let out = Hdf5::allocate(hdf5, output.len());
        if out.is_null() {
            return Err(format!(
                "baler filter: cannot allocate {} bytes",
                output.len()
            ));
        }
        // SAFETY: `out` is a fresh buffer of `output.len()` bytes; `*buf` was HDF5's and is
        // replaced by `out`, as the filter contract asks, and not used again.
        unsafe {
            std::ptr::copy_nonoverlapping(output.as_ptr(), out as *mut u8, output.len());
            Hdf5::free(hdf5, *buf);
            *buf = out;
            *buf_size = output.len();
        }
        Ok(output.len())
    })
}
