//! The one error type users see: every message names the offending value and what to do.

use std::path::PathBuf;

/// Exit code for a command that was understood but failed while doing its work.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for bad usage or bad input (the same code clap uses for argument errors).
pub const EXIT_USAGE: u8 = 2;

/// Everything that can go wrong in an rspy command, worded for the person who typed it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid project name `{name}`: {reason}; {hint}")]
    InvalidName {
        name: String,
        reason: String,
        hint: String,
    },

    #[error(
        "`{}` already exists and is not an empty directory; choose a new path or empty it first",
        path.display()
    )]
    TargetExists { path: PathBuf },

    #[error(
        "cannot create the project in `{}`: {reason}; choose a directory you can write to",
        path.display()
    )]
    ParentNotWritable { path: PathBuf, reason: String },

    #[error("invalid `--define {value}`: {reason}")]
    InvalidDefine { value: String, reason: String },

    #[error("invalid value `{value}` for `{key}`: {reason}")]
    InvalidPlaceholder {
        key: String,
        value: String,
        reason: String,
    },

    #[error("`{key}` is given twice (`{first}` and `{second}`); keep one of them")]
    DuplicatePlaceholder {
        key: String,
        first: String,
        second: String,
    },

    #[error(
        "`{}` is not a directory, so the project cannot go below it; choose another path",
        path.display()
    )]
    NotADirectory { path: PathBuf },

    #[error("could not render the template: {0}")]
    Render(String),

    #[error("could not run `git init` in the new project: {0}; install git or pass `--vcs none`")]
    Git(String),

    #[error(
        "not inside an rspy project: no `rspy.toml` in `{}` or above; run this in a project made by `rspy new`, or pass `-C <DIR>`",
        dir.display()
    )]
    NotAProject { dir: PathBuf },

    #[error("`{}` is not a valid manifest: {reason}", path.display())]
    InvalidManifest { path: PathBuf, reason: String },

    #[error("invalid {what} `{value}`: {reason}")]
    InvalidRoute {
        /// `method`, `path` or `handler name`.
        what: &'static str,
        value: String,
        reason: String,
    },

    /// A refusal whose whole message is the text: what is wrong and what to do.
    #[error("{0}")]
    Refused(String),

    /// Fetching a document over HTTP failed; the whole message says why and what to do.
    #[error("{0}")]
    Fetch(String),

    #[error("cannot use `-C {}`: {reason}; pass an existing directory", path.display())]
    BadDirectory { path: PathBuf, reason: String },

    #[error(
        "the project is not consistent ({count} problem{s} above); fix {them} and run `rspy check` again",
        count = .0,
        s = if *.0 == 1 { "" } else { "s" },
        them = if *.0 == 1 { "it" } else { "them" }
    )]
    CheckFailed(usize),

    #[error("interrupted; everything `rspy` had made is removed again")]
    Interrupted,

    #[error("{action} `{}` failed: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The process exit code for this error: 2 for bad input, 1 for a failed operation.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::InvalidName { .. }
            | Self::TargetExists { .. }
            | Self::ParentNotWritable { .. }
            | Self::InvalidDefine { .. }
            | Self::InvalidPlaceholder { .. }
            | Self::DuplicatePlaceholder { .. }
            | Self::NotAProject { .. }
            | Self::InvalidManifest { .. }
            | Self::BadDirectory { .. }
            | Self::InvalidRoute { .. }
            | Self::Refused(_)
            | Self::NotADirectory { .. } => EXIT_USAGE,
            Self::Render(_)
            | Self::Git(_)
            | Self::Fetch(_)
            | Self::Io { .. }
            | Self::CheckFailed(_) => EXIT_FAILURE,
            // What a shell reports for a process ended by SIGINT.
            Self::Interrupted => 130,
        }
    }

    /// Wraps an I/O error with what rspy was doing and on which path.
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
