//! The collector's durable state with `--state.path`: a redb file of its own beside the
//! Direct Routing state file (`state.redb` → `state.call-quality.redb`), holding the
//! pending records, the settled ones and the totals.
//!
//! Exactly once across crashes rests on two orders. A call is saved here as pending before
//! the Direct Routing commit that saves its row (`EstablishedCalls::hold`, called by that
//! commit, which waits if this file refuses the write): a crash between the two loses
//! nothing, since the row is counted again at the next start and the call, found pending,
//! is not queued twice. A record is counted in one transaction that removes it from the
//! pending ones, remembers it as settled and writes the totals; `/metrics` shows totals
//! only once they are written, so a crash takes back nothing a scrape has seen, and a
//! record is counted once.

use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableTable, TableDefinition};

use super::queue::{Pending, Queue};
use super::totals::{QualityTotals, SavedQualityTotals};
use crate::counting::state::RowKey;
use crate::counting::store::{decode_key, encode_key};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Record id → [`Pending`] as JSON.
const PENDING: TableDefinition<&str, &[u8]> = TableDefinition::new("pending");
/// Settled record id (as the rows' ids are kept, `encode_key`) → clock ms until which it
/// is remembered.
const SETTLED: TableDefinition<&[u8], i64> = TableDefinition::new("settled");

const FORMAT_MARK: &[u8] = b"teams-voice-exporter call quality";
const FORMAT_VERSION: &[u8] = b"1";
/// Cache of the file: a commit touches a few pages, and the queue is in memory anyway.
const CACHE_BYTES: usize = 1024 * 1024;

/// Why the collector's state file cannot be used at start.
#[derive(Debug, thiserror::Error)]
pub enum QualityStateError {
    #[error("cannot open the call-quality state file {path}: {message}. Make it and its directory writable, or start afresh with --state.reset (the pending call records are then lost)")]
    Open { path: String, message: String },
    #[error("the call-quality state file {path} is damaged or not ours ({message}); it is left as it is. Move it away, or start afresh with --state.reset (the pending call records are then lost)")]
    Damaged { path: String, message: String },
    #[error("the call-quality state file {path} belongs to tenant {found}, not {expected}; point --state.path elsewhere, or start afresh with --state.reset")]
    OtherTenant {
        path: String,
        found: String,
        expected: String,
    },
}

/// What one transaction writes.
#[derive(Debug, Default)]
pub struct Batch {
    pub pending_put: Vec<(String, Pending)>,
    pub pending_remove: Vec<String>,
    pub settled_put: Vec<(RowKey, i64)>,
    pub settled_remove: Vec<RowKey>,
    pub totals: Option<SavedQualityTotals>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.pending_put.is_empty()
            && self.pending_remove.is_empty()
            && self.settled_put.is_empty()
            && self.settled_remove.is_empty()
            && self.totals.is_none()
    }
}

/// The open file.
pub struct QualityStore {
    path: PathBuf,
    db: Database,
}

/// The collector's file beside `state_file`, the Direct Routing state file of the tenant.
pub fn path_beside(state_file: &Path) -> PathBuf {
    let mut name = state_file
        .file_stem()
        .map_or_else(|| "state".into(), |s| s.to_os_string());
    name.push(".");
    name.push(crate::counting::store::CALL_QUALITY_FILE);
    if let Some(extension) = state_file.extension() {
        name.push(".");
        name.push(extension);
    }
    state_file.with_file_name(name)
}

impl QualityStore {
    /// Opens (or creates) the file at `path` and reads what it holds; with `reset`, deletes
    /// it first.
    pub fn open(
        path: &Path,
        tenant_id: &str,
        reset: bool,
    ) -> Result<(Self, Queue, QualityTotals), QualityStateError> {
        let shown = path.display().to_string();
        let open = |message: String| QualityStateError::Open {
            path: shown.clone(),
            message,
        };
        let damaged = |message: String| QualityStateError::Damaged {
            path: shown.clone(),
            message,
        };
        if reset {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(open(e.to_string()))
                }
                _ => {}
            }
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| open(e.to_string()))?;
        }
        let mut builder = Database::builder();
        builder.set_cache_size(CACHE_BYTES);
        let db = builder.create(path).map_err(|e| match e {
            redb::DatabaseError::Storage(redb::StorageError::Io(io)) => open(io.to_string()),
            other => damaged(other.to_string()),
        })?;
        let store = QualityStore {
            path: path.to_owned(),
            db,
        };
        let (queue, totals) = store.load(tenant_id).map_err(|e| match e {
            Loading::Damaged(message) => damaged(message),
            Loading::OtherTenant(found) => QualityStateError::OtherTenant {
                path: shown.clone(),
                found,
                expected: tenant_id.to_owned(),
            },
        })?;
        Ok((store, queue, totals))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self, tenant_id: &str) -> Result<(Queue, QualityTotals), Loading> {
        let damaged = |e: &dyn std::fmt::Display| Loading::Damaged(e.to_string());
        let txn = self.db.begin_write().map_err(|e| damaged(&e))?;
        let (queue, totals) = {
            let mut meta = txn.open_table(META).map_err(|e| damaged(&e))?;
            let get = |meta: &redb::Table<&str, &[u8]>, key: &str| {
                meta.get(key)
                    .map(|v| v.map(|v| v.value().to_vec()))
                    .map_err(|e| damaged(&e))
            };
            let format = get(&meta, "format")?;
            let version = get(&meta, "format_version")?;
            let found = get(&meta, "tenant_id")?;
            let saved_totals = get(&meta, "totals")?;
            if format.is_none() {
                for (key, value) in [
                    ("format", FORMAT_MARK),
                    ("format_version", FORMAT_VERSION),
                    ("tenant_id", tenant_id.as_bytes()),
                ] {
                    meta.insert(key, value).map_err(|e| damaged(&e))?;
                }
            } else {
                if format.as_deref() != Some(FORMAT_MARK)
                    || version.as_deref() != Some(FORMAT_VERSION)
                {
                    return Err(Loading::Damaged(
                        "not a call-quality state file of this version".into(),
                    ));
                }
                let found = String::from_utf8_lossy(&found.unwrap_or_default()).into_owned();
                if !found.eq_ignore_ascii_case(tenant_id) {
                    return Err(Loading::OtherTenant(found));
                }
            }
            let totals = match saved_totals {
                None => QualityTotals::default(),
                Some(bytes) => serde_json::from_slice::<SavedQualityTotals>(&bytes)
                    .map_err(|e| damaged(&e))?
                    .restore()
                    .map_err(|e| damaged(&e))?,
            };
            let mut queue = Queue::default();
            let pending = txn.open_table(PENDING).map_err(|e| damaged(&e))?;
            for entry in pending.iter().map_err(|e| damaged(&e))? {
                let (id, value) = entry.map_err(|e| damaged(&e))?;
                let value: Pending =
                    serde_json::from_slice(value.value()).map_err(|e| damaged(&e))?;
                queue.pending.insert(id.value().to_owned(), value);
            }
            let settled = txn.open_table(SETTLED).map_err(|e| damaged(&e))?;
            for entry in settled.iter().map_err(|e| damaged(&e))? {
                let (key, until) = entry.map_err(|e| damaged(&e))?;
                let key = decode_key(key.value()).ok_or_else(|| {
                    Loading::Damaged("a settled record id that is not one".into())
                })?;
                queue.settled.insert(key, until.value());
            }
            (queue, totals)
        };
        txn.commit().map_err(|e| damaged(&e))?;
        Ok((queue, totals))
    }

    /// Writes `batch` in one transaction, durable when this returns.
    pub fn write(&self, batch: &Batch) -> Result<(), Box<redb::Error>> {
        fn boxed(error: impl Into<redb::Error>) -> Box<redb::Error> {
            Box::new(error.into())
        }
        let mut txn = self.db.begin_write().map_err(boxed)?;
        txn.set_durability(Durability::Immediate);
        {
            let mut pending = txn.open_table(PENDING).map_err(boxed)?;
            for (id, value) in &batch.pending_put {
                let json = serde_json::to_vec(value).expect("a pending record serializes");
                pending
                    .insert(id.as_str(), json.as_slice())
                    .map_err(boxed)?;
            }
            for id in &batch.pending_remove {
                pending.remove(id.as_str()).map_err(boxed)?;
            }
            let mut settled = txn.open_table(SETTLED).map_err(boxed)?;
            for (key, until) in &batch.settled_put {
                settled
                    .insert(encode_key(key).as_slice(), *until)
                    .map_err(boxed)?;
            }
            for key in &batch.settled_remove {
                settled.remove(encode_key(key).as_slice()).map_err(boxed)?;
            }
            if let Some(totals) = &batch.totals {
                let json = serde_json::to_vec(totals).expect("totals serialize");
                let mut meta = txn.open_table(META).map_err(boxed)?;
                meta.insert("totals", json.as_slice()).map_err(boxed)?;
            }
        }
        txn.commit().map_err(boxed)
    }
}

enum Loading {
    Damaged(String),
    OtherTenant(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_sits_beside_the_direct_routing_one() {
        assert_eq!(
            path_beside(Path::new("/var/lib/tve/state.redb")),
            Path::new("/var/lib/tve/state.call-quality.redb")
        );
        assert_eq!(
            path_beside(Path::new("state.tenant-contoso.com.redb")),
            Path::new("state.tenant-contoso.com.call-quality.redb")
        );
    }

    #[test]
    fn what_is_written_is_read_back_and_tenants_do_not_mix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.call-quality.redb");
        let (store, queue, totals) = QualityStore::open(&path, "t1", false).unwrap();
        assert!(queue.pending.is_empty() && totals == QualityTotals::default());
        let pending = Pending {
            trunk_fqdn: "sbc1.contoso.com".into(),
            end_ms: 1,
            due_ms: 2,
            attempts: 0,
            transient_failures: 0,
        };
        store
            .write(&Batch {
                pending_put: vec![("a".into(), pending.clone()), ("b".into(), pending.clone())],
                settled_put: vec![(RowKey::from_id("c"), 9)],
                ..Batch::default()
            })
            .unwrap();
        store
            .write(&Batch {
                pending_remove: vec!["b".into()],
                settled_put: vec![(RowKey::from_id("b"), 10)],
                totals: Some(QualityTotals::default().save()),
                ..Batch::default()
            })
            .unwrap();
        drop(store);
        let (_, queue, _) = QualityStore::open(&path, "t1", false).unwrap();
        assert_eq!(queue.pending.len(), 1);
        assert_eq!(queue.pending["a"], pending);
        assert_eq!(queue.settled.len(), 2);
        let error = QualityStore::open(&path, "t2", false).err().unwrap();
        assert!(
            matches!(error, QualityStateError::OtherTenant { .. }),
            "{error}"
        );
        let (_, queue, _) = QualityStore::open(&path, "t2", true).unwrap();
        assert!(queue.pending.is_empty(), "--state.reset starts afresh");
    }
}
