//! Getting hold of the file: opening it at start (reset, sniffing what the path holds,
//! falling back to a read-only private copy when the disk refuses writes), creating it
//! atomically, and noticing when it is replaced under us.
//!
//! redb panics on some files crafted or damaged badly enough, so every call into it that
//! reads a file we did not just write goes through [`guarded`], which turns the panic into
//! [`Damage`]: a bad file must stop the start with a message, not take the exporter down.

use std::fs;
use std::io::{self, Read};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use prometheus::IntCounter;
use redb::{Database, DatabaseError, StorageBackend, StorageError};

use super::error::{CreateError, Damage, DbResult, Foreign, IntoDbResult, OpenError, SaveError};
use super::load::{load, read_progress, write_meta, Mark, Saved};
use super::saved::Summary;
use super::{file_cache_bytes, Progress, StateError, StateOptions, StateStore, StoreStatus, ROWS};
use crate::source::CallLog;

/// The first bytes of every redb file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

impl<L: CallLog> StateStore<L> {
    /// Opens the state file at start: restores what it holds, or creates it. A file that
    /// cannot be used stops the start; a file or directory that only refuses writes does
    /// not (the state is then kept in memory and written when the disk allows).
    pub fn open(
        options: &StateOptions,
        tenant_id: &str,
        write_errors: IntCounter,
    ) -> Result<(Self, Option<Saved<L>>), StateError> {
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
            function: std::marker::PhantomData,
        };
        if options.reset {
            reset(&path)?;
        }
        if !holds_anything(&path, &shown)? {
            store.create_at_start();
            return Ok((store, None));
        }
        sniff(&path, &shown)?;

        let (db, writable) = match quietly(|| open_file(&path)) {
            Ok(db) => (db, true),
            Err(OpenError::Io(error)) if refuses_writes(&error) => {
                // Restore from a private copy; writes wait until the file is writable.
                let db = quietly(|| open_copy(&path)).map_err(|e| e.at(&shown))?;
                store.failed(&SaveError::NotWritable {
                    path: shown.clone(),
                    source: error,
                });
                (db, false)
            }
            Err(error) => return Err(error.at(&shown)),
        };
        let saved = quietly(|| load::<L>(&db, tenant_id)).map_err(|e| e.at(&shown, tenant_id))?;
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

    /// Creates the file at start; if that fails the exporter runs on and retries later.
    fn create_at_start(&mut self) {
        match self.create() {
            Ok(()) => tracing::info!(path = %self.path.display(), "state file created"),
            Err(source) => self.failed(&SaveError::Create {
                path: self.path.display().to_string(),
                source,
            }),
        }
    }

    /// Creates an empty state file. It is built under a temporary name and renamed into
    /// place, so that a crash never leaves a half-initialised file at the path.
    pub(super) fn create(&mut self) -> Result<(), CreateError> {
        let directory = match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&directory)?;
        let mut temporary = self.path.clone().into_os_string();
        temporary.push(".new");
        let temporary = PathBuf::from(temporary);
        match fs::remove_file(&temporary) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error.into()),
            _ => {}
        }
        let db = builder().create(&temporary)?;
        let initialised = (|| -> DbResult<()> {
            let txn = db.begin_write().db()?;
            txn.open_table(ROWS).db()?;
            write_meta(&txn, &self.tenant_id, L::FUNCTION, &Summary::empty::<L>())?;
            txn.commit().db()
        })();
        if let Err(error) = initialised {
            drop(db);
            let _ = fs::remove_file(&temporary);
            return Err(error.into());
        }
        if let Err(error) = fs::rename(&temporary, &self.path) {
            drop(db);
            let _ = fs::remove_file(&temporary);
            return Err(error.into());
        }
        // The rename is durable only once the directory is.
        fs::File::open(&directory)?.sync_all()?;
        self.db = Some(db);
        self.identity = identity(&self.path);
        self.expected = Mark::default();
        self.rewrite = true;
        Ok(())
    }
}

/// Whether the path holds a file to restore from. A missing or empty file holds nothing
/// to lose (`touch`, or a crash before the first byte): it is initialised afresh.
fn holds_anything(path: &Path, shown: &str) -> Result<bool, StateError> {
    match fs::metadata(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(StateError::Unreadable {
            path: shown.to_owned(),
            reason: error.to_string(),
        }),
        Ok(meta) if meta.is_dir() => Err(StateError::WrongFormat {
            path: shown.to_owned(),
            detail: Foreign::Directory.to_string(),
        }),
        Ok(meta) => Ok(meta.len() > 0),
    }
}

/// The progress saved at `path` for `tenant_id` (`None` when nothing is), read from a private
/// copy: neither the lock of an exporter running on the file nor the file itself is
/// touched, so `backfill` can read where counting began while the exporter runs.
pub fn saved_progress<L: CallLog>(
    path: &Path,
    tenant_id: &str,
) -> Result<Option<Progress>, StateError> {
    let shown = path.display().to_string();
    if !holds_anything(path, &shown)? {
        return Ok(None);
    }
    sniff(path, &shown)?;
    let read = || {
        let db = quietly(|| open_copy(path)).map_err(|e| e.at(&shown))?;
        quietly(|| read_progress::<L>(&db, tenant_id)).map_err(|e| e.at(&shown, tenant_id))
    };
    // A copy taken while the exporter commits may catch half a commit: read it again.
    for _ in 0..2 {
        match read() {
            Err(StateError::Corrupted { .. }) => std::thread::sleep(Duration::from_millis(200)),
            done => return done,
        }
    }
    read()
}

/// Device and inode of a file, where the platform has them.
pub(super) type FileIdentity = (u64, u64);

pub(super) fn identity(path: &Path) -> Option<FileIdentity> {
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

fn builder() -> redb::Builder {
    let mut builder = Database::builder();
    builder.set_cache_size(file_cache_bytes());
    // The format redb 3 and later read too.
    builder.create_with_file_format_v3(true);
    builder
}

pub(super) fn open_file(path: &Path) -> Result<Database, OpenError> {
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

/// Sorts redb's complaint: a lock, an I/O error (which may pass), or damage.
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
        other => OpenError::Damaged(other.into()),
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
        Foreign::Sqlite
    } else if head
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        Foreign::Text
    } else {
        Foreign::NotRedb
    };
    Err(StateError::WrongFormat {
        path: shown.to_owned(),
        detail: what.to_string(),
    })
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
        "--state.reset: the saved state was deleted; counters restart at zero and the next start is a first start (counting begins one recent window back). Remove --state.reset so that the next restart resumes instead"
    );
    Ok(())
}

/// At start, runs `f` turning a panic into damage (see [`guarded`]), holding back the
/// default panic message so that the refusal reads cleanly. Only while nothing else runs:
/// the panic hook is global.
fn quietly<T, E: From<Damage>>(f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    guarded(true, f)
}

/// Runs `f`, turning a panic into [`Damage::Panicked`]: redb may panic on a file crafted
/// or damaged badly enough, and a bad file must not take the exporter down.
pub(super) fn guarded<T, E: From<Damage>>(
    silent: bool,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
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
            Err(E::from(Damage::Panicked(message)))
        }
    }
}
