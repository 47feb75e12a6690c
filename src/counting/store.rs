//! Durable state (`--state.path`): the tenant state saved after every poll, so that a
//! restart, a crash or a SIGKILL neither loses a call nor counts one twice.
//!
//! The file is a [redb](https://www.redb.org) database: copy-on-write B-trees, atomic
//! commits with checksums, fsync before a commit returns, and recovery to the last commit
//! after a crash at any instant. One transaction per poll holds everything that must agree:
//! the remembered row ids that changed since the last commit (so a poll that sees ten new
//! rows writes ten, not 300,000), every aggregate, and the poller's resume point. On top of
//! redb's own checks the file carries a count and an order-independent digest of the
//! remembered ids and a checksum of the aggregates, verified at every start, so damage is
//! found before anything is used: a file that is damaged, from a newer version or not ours
//! stops the start with a message that names the path and the choices, and is never
//! half-loaded or silently replaced.
//!
//! When the disk refuses writes (read-only, full), nothing stops: the failure is logged and
//! counted, the state stays in memory, and every later poll tries again. Ids whose commit
//! failed go back into the state's change set, so the next successful commit writes
//! everything still missing; if the file itself went away or no longer matches what was
//! last written, that commit rewrites it whole.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use prometheus::IntCounter;
use redb::{
    Database, DatabaseError, Durability, ReadableTable, ReadableTableMetadata, StorageBackend,
    StorageError, TableDefinition, TableError,
};
use serde::{Deserialize, Serialize};

use crate::counting::schedule::Progress;
use crate::counting::state::{
    Aggregates, CallKey, FailureKey, Histogram, RowKey, TenantState, TrunkTypeKey,
    ARRIVAL_DELAY_BUCKETS, DURATION_BUCKETS, SETUP_BUCKETS, UNKNOWN,
};

/// Small keys about the file and one record with the aggregates and resume point.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Remembered row id (see [`encode_key`]) → Unix second until which it is remembered.
const ROWS: TableDefinition<&[u8], i64> = TableDefinition::new("rows");

/// `meta["format"]`: says the file is ours, whatever version wrote it.
const FORMAT_MARK: &[u8] = b"teams-voice-exporter state";
/// `meta["format_version"]`: raised whenever a change would mislead an older reader.
pub const FORMAT_VERSION: u32 = 1;
/// The first bytes of every redb file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];
/// Page cache of the database. A commit touches a few dozen pages and the operating system
/// caches the file anyway: with 8 MiB instead of the whole file (16 MiB at 300,000 ids),
/// commits took as long (the fsync dominates) and the exporter stays 16 MiB smaller
/// (BENCHMARKS.md, "Memory").
const CACHE_BYTES: usize = 8 * 1024 * 1024;

const CHOICES: &str = "Either move the file aside (keep it if you want to report a problem) and start again, or start with --state.reset to begin afresh: counters restart at zero and the first poll is a new baseline";

/// How `--state.path` is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateOptions {
    pub path: PathBuf,
    /// `--state.reset`: delete what is saved and start afresh.
    pub reset: bool,
}

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
    #[error("the state file {path} is in use by another running exporter; give each exporter its own --state.path")]
    InUse { path: String },
    #[error("cannot read the state file {path}: {reason}. Give the exporter read and write access to it. {CHOICES}")]
    Unreadable { path: String, reason: String },
    #[error("--state.reset cannot delete {path}: {reason}. Delete it by hand, or give the exporter write access to its directory")]
    Reset { path: String, reason: String },
}

/// What the landing page shows about the state file.
#[derive(Debug)]
pub struct StoreStatus {
    pub path: PathBuf,
    health: Mutex<StoreHealth>,
}

/// The state file's recent history.
#[derive(Debug, Clone, Default)]
pub struct StoreHealth {
    /// When the last commit succeeded.
    pub last_commit: Option<DateTime<Utc>>,
    /// Set while commits fail.
    pub problem: Option<StoreProblem>,
}

/// Commits failing since `since`.
#[derive(Debug, Clone)]
pub struct StoreProblem {
    pub since: DateTime<Utc>,
    pub failed_attempts: u64,
    pub error: String,
    /// Ids counted or forgotten in memory but not yet in the file.
    pub unsaved_changes: usize,
}

impl StoreStatus {
    fn new(path: PathBuf) -> Self {
        StoreStatus {
            path,
            health: Mutex::new(StoreHealth::default()),
        }
    }

    pub fn health(&self) -> StoreHealth {
        self.health.lock().clone()
    }

    fn succeeded(&self) {
        let mut health = self.health.lock();
        health.last_commit = Some(Utc::now());
        health.problem = None;
    }

    /// Records a failure; returns how many attempts have failed in a row.
    fn failed(&self, error: String, unsaved_changes: usize) -> u64 {
        let mut health = self.health.lock();
        let problem = health.problem.get_or_insert_with(|| StoreProblem {
            since: Utc::now(),
            failed_attempts: 0,
            error: String::new(),
            unsaved_changes: 0,
        });
        problem.failed_attempts += 1;
        problem.error = error;
        problem.unsaved_changes = unsaved_changes;
        problem.failed_attempts
    }
}

/// The exporter's state as it starts.
pub struct Restored {
    pub state: TenantState,
    pub progress: Progress,
    /// `None` without `--state.path`.
    pub store: Option<StateStore>,
    pub status: Option<Arc<StoreStatus>>,
}

/// Opens `--state.path` (if given) and restores what it holds. Without it, the state lives
/// in memory only.
pub fn restore(
    options: Option<&StateOptions>,
    tenant_id: &str,
    write_errors: IntCounter,
) -> Result<Restored, StateError> {
    let Some(options) = options else {
        return Ok(Restored {
            state: TenantState::new(),
            progress: Progress::default(),
            store: None,
            status: None,
        });
    };
    let (store, saved) = StateStore::open(options, tenant_id, write_errors)?;
    let status = Some(store.status());
    let restored = match saved {
        Some(saved) => {
            tracing::info!(
                path = %options.path.display(),
                remembered_rows = saved.remembered.len(),
                rows_counted = saved.aggregates.rows_ingested,
                saved_at = %saved.saved_at.to_rfc3339(),
                written_by = %saved.written_by,
                baseline_done = saved.progress.baseline_done,
                "state restored; counters continue from the saved values, and a sweep of the lookback runs now to count calls that appeared meanwhile"
            );
            Restored {
                state: TenantState::durable(saved.remembered, saved.aggregates),
                progress: saved.progress.resumed(),
                store: Some(store),
                status,
            }
        }
        None => Restored {
            state: TenantState::durable(HashMap::new(), Aggregates::default()),
            progress: Progress::default(),
            store: Some(store),
            status,
        },
    };
    Ok(restored)
}

/// What a file held at start.
pub struct Saved {
    pub remembered: HashMap<RowKey, i64>,
    pub aggregates: Aggregates,
    pub progress: Progress,
    pub written_by: String,
    pub saved_at: DateTime<Utc>,
    mark: Mark,
}

/// Identifies what a file holds: its commit count, and the count and digest of its ids.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Mark {
    commits: u64,
    rows: u64,
    digest: u64,
}

/// The state file of one tenant, open for commits.
pub struct StateStore {
    path: PathBuf,
    tenant_id: String,
    /// `None` until the file could be opened for writing, and after a failed write (redb
    /// wants a database reopened after an I/O error).
    db: Option<Database>,
    /// Which file `db` is, to notice when the path is deleted or replaced under us.
    identity: Option<FileIdentity>,
    /// What the file holds after our last successful commit (or as restored).
    expected: Mark,
    /// The next commit writes every remembered id: the file is new, or does not hold
    /// what we last wrote.
    rewrite: bool,
    status: Arc<StoreStatus>,
    write_errors: IntCounter,
}

/// Why opening a file failed.
enum OpenError {
    Locked,
    Io(io::Error),
    Damaged(String),
}

/// Why a file's contents cannot be used.
enum LoadError {
    WrongFormat(String),
    Newer { found: u32, written_by: String },
    OtherTenant(String),
    Damaged(String),
}

impl StateStore {
    /// Opens the state file at start: restores what it holds, or creates it. A file that
    /// cannot be used stops the start; a file or directory that only refuses writes does
    /// not (the state is then kept in memory and written when the disk allows).
    pub fn open(
        options: &StateOptions,
        tenant_id: &str,
        write_errors: IntCounter,
    ) -> Result<(StateStore, Option<Saved>), StateError> {
        let path = options.path.clone();
        let shown = path.display().to_string();
        let mut store = StateStore {
            path: path.clone(),
            tenant_id: tenant_id.to_owned(),
            db: None,
            identity: None,
            expected: Mark::default(),
            rewrite: true,
            status: Arc::new(StoreStatus::new(path.clone())),
            write_errors,
        };
        if options.reset {
            reset(&path)?;
        }
        match fs::metadata(&path) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                store.create_at_start();
                return Ok((store, None));
            }
            Err(error) => {
                return Err(StateError::Unreadable {
                    path: shown,
                    reason: error.to_string(),
                })
            }
            Ok(meta) if meta.is_dir() => {
                return Err(StateError::WrongFormat {
                    path: shown,
                    detail: "it is a directory; give a file name inside it".into(),
                })
            }
            // An empty file holds nothing to lose (`touch`, or a crash before the first
            // byte): it is initialised like a missing one.
            Ok(meta) if meta.len() == 0 => {
                store.create_at_start();
                return Ok((store, None));
            }
            Ok(_) => {}
        }
        sniff(&path, &shown)?;

        let (db, writable) = match quietly(|| open_file(&path)) {
            Ok(db) => (db, true),
            Err(OpenError::Locked) => return Err(StateError::InUse { path: shown }),
            Err(OpenError::Io(error)) if refuses_writes(&error) => {
                // Restore from a private copy; writes wait until the file is writable.
                let db = quietly(|| open_copy(&path)).map_err(|e| e.at(&shown))?;
                store.failed(&format!("the state file {shown} is not writable: {error}"));
                (db, false)
            }
            Err(error) => return Err(error.at(&shown)),
        };
        let saved = quietly(|| load(&db, tenant_id)).map_err(|e| e.at(&shown, tenant_id))?;
        if let Some(saved) = &saved {
            store.expected = saved.mark;
            store.rewrite = false;
        }
        if writable {
            store.db = Some(db);
            store.identity = identity(&path);
        }
        Ok((store, saved))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn status(&self) -> Arc<StoreStatus> {
        Arc::clone(&self.status)
    }

    /// Saves the state's changes since the last commit, its aggregates and `progress` in
    /// one transaction. Blocks on disk I/O. A failure is logged, counted and shown on the
    /// landing page, and the changes are kept for the next attempt. Returns how many
    /// remembered ids were written, or `None` if the commit failed.
    pub fn commit(&mut self, state: &Mutex<TenantState>, progress: &Progress) -> Option<usize> {
        let started = Instant::now();
        tracing::debug!(path = %self.path.display(), "state commit starting");
        match self.try_commit(state, progress) {
            Ok(written) => {
                let recovered = self.status.health().problem;
                self.status.succeeded();
                tracing::debug!(
                    rows_written = written,
                    took = ?started.elapsed(),
                    "state committed"
                );
                if let Some(problem) = recovered {
                    tracing::info!(
                        path = %self.path.display(),
                        failed_attempts = problem.failed_attempts,
                        "the state is saved again; everything counted meanwhile is in the file"
                    );
                }
                Some(written)
            }
            Err(error) => {
                // redb wants a database reopened after an I/O error; the next attempt
                // checks what the file holds before writing to it.
                self.db = None;
                let pending = state.lock().pending_changes();
                self.failed_with_pending(&error, pending);
                None
            }
        }
    }

    fn try_commit(
        &mut self,
        state: &Mutex<TenantState>,
        progress: &Progress,
    ) -> Result<usize, String> {
        self.ensure_open()?;
        let (changes, rows, aggregates) = {
            let mut state = state.lock();
            let changes = state.take_changes();
            let rows: Vec<(Vec<u8>, Option<i64>)> = if self.rewrite {
                state
                    .remembered()
                    .iter()
                    .map(|(key, until)| (encode_key(key), Some(*until)))
                    .collect()
            } else {
                changes
                    .keys
                    .iter()
                    .map(|key| (encode_key(key), state.remembered_until(key)))
                    .collect()
            };
            (changes, rows, SavedAggregates::from(&state.aggregates))
        };
        match self.write(&rows, aggregates, progress) {
            Ok(mark) => {
                self.expected = mark;
                self.rewrite = false;
                Ok(rows.len())
            }
            Err(error) => {
                state.lock().return_changes(changes);
                Err(format!(
                    "cannot write the state file {}: {error}",
                    self.path.display()
                ))
            }
        }
    }

    /// Opens the file for writing if it is not open, and decides whether the next commit
    /// must rewrite it whole.
    fn ensure_open(&mut self) -> Result<(), String> {
        if self.db.is_some() && identity(&self.path) != self.identity {
            // Deleted or replaced under us: writing on would go to a file nobody reads.
            tracing::warn!(path = %self.path.display(), "the state file was deleted or replaced while in use; writing it anew");
            self.db = None;
        }
        if self.db.is_some() {
            return Ok(());
        }
        let shown = self.path.display().to_string();
        match fs::metadata(&self.path) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                self.create()
                    .map_err(|error| format!("cannot create the state file {shown}: {error}"))?;
                return Ok(());
            }
            Err(error) => return Err(format!("cannot reach the state file {shown}: {error}")),
            Ok(_) => {}
        }
        let db = guarded(false, || open_file(&self.path)).map_err(|error| match error {
            OpenError::Locked => format!("the state file {shown} is in use by another process"),
            OpenError::Io(error) => format!("cannot open the state file {shown}: {error}"),
            OpenError::Damaged(detail) => {
                format!("the state file {shown} is damaged ({detail}); it is left as it is")
            }
        })?;
        let found = guarded(false, || read_mark(&db, &self.tenant_id)).map_err(|error| {
            format!(
                "the state file {shown} no longer holds this exporter's state ({}); it is left as it is",
                error.describe()
            )
        })?;
        self.rewrite = found != Some(self.expected);
        self.db = Some(db);
        self.identity = identity(&self.path);
        Ok(())
    }

    /// Creates the file at start; if that fails the exporter runs on and retries later.
    fn create_at_start(&mut self) {
        match self.create() {
            Ok(()) => tracing::info!(path = %self.path.display(), "state file created"),
            Err(error) => self.failed(&format!(
                "cannot create the state file {}: {error}",
                self.path.display()
            )),
        }
    }

    /// Creates an empty state file. It is built under a temporary name and renamed into
    /// place, so that a crash never leaves a half-initialised file at the path.
    fn create(&mut self) -> io::Result<()> {
        let directory = match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&directory)?;
        let mut temporary = self.path.clone().into_os_string();
        temporary.push(".new");
        let temporary = PathBuf::from(temporary);
        match fs::remove_file(&temporary) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
        let db = builder().create(&temporary).map_err(io::Error::other)?;
        let initialised = (|| -> DbResult<()> {
            let txn = db.begin_write().db()?;
            txn.open_table(ROWS).db()?;
            write_meta(&txn, &self.tenant_id, &Summary::empty())?;
            txn.commit().db()
        })();
        if let Err(error) = initialised {
            drop(db);
            let _ = fs::remove_file(&temporary);
            return Err(io::Error::other(error));
        }
        if let Err(error) = fs::rename(&temporary, &self.path) {
            drop(db);
            let _ = fs::remove_file(&temporary);
            return Err(error);
        }
        // The rename is durable only once the directory is.
        fs::File::open(&directory)?.sync_all()?;
        self.db = Some(db);
        self.identity = identity(&self.path);
        self.expected = Mark::default();
        self.rewrite = true;
        Ok(())
    }

    fn write(
        &mut self,
        rows: &[(Vec<u8>, Option<i64>)],
        aggregates: SavedAggregates,
        progress: &Progress,
    ) -> DbResult<Mark> {
        let db = self
            .db
            .as_ref()
            .ok_or_else(|| Box::new(io::Error::other("the state file is not open").into()))?;
        let mut txn = db.begin_write().db()?;
        txn.set_durability(Durability::Immediate);
        let mut mark = self.expected;
        if self.rewrite {
            txn.delete_table(ROWS).db()?;
            mark.rows = 0;
            mark.digest = 0;
        }
        {
            let mut table = txn.open_table(ROWS).db()?;
            for (key, until) in rows {
                let old = match until {
                    Some(until) => table
                        .insert(key.as_slice(), *until)
                        .db()?
                        .map(|v| v.value()),
                    None => table.remove(key.as_slice()).db()?.map(|v| v.value()),
                };
                if let Some(old) = old {
                    mark.rows = mark.rows.saturating_sub(1);
                    mark.digest = mark.digest.wrapping_sub(row_digest(key, old));
                }
                if let Some(until) = until {
                    mark.rows += 1;
                    mark.digest = mark.digest.wrapping_add(row_digest(key, *until));
                }
            }
        }
        mark.commits += 1;
        let summary = Summary {
            commits: mark.commits,
            rows: mark.rows,
            rows_digest: mark.digest,
            saved_at_micros: Utc::now().timestamp_micros(),
            progress: SavedProgress::from(progress),
            aggregates,
        };
        write_meta(&txn, &self.tenant_id, &summary)?;
        // Marks the start of the disk writes, for the tests that SIGKILL in the middle.
        tracing::debug!(rows = rows.len(), "state commit writing to disk");
        txn.commit().db()?;
        Ok(mark)
    }

    fn failed(&self, error: &str) {
        self.failed_with_pending(error, 0);
    }

    fn failed_with_pending(&self, error: &str, pending: usize) {
        self.write_errors.inc();
        let attempts = self.status.failed(error.to_owned(), pending);
        tracing::error!(
            %error,
            failed_attempts = attempts,
            unsaved_changes = pending,
            "cannot save the state; polling and serving go on with the state in memory and the next poll tries again. Make the file and its directory writable or free disk space: until then a restart loses what was counted since the last save"
        );
    }

    /// Forgets the open database, as after a failed write: the next commit reopens the
    /// file and checks what it holds first.
    #[cfg(test)]
    fn close(&mut self) {
        self.db = None;
    }
}

impl Drop for StateStore {
    fn drop(&mut self) {
        // Closing cleanly saves the next start a recovery pass; redb does it on drop.
        if self.db.take().is_some() {
            tracing::debug!(path = %self.path.display(), "state file closed");
        }
    }
}

impl OpenError {
    fn at(self, path: &str) -> StateError {
        let path = path.to_owned();
        match self {
            OpenError::Locked => StateError::InUse { path },
            OpenError::Io(error) => StateError::Unreadable {
                path,
                reason: error.to_string(),
            },
            OpenError::Damaged(detail) => StateError::Corrupted { path, detail },
        }
    }
}

impl LoadError {
    fn at(self, path: &str, configured: &str) -> StateError {
        let path = path.to_owned();
        match self {
            LoadError::WrongFormat(detail) => StateError::WrongFormat { path, detail },
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
            LoadError::Damaged(detail) => StateError::Corrupted { path, detail },
        }
    }

    fn describe(&self) -> String {
        match self {
            LoadError::WrongFormat(detail) | LoadError::Damaged(detail) => detail.clone(),
            LoadError::Newer { found, written_by } => {
                format!("written by {written_by} in state format {found}")
            }
            LoadError::OtherTenant(saved) => format!("it belongs to tenant {saved}"),
        }
    }
}

/// Device and inode of a file, where the platform has them.
type FileIdentity = (u64, u64);

fn identity(path: &Path) -> Option<FileIdentity> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        fs::metadata(path).ok().map(|_| (0, 0))
    }
}

/// redb's errors are large; boxed, they keep `Result`s small.
type DbResult<T> = Result<T, Box<redb::Error>>;

trait IntoDbResult<T> {
    fn db(self) -> DbResult<T>;
}

impl<T, E: Into<redb::Error>> IntoDbResult<T> for Result<T, E> {
    fn db(self) -> DbResult<T> {
        self.map_err(|e| Box::new(e.into()))
    }
}

fn builder() -> redb::Builder {
    let mut builder = Database::builder();
    builder.set_cache_size(CACHE_BYTES);
    // The format redb 3 and later read too.
    builder.create_with_file_format_v3(true);
    builder
}

fn open_file(path: &Path) -> Result<Database, OpenError> {
    builder().open(path).map_err(open_error)
}

/// Opens an in-memory copy of a file that refuses writes: redb opens files for writing.
fn open_copy(path: &Path) -> Result<Database, OpenError> {
    let bytes = fs::read(path).map_err(OpenError::Io)?;
    let backend = redb::backends::InMemoryBackend::new();
    backend
        .set_len(bytes.len() as u64)
        .and_then(|()| backend.write(0, &bytes))
        .map_err(OpenError::Io)?;
    builder().create_with_backend(backend).map_err(open_error)
}

fn open_error(error: DatabaseError) -> OpenError {
    match error {
        DatabaseError::DatabaseAlreadyOpen => OpenError::Locked,
        DatabaseError::Storage(StorageError::Io(error))
            if error.kind() != io::ErrorKind::InvalidData =>
        {
            OpenError::Io(error)
        }
        DatabaseError::Storage(StorageError::PreviousIo) => {
            OpenError::Io(io::Error::other("an earlier I/O error"))
        }
        other => OpenError::Damaged(other.to_string()),
    }
}

/// Whether an I/O error means the file may be read but not written. A full disk or quota
/// belongs here too: redb writes while opening a file after an unclean stop (its recovery
/// flag, a repair commit), and an exporter that could not start then would lose more
/// than one that counts in memory until the disk has room.
fn refuses_writes(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::PermissionDenied
            | io::ErrorKind::ReadOnlyFilesystem
            | io::ErrorKind::StorageFull
            | io::ErrorKind::QuotaExceeded
            | io::ErrorKind::FileTooLarge
    )
}

/// Checks the first bytes before handing a file to redb, so that another program's file
/// is named as such rather than reported as damage.
fn sniff(path: &Path, shown: &str) -> Result<(), StateError> {
    let mut head = Vec::with_capacity(64);
    fs::File::open(path)
        .and_then(|file| file.take(64).read_to_end(&mut head))
        .map_err(|error| StateError::Unreadable {
            path: shown.to_owned(),
            reason: error.to_string(),
        })?;
    if head.starts_with(&REDB_MAGIC) {
        return Ok(());
    }
    let what = if head.starts_with(b"SQLite format 3\0") {
        "it is an SQLite database"
    } else if head
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        "it is a text file"
    } else {
        "it does not start like a redb database"
    };
    Err(StateError::WrongFormat {
        path: shown.to_owned(),
        detail: what.to_owned(),
    })
}

/// At start, runs `f` turning a panic into damage (see [`guarded`]), holding back the
/// default panic message so that the refusal reads cleanly. Only while nothing else runs:
/// the panic hook is global.
fn quietly<T, E: From<String>>(f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    guarded(true, f)
}

/// Runs `f`, turning a panic into damage: redb may panic on a file crafted or damaged
/// badly enough, and a bad file must not take the exporter down.
fn guarded<T, E: From<String>>(silent: bool, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    // One swap of the global hook at a time, so that each puts back what it found.
    static SWAPPING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _swapping = silent.then(|| SWAPPING.lock().unwrap_or_else(|e| e.into_inner()));
    let hook = silent.then(|| {
        let hook = panic::take_hook();
        panic::set_hook(Box::new(|_| {}));
        hook
    });
    let outcome = panic::catch_unwind(AssertUnwindSafe(f));
    if let Some(hook) = hook {
        panic::set_hook(hook);
    }
    match outcome {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unreadable structure".to_owned());
            Err(E::from(format!(
                "the storage library gave up on it: {message}"
            )))
        }
    }
}

impl From<String> for OpenError {
    fn from(detail: String) -> Self {
        OpenError::Damaged(detail)
    }
}

impl From<String> for LoadError {
    fn from(detail: String) -> Self {
        LoadError::Damaged(detail)
    }
}

/// Deletes the file for `--state.reset`, unless another exporter has it open.
fn reset(path: &Path) -> Result<(), StateError> {
    let shown = path.display().to_string();
    match fs::metadata(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => {
            return Err(StateError::Reset {
                path: shown,
                reason: error.to_string(),
            })
        }
        Ok(_) => {}
    }
    if let Err(OpenError::Locked) = quietly(|| open_file(path)) {
        return Err(StateError::InUse { path: shown });
    }
    fs::remove_file(path).map_err(|error| StateError::Reset {
        path: shown.clone(),
        reason: error.to_string(),
    })?;
    tracing::warn!(
        path = %shown,
        "--state.reset: the saved state was deleted; counters restart at zero and the first poll is a new baseline. Remove --state.reset so that the next restart resumes instead"
    );
    Ok(())
}

/// Reads and checks everything a file holds. `None` for a database without tables (an
/// empty file just initialised).
fn load(db: &Database, tenant_id: &str) -> Result<Option<Saved>, LoadError> {
    let damaged = |e: &dyn std::fmt::Display| LoadError::Damaged(e.to_string());
    let txn = db.begin_read().map_err(|e| damaged(&e))?;
    let Some((summary, written_by)) = read_meta(&txn, tenant_id)? else {
        return Ok(None);
    };
    let mut remembered = HashMap::with_capacity(summary.rows.min(10_000_000) as usize);
    let mut found = Mark {
        commits: summary.commits,
        ..Mark::default()
    };
    match txn.open_table(ROWS) {
        Ok(table) => {
            for entry in table.iter().map_err(|e| damaged(&e))? {
                let (key, until) = entry.map_err(|e| damaged(&e))?;
                let (key, until) = (key.value(), until.value());
                let row = decode_key(key)
                    .ok_or_else(|| LoadError::Damaged("a remembered id is malformed".into()))?;
                found.rows += 1;
                found.digest = found.digest.wrapping_add(row_digest(key, until));
                remembered.insert(row, until);
            }
        }
        Err(TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(damaged(&e)),
    }
    if found.rows != summary.rows || found.digest != summary.rows_digest {
        return Err(LoadError::Damaged(format!(
            "it holds {} remembered ids where its last commit wrote {}, or their digest differs",
            found.rows, summary.rows
        )));
    }
    let aggregates = summary.aggregates.into_aggregates()?;
    let progress = summary.progress.into_progress()?;
    let saved_at = DateTime::from_timestamp_micros(summary.saved_at_micros)
        .ok_or_else(|| LoadError::Damaged("its save time is out of range".into()))?;
    Ok(Some(Saved {
        remembered,
        aggregates,
        progress,
        written_by,
        saved_at,
        mark: found,
    }))
}

/// What a file holds, checked as at start, without reading every id (for reopening after
/// a failed write).
fn read_mark(db: &Database, tenant_id: &str) -> Result<Option<Mark>, LoadError> {
    let txn = db
        .begin_read()
        .map_err(|e| LoadError::Damaged(e.to_string()))?;
    let Some((summary, _)) = read_meta(&txn, tenant_id)? else {
        return Ok(None);
    };
    let rows = match txn.open_table(ROWS) {
        Ok(table) => table.len().map_err(|e| LoadError::Damaged(e.to_string()))?,
        Err(_) => 0,
    };
    // Counting is cheap; the digest of every id is checked at the next start.
    Ok(Some(Mark {
        commits: summary.commits,
        rows,
        digest: summary.rows_digest,
    }))
}

/// The meta table's checks, and the summary with the version that wrote it.
fn read_meta(
    txn: &redb::ReadTransaction,
    tenant_id: &str,
) -> Result<Option<(Summary, String)>, LoadError> {
    let damaged = |e: &dyn std::fmt::Display| LoadError::Damaged(e.to_string());
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        Err(TableError::TableDoesNotExist(_)) => {
            let empty = txn.list_tables().map_err(|e| damaged(&e))?.next().is_none();
            return if empty {
                Ok(None)
            } else {
                Err(LoadError::WrongFormat(
                    "it is a redb database without this exporter's tables".into(),
                ))
            };
        }
        Err(TableError::TableTypeMismatch { .. }) => {
            return Err(LoadError::WrongFormat(
                "it is a redb database whose tables are not this exporter's".into(),
            ))
        }
        Err(e) => return Err(damaged(&e)),
    };
    let get = |key: &str| -> Result<Option<Vec<u8>>, LoadError> {
        meta.get(key)
            .map(|value| value.map(|v| v.value().to_vec()))
            .map_err(|e| damaged(&e))
    };
    if get("format")?.as_deref() != Some(FORMAT_MARK) {
        return Err(LoadError::WrongFormat(
            "it is a redb database, but not one this exporter wrote".into(),
        ));
    }
    let written_by = get("written_by")?
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_else(|| "an unknown version".to_owned());
    let version = get("format_version")?
        .and_then(|v| <[u8; 4]>::try_from(v.as_slice()).ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| LoadError::Damaged("its format version is missing".into()))?;
    if version > FORMAT_VERSION {
        return Err(LoadError::Newer {
            found: version,
            written_by,
        });
    }
    if version == 0 {
        return Err(LoadError::Damaged("its format version is 0".into()));
    }
    let saved_tenant = get("tenant_id")?
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_default();
    // A managed identity's tenant is its own and unknown before its first token, so it is
    // recorded as "(…)" and matches any tenant: switching a deployment between a managed
    // identity and a secret or certificate must not cost the saved counters.
    let unknown = |tenant: &str| tenant.starts_with('(');
    if saved_tenant != tenant_id && !unknown(&saved_tenant) && !unknown(tenant_id) {
        return Err(LoadError::OtherTenant(saved_tenant));
    }
    let record = get("summary")?.ok_or_else(|| LoadError::Damaged("no summary".into()))?;
    Ok(Some((Summary::decode(&record)?, written_by)))
}

fn write_meta(txn: &redb::WriteTransaction, tenant_id: &str, summary: &Summary) -> DbResult<()> {
    let mut meta = txn.open_table(META).db()?;
    meta.insert("format", FORMAT_MARK).db()?;
    meta.insert("format_version", FORMAT_VERSION.to_le_bytes().as_slice())
        .db()?;
    let written_by = concat!("teams-voice-exporter ", env!("CARGO_PKG_VERSION"));
    meta.insert("written_by", written_by.as_bytes()).db()?;
    meta.insert("tenant_id", tenant_id.as_bytes()).db()?;
    meta.insert("summary", summary.encode().as_slice()).db()?;
    Ok(())
}

/// A remembered id as stored: a tag byte, then the GUID's 16 bytes, the text, or the
/// content hash.
pub fn encode_key(key: &RowKey) -> Vec<u8> {
    match key {
        RowKey::Guid(bytes) => [&[1u8][..], bytes].concat(),
        RowKey::Text(text) => [&[2u8][..], text.as_bytes()].concat(),
        RowKey::ContentHash(hash) => [&[3u8][..], &hash.to_be_bytes()].concat(),
    }
}

pub fn decode_key(bytes: &[u8]) -> Option<RowKey> {
    let (tag, rest) = bytes.split_first()?;
    match tag {
        1 => Some(RowKey::Guid(rest.try_into().ok()?)),
        2 => Some(RowKey::Text(std::str::from_utf8(rest).ok()?.into())),
        3 => Some(RowKey::ContentHash(u64::from_be_bytes(
            rest.try_into().ok()?,
        ))),
        _ => None,
    }
}

/// One id's share of the digest; the digest is the wrapping sum over all ids, so it can
/// be kept up to date insert by insert and recomputed in any order.
fn row_digest(key: &[u8], until: i64) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(key, until as u64)
}

/// The aggregates and resume point, with the count and digest of the ids they go with.
/// Stored as postcard, behind its own XXH3 checksum.
#[derive(Debug, Serialize, Deserialize)]
struct Summary {
    commits: u64,
    rows: u64,
    rows_digest: u64,
    saved_at_micros: i64,
    progress: SavedProgress,
    aggregates: SavedAggregates,
}

impl Summary {
    fn empty() -> Self {
        Summary {
            commits: 0,
            rows: 0,
            rows_digest: 0,
            saved_at_micros: Utc::now().timestamp_micros(),
            progress: SavedProgress::from(&Progress::default()),
            aggregates: SavedAggregates::from(&Aggregates::default()),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let payload = postcard::to_allocvec(self).expect("plain data always serialises");
        let checksum = xxhash_rust::xxh3::xxh3_64(&payload);
        [&checksum.to_le_bytes()[..], &payload].concat()
    }

    fn decode(record: &[u8]) -> Result<Self, LoadError> {
        let damaged = |what: &str| LoadError::Damaged(format!("its summary {what}"));
        if record.len() < 8 {
            return Err(damaged("is truncated"));
        }
        let (checksum, payload) = record.split_at(8);
        let checksum = u64::from_le_bytes(checksum.try_into().expect("eight bytes"));
        if checksum != xxhash_rust::xxh3::xxh3_64(payload) {
            return Err(damaged("fails its checksum"));
        }
        postcard::from_bytes(payload).map_err(|_| damaged("cannot be decoded"))
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedProgress {
    baseline_done: bool,
    last_sweep: Option<i64>,
    covered_until: Option<i64>,
    forgotten_before: Option<i64>,
    sweep_failed: bool,
}

impl From<&Progress> for SavedProgress {
    fn from(p: &Progress) -> Self {
        let micros = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp_micros());
        SavedProgress {
            baseline_done: p.baseline_done,
            last_sweep: micros(p.last_sweep),
            covered_until: micros(p.covered_until),
            forgotten_before: micros(p.forgotten_before),
            sweep_failed: p.sweep_failed,
        }
    }
}

impl SavedProgress {
    fn into_progress(self) -> Result<Progress, LoadError> {
        let time = |t: Option<i64>| -> Result<Option<DateTime<Utc>>, LoadError> {
            t.map(|m| {
                DateTime::from_timestamp_micros(m)
                    .ok_or_else(|| LoadError::Damaged("a saved time is out of range".into()))
            })
            .transpose()
        };
        Ok(Progress {
            baseline_done: self.baseline_done,
            last_sweep: time(self.last_sweep)?,
            covered_until: time(self.covered_until)?,
            forgotten_before: time(self.forgotten_before)?,
            sweep_failed: self.sweep_failed,
            ..Progress::default()
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedCall {
    trunk_fqdn: String,
    call_type: String,
    final_sip_code: String,
    successful: Option<bool>,
    media_path_location: String,
    count: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedFailure {
    trunk_fqdn: String,
    final_sip_code: String,
    call_end_sub_reason: String,
    count: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedHistogram {
    trunk_fqdn: String,
    call_type: String,
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

/// Every aggregate, with the histogram bounds they were counted with, so that a later
/// version that changes a bound can tell (and this one refuses such a file).
#[derive(Debug, Serialize, Deserialize)]
struct SavedAggregates {
    calls: Vec<SavedCall>,
    failures: Vec<SavedFailure>,
    duration_bounds: Vec<f64>,
    duration: Vec<SavedHistogram>,
    setup_bounds: Vec<f64>,
    setup: Vec<SavedHistogram>,
    arrival_delay_bounds: Vec<f64>,
    arrival_delay: SavedHistogram,
    rows_ingested: u64,
    rows_invalid: u64,
}

fn save_histogram(key: Option<&TrunkTypeKey>, h: &Histogram) -> SavedHistogram {
    SavedHistogram {
        trunk_fqdn: key.map(|k| k.trunk_fqdn.clone()).unwrap_or_default(),
        call_type: key.map(|k| k.call_type.clone()).unwrap_or_default(),
        buckets: h.buckets.clone(),
        sum: h.sum,
        count: h.count,
    }
}

impl From<&Aggregates> for SavedAggregates {
    fn from(a: &Aggregates) -> Self {
        SavedAggregates {
            calls: a
                .calls
                .iter()
                .map(|(k, count)| SavedCall {
                    trunk_fqdn: k.trunk_fqdn.clone(),
                    call_type: k.call_type.clone(),
                    final_sip_code: k.final_sip_code.clone(),
                    successful: match k.successful {
                        "true" => Some(true),
                        "false" => Some(false),
                        _ => None,
                    },
                    media_path_location: k.media_path_location.clone(),
                    count: *count,
                })
                .collect(),
            failures: a
                .failures
                .iter()
                .map(|(k, count)| SavedFailure {
                    trunk_fqdn: k.trunk_fqdn.clone(),
                    final_sip_code: k.final_sip_code.clone(),
                    call_end_sub_reason: k.call_end_sub_reason.clone(),
                    count: *count,
                })
                .collect(),
            duration_bounds: DURATION_BUCKETS.to_vec(),
            duration: a
                .duration
                .iter()
                .map(|(k, h)| save_histogram(Some(k), h))
                .collect(),
            setup_bounds: SETUP_BUCKETS.to_vec(),
            setup: a
                .setup
                .iter()
                .map(|(k, h)| save_histogram(Some(k), h))
                .collect(),
            arrival_delay_bounds: ARRIVAL_DELAY_BUCKETS.to_vec(),
            arrival_delay: save_histogram(None, &a.arrival_delay),
            rows_ingested: a.rows_ingested,
            rows_invalid: a.rows_invalid,
        }
    }
}

impl SavedAggregates {
    fn into_aggregates(self) -> Result<Aggregates, LoadError> {
        let damaged = |what: String| LoadError::Damaged(what);
        for (name, saved, ours) in [
            ("duration", &self.duration_bounds, DURATION_BUCKETS),
            ("setup", &self.setup_bounds, SETUP_BUCKETS),
            (
                "arrival delay",
                &self.arrival_delay_bounds,
                ARRIVAL_DELAY_BUCKETS,
            ),
        ] {
            if saved.as_slice() != ours {
                return Err(damaged(format!(
                    "its {name} histogram has other buckets than this version's"
                )));
            }
        }
        let histogram = |h: SavedHistogram, bounds: &[f64]| -> Result<Histogram, LoadError> {
            if h.buckets.len() != bounds.len() + 1
                || h.buckets.iter().sum::<u64>() != h.count
                || !h.sum.is_finite()
            {
                return Err(damaged("a histogram does not add up".into()));
            }
            Ok(Histogram {
                buckets: h.buckets,
                sum: h.sum,
                count: h.count,
            })
        };
        let mut a = Aggregates::default();
        for c in self.calls {
            let key = CallKey {
                trunk_fqdn: c.trunk_fqdn,
                call_type: c.call_type,
                final_sip_code: c.final_sip_code,
                successful: match c.successful {
                    Some(true) => "true",
                    Some(false) => "false",
                    None => UNKNOWN,
                },
                media_path_location: c.media_path_location,
            };
            if a.calls.insert(key, c.count).is_some() {
                return Err(damaged("a call series is saved twice".into()));
            }
        }
        for f in self.failures {
            let key = FailureKey {
                trunk_fqdn: f.trunk_fqdn,
                final_sip_code: f.final_sip_code,
                call_end_sub_reason: f.call_end_sub_reason,
            };
            if a.failures.insert(key, f.count).is_some() {
                return Err(damaged("a failure series is saved twice".into()));
            }
        }
        for (saved, bounds, target) in [
            (self.duration, DURATION_BUCKETS, &mut a.duration),
            (self.setup, SETUP_BUCKETS, &mut a.setup),
        ] {
            for h in saved {
                let key = TrunkTypeKey {
                    trunk_fqdn: h.trunk_fqdn.clone(),
                    call_type: h.call_type.clone(),
                };
                if target.insert(key, histogram(h, bounds)?).is_some() {
                    return Err(damaged("a histogram series is saved twice".into()));
                }
            }
        }
        a.arrival_delay = histogram(self.arrival_delay, ARRIVAL_DELAY_BUCKETS)?;
        a.rows_ingested = self.rows_ingested;
        a.rows_invalid = self.rows_invalid;
        Ok(a)
    }
}

#[cfg(test)]
mod tests;
