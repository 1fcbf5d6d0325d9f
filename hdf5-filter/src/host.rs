//! The HDF5 library that called the plugin, and the few of its functions the plugin uses.
//!
//! The plugin links no HDF5. A process may hold several copies: h5py's wheel and
//! netCDF4-python's each bring their own, loaded privately (`RTLD_LOCAL`), and `h5dump` uses
//! the system's. HDF5 identifiers (`hid_t`) mean something only to the copy that made them,
//! so each callback finds the library that called it: the return address of the callback's
//! frame lies in that library's code, `dladdr` names its file, and `dlopen(.., RTLD_NOLOAD)`
//! gives a handle to the copy already loaded, whose symbols `dlsym` then finds.

use libc::{c_char, c_int, c_uint, c_void, size_t};
use std::ffi::CStr;

/// HDF5's object identifier (64 bits since HDF5 1.10).
pub type Hid = i64;
/// HDF5's status: negative on failure.
pub type Herr = c_int;
/// HDF5's size of a dimension.
pub type Hsize = u64;

/// `H5Tget_class` values this plugin cares about.
pub const H5T_INTEGER: c_int = 0;
/// See [`H5T_INTEGER`].
pub const H5T_FLOAT: c_int = 1;
/// `H5Tget_order`: big-endian.
pub const H5T_ORDER_BE: c_int = 1;
/// `H5Tget_order`: little-endian.
pub const H5T_ORDER_LE: c_int = 0;
/// `H5Tget_sign`: two's complement.
pub const H5T_SGN_2: c_int = 1;

type GetChunk = unsafe extern "C" fn(Hid, c_int, *mut Hsize) -> c_int;
type GetFilterById = unsafe extern "C" fn(
    Hid,
    c_int,
    *mut c_uint,
    *mut size_t,
    *mut c_uint,
    size_t,
    *mut c_char,
    *mut c_uint,
) -> Herr;
type ModifyFilter = unsafe extern "C" fn(Hid, c_int, c_uint, size_t, *const c_uint) -> Herr;
type TypeInt = unsafe extern "C" fn(Hid) -> c_int;
type TypeSize = unsafe extern "C" fn(Hid) -> size_t;
type Allocate = unsafe extern "C" fn(size_t, bool) -> *mut c_void;
type Free = unsafe extern "C" fn(*mut c_void) -> Herr;
type Push = unsafe extern "C" fn(
    Hid,
    *const c_char,
    *const c_char,
    c_uint,
    Hid,
    Hid,
    Hid,
    *const c_char,
    ...
) -> Herr;

/// The functions of one loaded HDF5 library.
pub struct Hdf5 {
    handle: *mut c_void,
    /// Whether `handle` came from `dlopen` (and must be closed).
    opened: bool,
    /// `H5Pget_chunk`.
    pub get_chunk: GetChunk,
    /// `H5Pget_filter_by_id2`.
    pub get_filter_by_id: GetFilterById,
    /// `H5Pmodify_filter`.
    pub modify_filter: ModifyFilter,
    /// `H5Tget_class`.
    pub type_class: TypeInt,
    /// `H5Tget_size`.
    pub type_size: TypeSize,
    /// `H5Tget_order`.
    pub type_order: TypeInt,
    /// `H5Tget_sign`.
    pub type_sign: TypeInt,
    allocate: Option<Allocate>,
    free: Option<Free>,
    push: Option<(Push, Hid, Hid, Hid)>,
}

impl Drop for Hdf5 {
    fn drop(&mut self) {
        if self.opened {
            // SAFETY: `handle` came from a successful `dlopen` in `open` and is closed once.
            unsafe { libc::dlclose(self.handle) };
        }
    }
}

/// Looks `name` up in `handle`.
///
/// # Safety
/// `handle` is a live `dlopen` handle or `RTLD_DEFAULT`, and `T` is the symbol's real type
/// (a function pointer, or a pointer to a variable).
unsafe fn symbol<T: Copy>(handle: *mut c_void, name: &CStr) -> Option<T> {
    // SAFETY: per this function's contract; dlsym only reads the handle and the name.
    let address = unsafe { libc::dlsym(handle, name.as_ptr()) };
    if address.is_null() {
        return None;
    }
    // SAFETY: `T` is pointer-sized (a function pointer or a data pointer, per the contract),
    // so the non-null address converts to it as C's casts of dlsym's result do.
    Some(unsafe { std::mem::transmute_copy::<*mut c_void, T>(&address) })
}

impl Hdf5 {
    /// The HDF5 library whose code called the plugin's callback (the caller of the innermost
    /// frame of this plugin on the stack). Falls back to the process's global symbols (a
    /// program linked with HDF5, as `h5dump` is) when the caller cannot be named.
    pub fn calling() -> Option<Hdf5> {
        if let Some(path) = caller_library() {
            // SAFETY: `path` is a NUL-terminated file name of a loaded object; RTLD_NOLOAD
            // only returns a handle to a library that is already loaded, never loads one.
            let handle =
                unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD) };
            if !handle.is_null() {
                // SAFETY: `handle` is live, from the dlopen above.
                if let Some(hdf5) = unsafe { Hdf5::resolve(handle, true) } {
                    return Some(hdf5);
                }
                // SAFETY: `handle` came from the dlopen above and nothing else holds it.
                unsafe { libc::dlclose(handle) };
            }
        }
        // SAFETY: RTLD_DEFAULT is always a valid pseudo-handle.
        unsafe { Hdf5::resolve(libc::RTLD_DEFAULT, false) }
    }

    /// # Safety
    /// `handle` is live (or `RTLD_DEFAULT`); `opened` says whether it must be closed.
    unsafe fn resolve(handle: *mut c_void, opened: bool) -> Option<Hdf5> {
        // SAFETY (every lookup below): each type is the C prototype of the named HDF5 1.10+
        // function (H5Ppublic.h, H5Tpublic.h, H5public.h, H5Epublic.h), or, for the `_g`
        // names, a pointer to the `hid_t` variable HDF5 exports.
        unsafe {
            let push = match (
                symbol::<Push>(handle, c"H5Epush2"),
                symbol::<*const Hid>(handle, c"H5E_ERR_CLS_g"),
                symbol::<*const Hid>(handle, c"H5E_PLINE_g"),
                symbol::<*const Hid>(handle, c"H5E_CANTFILTER_g"),
            ) {
                // SAFETY: the three are pointers to HDF5's initialised error-class ids
                // (HDF5 is open while it calls a filter).
                (Some(push), Some(class), Some(major), Some(minor)) => {
                    Some((push, *class, *major, *minor))
                }
                _ => None,
            };
            Some(Hdf5 {
                handle,
                opened,
                get_chunk: symbol(handle, c"H5Pget_chunk")?,
                get_filter_by_id: symbol(handle, c"H5Pget_filter_by_id2")?,
                modify_filter: symbol(handle, c"H5Pmodify_filter")?,
                type_class: symbol(handle, c"H5Tget_class")?,
                type_size: symbol(handle, c"H5Tget_size")?,
                type_order: symbol(handle, c"H5Tget_order")?,
                type_sign: symbol(handle, c"H5Tget_sign")?,
                allocate: symbol(handle, c"H5allocate_memory"),
                free: symbol(handle, c"H5free_memory"),
                push,
            })
        }
    }

    /// A buffer HDF5 can free (HDF5's own allocator where it has one, else `malloc`).
    pub fn allocate(this: Option<&Hdf5>, bytes: usize) -> *mut c_void {
        match this.and_then(|h| h.allocate) {
            // SAFETY: H5allocate_memory(size, clear) returns a buffer of `bytes` or null.
            Some(allocate) => unsafe { allocate(bytes, false) },
            // SAFETY: malloc of a positive size returns a buffer or null.
            None => unsafe { libc::malloc(bytes.max(1)) },
        }
    }

    /// Frees a buffer HDF5 handed the filter.
    ///
    /// # Safety
    /// `buffer` came from HDF5's filter pipeline (or [`Hdf5::allocate`] with the same `this`)
    /// and is not used again.
    pub unsafe fn free(this: Option<&Hdf5>, buffer: *mut c_void) {
        match this.and_then(|h| h.free) {
            // SAFETY: per this function's contract, HDF5 allocated `buffer`.
            Some(free) => unsafe {
                free(buffer);
            },
            // SAFETY: without H5free_memory HDF5 allocates with malloc.
            None => unsafe { libc::free(buffer) },
        }
    }

    /// Puts `message` on HDF5's error stack, so the failing call reports why.
    pub fn report(&self, message: &str) {
        let Some((push, class, major, minor)) = self.push else {
            return;
        };
        let text = std::ffi::CString::new(message.replace('\0', " ")).unwrap_or_default();
        // SAFETY: H5Epush2 with the default stack (0), static file and function names, and
        // a "%s" format with one NUL-terminated argument that outlives the call.
        unsafe {
            push(
                0,
                c"hdf5-filter/src/lib.rs".as_ptr(),
                c"baler_filter".as_ptr(),
                0,
                class,
                major,
                minor,
                c"%s".as_ptr(),
                text.as_ptr(),
            );
        }
    }
}

/// The file name of the first object outside this plugin on the stack, above the plugin's
/// own frames: the library that called into the plugin.
fn caller_library() -> Option<std::ffi::CString> {
    let ours = object_base(caller_library as *const c_void)?;
    let mut seen_ours = false;
    let mut caller = None;
    backtrace::trace(|frame| {
        // The return address points after the call; one byte back is inside the call.
        let ip = (frame.ip() as usize).saturating_sub(1) as *const c_void;
        match object_base(ip) {
            Some(base) if base == ours => seen_ours = true,
            Some(_) if seen_ours => {
                caller = Some(ip);
                return false;
            }
            _ => {}
        }
        true
    });
    let mut info = empty_info();
    // SAFETY: dladdr only reads the address and fills `info`.
    if unsafe { libc::dladdr(caller?, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr's file name is a NUL-terminated string owned by the loader.
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    if name.is_empty() {
        return None;
    }
    Some(name.to_owned())
}

/// The load address of the object holding `address`.
fn object_base(address: *const c_void) -> Option<usize> {
    let mut info = empty_info();
    // SAFETY: dladdr only reads the address and fills `info`.
    let found = unsafe { libc::dladdr(address, &mut info) };
    (found != 0).then_some(info.dli_fbase as usize)
}

fn empty_info() -> libc::Dl_info {
    libc::Dl_info {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    }
}
