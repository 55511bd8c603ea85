//! CLI errors and how they are shown to people.

use kns_core::manifest::ManifestErrors;

/// Exit code for success.
pub const EXIT_OK: i32 = 0;
/// Exit code for a problem with the user's input or arguments.
pub const EXIT_USER: i32 = 1;
/// Exit code for a bug in kns.
pub const EXIT_INTERNAL: i32 = 2;

/// Everything that can stop a `kns` command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path as the user gave it.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The manifests have problems (each located).
    #[error(transparent)]
    Manifest(#[from] ManifestErrors),
    /// An argument is wrong (unknown pod, bad port, ...).
    #[error("{0}")]
    Usage(String),
    /// A script or command failed at a given line.
    #[error("{file}:{line}: {message}")]
    Script {
        /// The script's name.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What went wrong.
        message: String,
    },
    /// kns itself failed (a bug).
    #[error("internal error: {0}")]
    Internal(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Internal(_) => EXIT_INTERNAL,
            _ => EXIT_USER,
        }
    }

    /// The full report for a terminal: one `error:` line per problem, with its location.
    pub fn render(&self) -> String {
        match self {
            CliError::Manifest(errors) => {
                let mut out = String::new();
                for e in &errors.0 {
                    out.push_str(&format!("error: {}\n", e.render()));
                }
                out.push_str(&format!("{} problem(s) found; nothing was run.\n", errors.0.len()));
                out
            }
            other => format!("error: {other}\n"),
        }
    }
}
