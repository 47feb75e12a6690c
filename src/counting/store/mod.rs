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
//!
//! The work is split by role: `open` gets hold of the file at start and after a failure,
//! `load` reads and verifies it, `saved` is the serialized form of what it holds, `status`
//! what the landing page shows, and `error` what can go wrong, in the words the user
//! reads. This module holds the public entry points and the commit loop.
//!
//! One file holds the state of one source: one tenant (`meta["tenant_id"]`) and one
//! call-log function (`meta["function"]`), with one rows table, one summary and one resume
//! point. A process that reads several functions keeps one file per source, named after
//! `--state.path` ([`StateOptions::path_for`]): each source's commit stays one transaction
//! of its own file, so its ids, aggregates and resume point agree whatever the other
//! sources do, and a damaged file costs one source, not all. Direct Routing keeps the path
//! as given, so files written before other functions existed are still found.
//!
//! Format version 2 added `meta["function"]` and Direct Routing's calls by country; a
//! version 1 file reads as the Direct Routing source of its tenant, through the function's
//! [`CallLog::SavedV1`], and is written as version 2 by its first commit.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use parking_lot::Mutex;
use prometheus::IntCounter;
use redb::{Database, Durability, TableDefinition};

// The one line in store/ that names where `Progress` lives: the submodules take it from here.
use crate::counting::schedule::Progress;
use crate::counting::state::{Aggregates, TenantState};
use crate::source::{CallLog, EstablishedCall, Function};

mod error;
mod load;
mod open;
mod saved;
mod status;

pub use error::StateError;
pub use load::Saved;
pub use open::saved_progress;
pub use saved::{decode_key, encode_key};
pub use status::{StoreHealth, StoreProblem, StoreStatus};

use error::{DbResult, IntoDbResult, SaveError};
use load::{read_mark, write_meta, Mark};
use open::{guarded, identity, open_file, FileIdentity};
use saved::{row_digest, SavedAggregates, SavedProgress, Summary};

/// Small keys about the file and one record with the aggregates and resume point.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Remembered row id (see [`encode_key`]) → Unix second until which it is remembered.
const ROWS: TableDefinition<&[u8], i64> = TableDefinition::new("rows");

/// `meta["format"]`: says the file is ours, whatever version wrote it.
const FORMAT_MARK: &[u8] = b"teams-voice-exporter state";
/// `meta["format_version"]`: raised whenever a change would mislead an older reader.
pub const FORMAT_VERSION: u32 = 2;
/// Page cache of one database. A commit touches a few dozen pages and the operating system
/// caches the file anyway: with 8 MiB instead of the whole file (16 MiB at 300,000 ids),
/// commits took as long (the fsync dominates) and the exporter stays 16 MiB smaller
/// (BENCHMARKS.md, "Memory").
const CACHE_BYTES: usize = 8 * 1024 * 1024;
/// What the state files of every tenant may cache together: one file per tenant and
/// call-log function, each with [`CACHE_BYTES`], would be gigabytes at hundreds of tenants
/// whose files are a megabyte or two each (BENCHMARKS.md, "Many tenants").
const CACHE_BYTES_ALL_FILES: usize = 64 * 1024 * 1024;
/// The least cache a file gets however many there are: a commit's few dozen pages.
const CACHE_BYTES_LEAST: usize = 256 * 1024;

static FILE_CACHE_BYTES: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(CACHE_BYTES);

/// Shares the cache of state files among `files` of them (one per tenant and call-log
/// function): each opened from now on caches at most its share of
/// `CACHE_BYTES_ALL_FILES`, between 256 KiB and 8 MiB.
pub fn share_cache_among(files: usize) {
    let share = (CACHE_BYTES_ALL_FILES / files.max(1)).clamp(CACHE_BYTES_LEAST, CACHE_BYTES);
    FILE_CACHE_BYTES.store(share, std::sync::atomic::Ordering::Relaxed);
}

fn file_cache_bytes() -> usize {
    FILE_CACHE_BYTES.load(std::sync::atomic::Ordering::Relaxed)
}

/// How `--state.path` is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateOptions {
    pub path: PathBuf,
    /// `--state.reset`: delete what is saved and start afresh.
    pub reset: bool,
}

impl StateOptions {
    /// The state file of `function`'s source. Direct Routing's is `--state.path` itself
    /// (the only file before other functions were read); another function's sits beside it
    /// with the function's short name before the extension: `state.redb` keeps Direct
    /// Routing, `state.pstn.redb` PSTN calls.
    pub fn path_for(&self, function: Function) -> PathBuf {
        if function == Function::DirectRoutingCalls {
            return self.path.clone();
        }
        let mut name = self.stem();
        name.push(".");
        name.push(function.short_name());
        if let Some(extension) = self.path.extension() {
            name.push(".");
            name.push(extension);
        }
        self.path.with_file_name(name)
    }

    /// The options of one tenant of a tenants file: its files sit beside `--state.path`
    /// with the tenant's key before the extension (`state.tenant-contoso.com.redb`, and
    /// `state.tenant-contoso.com.pstn.redb` for PSTN calls), so that each tenant's state is
    /// its own and goes with it.
    pub fn for_tenant(&self, tenant_id: &str) -> StateOptions {
        let mut name = self.stem();
        name.push(".");
        name.push(TENANT_FILE_PREFIX);
        name.push(tenant_file_key(tenant_id));
        if let Some(extension) = self.path.extension() {
            name.push(".");
            name.push(extension);
        }
        StateOptions {
            path: self.path.with_file_name(name),
            reset: self.reset,
        }
    }

    fn stem(&self) -> std::ffi::OsString {
        self.path
            .file_stem()
            .map_or_else(|| "state".into(), |s| s.to_os_string())
    }

    /// The tenant keys of the tenants' files beside `--state.path` (see
    /// [`StateOptions::for_tenant`]), each with its files.
    pub fn tenant_files(&self) -> std::io::Result<Vec<(String, PathBuf)>> {
        let directory = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut prefix = self.stem().to_string_lossy().into_owned();
        prefix.push('.');
        prefix.push_str(TENANT_FILE_PREFIX);
        let suffix = self
            .path
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&directory)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(&prefix) else {
                continue;
            };
            let Some(rest) = rest.strip_suffix(&suffix) else {
                continue;
            };
            let key = Function::ALL
                .iter()
                .filter(|f| **f != Function::DirectRoutingCalls)
                .map(|f| f.short_name())
                .chain([CALL_QUALITY_FILE])
                .find_map(|name| rest.strip_suffix(&format!(".{name}")))
                .unwrap_or(rest);
            found.push((key.to_owned(), entry.path()));
        }
        Ok(found)
    }

    /// These options for the state file of `function`'s source.
    fn for_function(&self, function: Function) -> StateOptions {
        StateOptions {
            path: self.path_for(function),
            reset: self.reset,
        }
    }
}

/// Between the stem and the extension of the call-quality collector's file beside each
/// Direct Routing state file (`state.call-quality.redb`): a tenant's file like the others.
pub const CALL_QUALITY_FILE: &str = "call-quality";

/// Before the tenant's key in its state files' names.
const TENANT_FILE_PREFIX: &str = "tenant-";

/// A tenant id as a file name: tenant ids are GUIDs or domain names, compared without
/// case; anything else a file name cannot hold becomes `_`.
pub fn tenant_file_key(tenant_id: &str) -> String {
    tenant_id
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-') => c,
            '.' => '.',
            _ => '_',
        })
        .collect()
}

/// Who must hold the established calls that a commit's rows counted before the commit
/// saves those rows: the call-quality collector, whose pending call records must not be
/// lost by a crash after their rows were saved (a row saved is never counted again).
pub trait EstablishedCalls: Send + Sync {
    /// Takes `calls` and makes every call taken so far durable; `Err` says why it could not,
    /// and the commit then waits for the next attempt (the calls are kept meanwhile).
    fn hold(&self, calls: Vec<EstablishedCall>) -> Result<(), String>;
}

/// The exporter's state as it starts.
pub struct Restored<L: CallLog> {
    pub state: TenantState<L>,
    pub progress: Progress,
    /// `None` without `--state.path`.
    pub store: Option<StateStore<L>>,
    pub status: Option<Arc<StoreStatus>>,
}

/// Opens `--state.path` (if given) and restores what it holds. Without it, the state lives
/// in memory only.
pub fn restore<L: CallLog>(
    options: Option<&StateOptions>,
    tenant_id: &str,
    write_errors: IntCounter,
) -> Result<Restored<L>, StateError> {
    let Some(options) = options else {
        return Ok(Restored {
            state: TenantState::new(),
            progress: Progress::default(),
            store: None,
            status: None,
        });
    };
    let options = &options.for_function(L::FUNCTION);
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
                first_start_done = saved.progress.first_start_done,
                endpoint = L::FUNCTION.name(),
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

/// The state file of one source (a tenant's calls of the function `L`), open for commits.
pub struct StateStore<L: CallLog> {
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
    function: PhantomData<L>,
}

impl<L: CallLog> StateStore<L> {
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
    pub fn commit(&mut self, state: &Mutex<TenantState<L>>, progress: &Progress) -> Option<usize> {
        self.commit_holding(state, progress, None)
    }

    /// [`StateStore::commit`], handing the established calls counted since the last commit
    /// to `holder` first: the rows are saved only once it holds their calls durably.
    pub fn commit_holding(
        &mut self,
        state: &Mutex<TenantState<L>>,
        progress: &Progress,
        holder: Option<&dyn EstablishedCalls>,
    ) -> Option<usize> {
        let started = Instant::now();
        tracing::debug!(path = %self.path.display(), "state commit starting");
        match self.try_commit(state, progress, holder) {
            Ok((written, committed)) => {
                // What the file holds now, not what was counted since: rows another poll
                // counts meanwhile are shown once a commit holds them too, so a crash never
                // takes back what a scrape has seen.
                state.lock().publish_committed(committed);
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
                // Counting goes on in memory while the disk refuses writes.
                state.lock().publish();
                None
            }
        }
    }

    fn try_commit(
        &mut self,
        state: &Mutex<TenantState<L>>,
        progress: &Progress,
        holder: Option<&dyn EstablishedCalls>,
    ) -> Result<(usize, Aggregates<L::Totals>), SaveError> {
        self.ensure_open()?;
        let (changes, rows, aggregates, committed, established) = {
            let mut state = state.lock();
            let changes = state.take_changes();
            let established = state.take_established();
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
            let committed = state.aggregates.clone();
            (
                changes,
                rows,
                SavedAggregates::save::<L>(&state.aggregates),
                committed,
                established,
            )
        };
        if let Some(holder) = holder {
            if let Err(reason) = holder.hold(established) {
                state.lock().return_changes(changes);
                return Err(SaveError::CallsNotHeld {
                    path: self.path.display().to_string(),
                    reason,
                });
            }
        }
        match self.write(&rows, aggregates, progress) {
            Ok(mark) => {
                self.expected = mark;
                self.rewrite = false;
                Ok((rows.len(), committed))
            }
            Err(source) => {
                state.lock().return_changes(changes);
                Err(SaveError::Write {
                    path: self.path.display().to_string(),
                    source,
                })
            }
        }
    }

    /// Opens the file for writing if it is not open, and decides whether the next commit
    /// must rewrite it whole.
    fn ensure_open(&mut self) -> Result<(), SaveError> {
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
                return self.create().map_err(|source| SaveError::Create {
                    path: shown,
                    source,
                });
            }
            Err(source) => {
                return Err(SaveError::Unreachable {
                    path: shown,
                    source,
                })
            }
            Ok(_) => {}
        }
        let db = guarded(false, || open_file(&self.path))
            .map_err(|error| SaveError::reopening(&shown, error))?;
        let found = guarded(false, || read_mark::<L>(&db, &self.tenant_id)).map_err(|source| {
            SaveError::NotOurs {
                path: shown,
                source,
            }
        })?;
        self.rewrite = found != Some(self.expected);
        self.db = Some(db);
        self.identity = identity(&self.path);
        Ok(())
    }

    fn write(
        &mut self,
        rows: &[(Vec<u8>, Option<i64>)],
        aggregates: SavedAggregates<L::Saved>,
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
        write_meta(&txn, &self.tenant_id, L::FUNCTION, &summary)?;
        // Marks the start of the disk writes, for the tests that SIGKILL in the middle.
        tracing::debug!(rows = rows.len(), "state commit writing to disk");
        txn.commit().db()?;
        Ok(mark)
    }

    fn failed(&self, error: &SaveError) {
        self.failed_with_pending(error, 0);
    }

    fn failed_with_pending(&self, error: &SaveError, pending: usize) {
        self.write_errors.inc();
        let attempts = self.status.failed(error.to_string(), pending);
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

impl<L: CallLog> Drop for StateStore<L> {
    fn drop(&mut self) {
        // Closing cleanly saves the next start a recovery pass; redb does it on drop.
        if self.db.take().is_some() {
            tracing::debug!(path = %self.path.display(), "state file closed");
        }
    }
}

#[cfg(test)]
mod tests;
