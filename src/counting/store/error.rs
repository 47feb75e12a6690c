//! What can go wrong with the state file, as types. [`StateError`] stops the start and is
//! what the user reads; [`SaveError`] is a failed save, logged and shown on the landing
//! page while the exporter goes on; the others are the causes beneath them ([`OpenError`],
//! [`LoadError`], [`Damage`], [`Foreign`], [`CreateError`]).
//!
//! Every message here is part of the exporter's contract (logs, `/-/ready`, the landing
//! page and the tests pin them), so a variant renders exactly the text the store built by
//! hand before it had types. Where a message already quotes its cause, the cause is still
//! kept as the `source`, for whoever wants the value rather than the text.

use std::io;

use redb::{DatabaseError, StorageError, TableError, TransactionError};

use super::FORMAT_VERSION;

/// The user's two ways out of a file the exporter refuses.
const CHOICES: &str = "Either move the file aside (keep it if you want to report a problem) and start again, or start with --state.reset to begin afresh: counters restart at zero and counting begins anew one recent window before the start";

/// Why the exporter refuses to start with the state file it was given.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("the state file {path} is damaged ({detail}); nothing was loaded from it. {CHOICES}")]
    Corrupted { path: String, detail: String },
    #[error("the state file {path} was written by a newer teams-voice-exporter ({written_by}, state format {found}; this version {ours} reads state format {FORMAT_VERSION} at most). Run that version or a newer one, or: {CHOICES}", ours = env!("CARGO_PKG_VERSION"))]
    Newer {
        path: String,
        found: u32,
        written_by: String,
    },
    #[error(
        "{path} is not a teams-voice-exporter state file ({detail}). Check --state.path. {CHOICES}"
    )]
    WrongFormat { path: String, detail: String },
    #[error("the state file {path} belongs to tenant {saved}, not to the configured tenant {configured}: give each tenant its own --state.path. {CHOICES}")]
    OtherTenant {
        path: String,
        saved: String,
        configured: String,
    },
    #[error("the state file {path} holds the calls of {saved}, not of {expected}: the exporter names each source's file after the --state.path it is given (see the README, \"State\"), so a file was renamed or copied by hand. Put it back under its own name. {CHOICES}")]
    OtherFunction {
        path: String,
        saved: String,
        expected: &'static str,
    },
    #[error("the state file {path} is in use by another running exporter; give each exporter its own --state.path")]
    InUse { path: String },
    #[error("cannot read the state file {path}: {reason}. Give the exporter read and write access to it. {CHOICES}")]
    Unreadable { path: String, reason: String },
    #[error("--state.reset cannot delete {path}: {reason}. Delete it by hand, or give the exporter write access to its directory")]
    Reset { path: String, reason: String },
}

/// Why a save failed. Rendered into the log line and [`StoreProblem`](super::StoreProblem)
/// `error`; `path` is the path as shown to the user.
#[derive(Debug, thiserror::Error)]
pub(super) enum SaveError {
    /// At start: restored from a private copy, and saving waits until the file is writable.
    #[error("the state file {path} is not writable: {source}")]
    NotWritable {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot create the state file {path}: {source}")]
    Create {
        path: String,
        #[source]
        source: CreateError,
    },
    #[error("cannot reach the state file {path}: {source}")]
    Unreachable {
        path: String,
        #[source]
        source: io::Error,
    },
    /// The call-quality collector could not save the calls whose records it will fetch:
    /// the rows that counted them wait, or a crash would lose those records.
    #[error(
        "the state file {path} waits for the call-quality state, which cannot be saved: {reason}"
    )]
    CallsNotHeld { path: String, reason: String },
    #[error("the state file {path} is in use by another process")]
    InUse { path: String },
    #[error("cannot open the state file {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("the state file {path} is damaged ({source}); it is left as it is")]
    Damaged {
        path: String,
        #[source]
        source: Damage,
    },
    /// On reopening: the file is readable but is not what this exporter last wrote there.
    #[error("the state file {path} no longer holds this exporter's state ({source}); it is left as it is")]
    NotOurs {
        path: String,
        #[source]
        source: LoadError,
    },
    #[error("cannot write the state file {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: Box<redb::Error>,
    },
}

impl SaveError {
    /// The failure to reopen a file for writing, in the words of a failed save.
    pub(super) fn reopening(path: &str, error: OpenError) -> Self {
        let path = path.to_owned();
        match error {
            OpenError::Locked => SaveError::InUse { path },
            OpenError::Io(source) => SaveError::Open { path, source },
            OpenError::Damaged(source) => SaveError::Damaged { path, source },
        }
    }
}

/// Why creating an empty state file failed. Renders as its cause alone: the context is
/// [`SaveError::Create`]'s.
#[derive(Debug, thiserror::Error)]
pub(super) enum CreateError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Database(Box<DatabaseError>),
    #[error(transparent)]
    Initialise(#[from] Box<redb::Error>),
}

/// Why opening a file as a database failed. Worded for the user by [`OpenError::at`] at
/// start and by [`SaveError::reopening`] later, whose messages differ.
#[derive(Debug, thiserror::Error)]
pub(super) enum OpenError {
    /// Another process (or this one) has it open: redb locks the file.
    #[error("it is in use by another process")]
    Locked,
    #[error(transparent)]
    Io(io::Error),
    #[error(transparent)]
    Damaged(#[from] Damage),
}

impl OpenError {
    /// The refusal at start.
    pub(super) fn at(self, path: &str) -> StateError {
        let path = path.to_owned();
        match self {
            OpenError::Locked => StateError::InUse { path },
            OpenError::Io(error) => StateError::Unreadable {
                path,
                reason: error.to_string(),
            },
            OpenError::Damaged(damage) => StateError::Corrupted {
                path,
                detail: damage.to_string(),
            },
        }
    }
}

/// Why a file's contents cannot be used. Renders as the detail that goes in parentheses
/// after the path when a reopened file turns out not to be ours.
#[derive(Debug, thiserror::Error)]
pub(super) enum LoadError {
    #[error(transparent)]
    WrongFormat(#[from] Foreign),
    #[error("written by {written_by} in state format {found}")]
    Newer { found: u32, written_by: String },
    #[error("it belongs to tenant {0}")]
    OtherTenant(String),
    #[error("it holds the calls of {saved}, not of {expected}")]
    OtherFunction {
        saved: String,
        expected: &'static str,
    },
    #[error(transparent)]
    Damaged(#[from] Damage),
}

impl LoadError {
    /// The refusal at start, for a file saved for `configured` tenant or another.
    pub(super) fn at(self, path: &str, configured: &str) -> StateError {
        let path = path.to_owned();
        match self {
            LoadError::WrongFormat(foreign) => StateError::WrongFormat {
                path,
                detail: foreign.to_string(),
            },
            LoadError::Newer { found, written_by } => StateError::Newer {
                path,
                found,
                written_by,
            },
            LoadError::OtherTenant(saved) => StateError::OtherTenant {
                path,
                saved,
                configured: configured.to_owned(),
            },
            LoadError::OtherFunction { saved, expected } => StateError::OtherFunction {
                path,
                saved,
                expected,
            },
            LoadError::Damaged(damage) => StateError::Corrupted {
                path,
                detail: damage.to_string(),
            },
        }
    }
}

/// What shows that the file at the path is not a state file at all (and so is not
/// reported as damage).
#[derive(Debug, thiserror::Error)]
pub(super) enum Foreign {
    #[error("it is a directory; give a file name inside it")]
    Directory,
    #[error("it is an SQLite database")]
    Sqlite,
    #[error("it is a text file")]
    Text,
    #[error("it does not start like a redb database")]
    NotRedb,
    #[error("it is a redb database without this exporter's tables")]
    NoTables,
    #[error("it is a redb database whose tables are not this exporter's")]
    OtherTables(#[source] Box<TableError>),
    #[error("it is a redb database, but not one this exporter wrote")]
    NotOurs,
}

/// How a file of ours is damaged: redb's own complaint, or a check of ours that failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum Damage {
    #[error(transparent)]
    Database(Box<DatabaseError>),
    #[error(transparent)]
    Transaction(Box<TransactionError>),
    #[error(transparent)]
    Table(Box<TableError>),
    #[error(transparent)]
    Storage(Box<StorageError>),
    /// redb panicked on it (see [`guarded`](super::open::guarded)); the panic's message.
    #[error("the storage library gave up on it: {0}")]
    Panicked(String),
    #[error("its format version is missing")]
    NoVersion,
    #[error("its format version is 0")]
    VersionZero,
    #[error("no summary")]
    NoSummary,
    #[error("its summary is truncated")]
    SummaryTruncated,
    #[error("its summary fails its checksum")]
    SummaryChecksum,
    #[error("its summary cannot be decoded")]
    SummaryUndecodable(#[source] postcard::Error),
    #[error("a remembered id is malformed")]
    MalformedId,
    #[error("it holds {found} remembered ids where its last commit wrote {written}, or their digest differs")]
    Rows { found: u64, written: u64 },
    #[error("its save time is out of range")]
    SaveTime,
    #[error("a saved time is out of range")]
    Time,
    /// The arrival delay's; the function's own histograms are checked by the function.
    #[error("its {histogram} histogram has other buckets than this version's")]
    Buckets { histogram: &'static str },
    #[error("a histogram does not add up")]
    Histogram,
    /// The function's totals do not add up (see [`crate::source::CallLog::restore`]).
    #[error(transparent)]
    Totals(#[from] crate::source::DamagedTotals),
}

/// `From` for a variant that holds one of redb's errors boxed, so that `?` boxes it.
macro_rules! from_boxed {
    ($($target:ident::$variant:ident($error:ty)),* $(,)?) => {$(
        impl From<$error> for $target {
            fn from(error: $error) -> Self {
                $target::$variant(Box::new(error))
            }
        }
    )*};
}

// redb's errors are large (up to 160 bytes); boxed, they keep every `Result` here small.
from_boxed!(
    CreateError::Database(DatabaseError),
    Damage::Database(DatabaseError),
    Damage::Transaction(TransactionError),
    Damage::Table(TableError),
    Damage::Storage(StorageError),
);

/// redb's errors are large; boxed, they keep `Result`s small.
pub(super) type DbResult<T> = Result<T, Box<redb::Error>>;

/// `.db()?` for any of redb's error types, where the caller only passes the error on.
pub(super) trait IntoDbResult<T> {
    fn db(self) -> DbResult<T>;
}

impl<T, E: Into<redb::Error>> IntoDbResult<T> for Result<T, E> {
    fn db(self) -> DbResult<T> {
        self.map_err(|e| Box::new(e.into()))
    }
}

#[cfg(test)]
mod tests;
