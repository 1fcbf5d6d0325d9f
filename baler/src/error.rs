//! The library's one error type. Every message is one line that says where the problem is
//! (the file, and the row or column where it applies); the CLI prints it as `error: ...`.

use std::path::PathBuf;

/// Everything the library can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The codec refused a model blob, a stream or a value (corrupt or foreign bytes, a
    /// model that does not fit, ...).
    #[error("{}{source}", at(path))]
    Codec {
        /// The file it came from, if any.
        path: Option<PathBuf>,
        /// The codec's error.
        #[source]
        source: baler_codec::Error,
    },
    /// Input data that cannot be compressed as asked, or a data file that cannot be read as
    /// data (its format, shape, element type, or a value at a row and column).
    #[error("{}{message}", at(path))]
    Input {
        /// The file, if any (messages from the data readers already name it).
        path: Option<PathBuf>,
        /// What is wrong, and where.
        message: String,
    },
    /// A data file could not be read or written as data: its format, shape, element type, or
    /// a value (the message names the row and column where it applies).
    #[error("{}: {message}", path.display())]
    Data {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where in the file.
        message: String,
    },
    /// Options that cannot work (a bound that is not a positive number, two bounds, no bound
    /// and no model).
    #[error("{0}")]
    Options(String),
    /// The stream was coded with a model, and none was given.
    #[error(
        "{}this stream was compressed with a model (id {model_id:016x}); pass it with --model",
        at(path)
    )]
    ModelRequired {
        /// The stream's file, if any.
        path: Option<PathBuf>,
        /// The id of the model the stream needs.
        model_id: u64,
    },
    /// Writing the output failed.
    #[error("{0}")]
    Output(String),
    /// Compress found a value that came back outside its bound. This is a bug (the encoder
    /// checks every value); it is reported, never written.
    #[error("internal error: value {value} decoded as {decoded}, bound {bound}")]
    BoundViolated {
        /// The original value.
        value: f64,
        /// What it decoded to.
        decoded: f64,
        /// Its bound.
        bound: f64,
    },
}

fn at(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map_or(String::new(), |p| format!("{}: ", p.display()))
}

impl Error {
    /// A codec error with no file to name.
    pub fn codec(source: baler_codec::Error) -> Self {
        Error::Codec { path: None, source }
    }

    /// Input that cannot be used, with its message (which names the file where there is one).
    pub fn input(message: impl Into<String>) -> Self {
        Error::Input {
            path: None,
            message: message.into(),
        }
    }

    /// A failed write of the output.
    pub fn output(e: std::io::Error) -> Self {
        Error::Output(e.to_string())
    }

    /// The same error, naming `path` where it names no file yet.
    pub fn at(self, path: &std::path::Path) -> Self {
        match self {
            Error::Codec { path: None, source } => Error::Codec {
                path: Some(path.to_path_buf()),
                source,
            },
            Error::Input {
                path: None,
                message,
            } => Error::Input {
                path: Some(path.to_path_buf()),
                message,
            },
            Error::ModelRequired {
                path: None,
                model_id,
            } => Error::ModelRequired {
                path: Some(path.to_path_buf()),
                model_id,
            },
            other => other,
        }
    }

    /// The codec's error underneath, if this is one.
    pub fn codec_error(&self) -> Option<baler_codec::Error> {
        match self {
            Error::Codec { source, .. } => Some(*source),
            _ => None,
        }
    }
}

/// The one-line message, for callers whose errors are text (the CLI prints `error: ...`).
impl From<Error> for String {
    fn from(e: Error) -> String {
        e.to_string()
    }
}

/// Shorthand for results of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
