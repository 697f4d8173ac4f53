use std::path::PathBuf;

/// Errors that stop pyward from reading an input. Each names the input and says what is wrong, so
/// the user can fix it; the CLI maps all of them to exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{input}: {message}")]
    Input { input: String, message: String },
    #[error("{0}")]
    Usage(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn input(input: impl std::fmt::Display, message: impl Into<String>) -> Self {
        Error::Input {
            input: input.to_string(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
