use std::path::PathBuf;

/// Why threat intelligence could not be loaded or imported. Each names the file and says what
/// to do; the CLI maps all of them to exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum IntelError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{}: not a usable pyward intel database ({source}); delete it and run `pyward intel import` again",
        path.display()
    )]
    Db {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{input}: {message}")]
    Input { input: String, message: String },
    #[error("built-in intelligence is corrupt: {0}")]
    Builtin(String),
}

impl IntelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IntelError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn db(path: impl Into<PathBuf>, source: rusqlite::Error) -> Self {
        IntelError::Db {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn input(input: impl std::fmt::Display, message: impl Into<String>) -> Self {
        IntelError::Input {
            input: input.to_string(),
            message: message.into(),
        }
    }
}
