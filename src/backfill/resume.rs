//! Where an interrupted backfill continues: a small file beside the output
//! (`FILE.progress`) written after every complete day piece, with what the sources had
//! counted by then and how long the unfinished output (`FILE.partial`) was.
//!
//! `--resume` cuts the unfinished output back to that length, restores the counts and
//! reads on from the next day, so the result is byte for byte what an uninterrupted run
//! writes. The file is replaced atomically (written beside, then renamed), so an
//! interruption while it is written leaves the previous one.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::source::{each, AnySource, SourceRun};
use super::BackfillError;
use crate::counting::state::Aggregates;
use crate::source::CallLog;

/// Changes whenever the file's meaning does.
const VERSION: u32 = 1;

/// What a resumed run needs.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    version: u32,
    /// The range, step and sources of the run: a resume must be the same backfill.
    pub fingerprint: String,
    /// The range's end as the first run resolved it (`--to` defaults to "now").
    pub to: i64,
    /// Day pieces written completely.
    pub days_done: u32,
    /// Bytes of `FILE.partial` holding those days.
    pub output_len: u64,
    sources: Vec<SavedSource>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct SavedSource {
    name: String,
    /// Where the source's range ends (Unix seconds): its first-start boundary or `--to`.
    to: i64,
    totals: Vec<u8>,
    rows_ingested: u64,
    rows_invalid: u64,
}

/// `FILE.progress`.
pub fn checkpoint_path(output: &Path) -> PathBuf {
    with_suffix(output, ".progress")
}

/// `FILE.partial`.
pub fn partial_path(output: &Path) -> PathBuf {
    with_suffix(output, ".partial")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A source's name in the checkpoint: its tenant and function.
pub fn source_name(source: &AnySource) -> String {
    each!(source, s => format!("{}/{}", s.tenant, s.function_name()))
}

impl Checkpoint {
    pub fn new(
        fingerprint: String,
        to: i64,
        days_done: u32,
        output_len: u64,
        sources: &[AnySource],
    ) -> Self {
        let sources = sources
            .iter()
            .map(|source| {
                let name = source_name(source);
                each!(source, s => saved(name, s))
            })
            .collect();
        Checkpoint {
            version: VERSION,
            fingerprint,
            to,
            days_done,
            output_len,
            sources,
        }
    }

    /// Writes the checkpoint beside `output`, replacing the previous one only once whole.
    pub fn write(&self, output: &Path) -> std::io::Result<()> {
        let path = checkpoint_path(output);
        let fresh = with_suffix(&path, ".new");
        let bytes = postcard::to_allocvec(self).expect("plain data always serialises");
        std::fs::write(&fresh, bytes)?;
        std::fs::File::open(&fresh)?.sync_all()?;
        std::fs::rename(&fresh, &path)
    }

    /// The checkpoint beside `output`.
    pub fn read(output: &Path) -> Result<Checkpoint, BackfillError> {
        let path = checkpoint_path(output);
        let damaged = |reason: String| BackfillError::NoCheckpoint {
            path: path.display().to_string(),
            reason,
        };
        let bytes = std::fs::read(&path).map_err(|e| damaged(e.to_string()))?;
        let checkpoint: Checkpoint =
            postcard::from_bytes(&bytes).map_err(|e| damaged(e.to_string()))?;
        if checkpoint.version != VERSION {
            return Err(damaged(format!(
                "written by another version (format {})",
                checkpoint.version
            )));
        }
        Ok(checkpoint)
    }

    /// Gives each source back what it had counted.
    /// Where each of `sources` ended in the interrupted run, matched by name. A resume
    /// uses these rather than reading the first-start boundaries again: the state file's
    /// boundary moves on once the first start leaves the lookback, which a long backfill
    /// may outlast.
    pub fn source_ends(&self, sources: &[AnySource]) -> Vec<Option<DateTime<Utc>>> {
        sources
            .iter()
            .map(|source| {
                let name = source_name(source);
                self.sources
                    .iter()
                    .find(|saved| saved.name == name)
                    .and_then(|saved| DateTime::from_timestamp(saved.to, 0))
            })
            .collect()
    }

    pub fn restore(self, sources: &mut [AnySource]) -> Result<(), String> {
        if self.sources.len() != sources.len() {
            return Err("it has other sources".into());
        }
        for (saved, source) in self.sources.into_iter().zip(sources.iter_mut()) {
            if saved.name != source_name(source) {
                return Err(format!(
                    "it has {} where this run has {}",
                    saved.name,
                    source_name(source)
                ));
            }
            each!(source, s => restore_into(s, saved)?);
        }
        Ok(())
    }
}

fn saved<L: CallLog>(name: String, s: &SourceRun<L>) -> SavedSource {
    let a = &s.aggregates;
    SavedSource {
        name,
        to: s.to.timestamp(),
        totals: postcard::to_allocvec(&L::save(&a.function)).expect("plain data always serialises"),
        rows_ingested: a.rows_ingested,
        rows_invalid: a.rows_invalid,
    }
}

fn restore_into<L: CallLog>(s: &mut SourceRun<L>, saved: SavedSource) -> Result<(), String> {
    let totals: L::Saved = postcard::from_bytes(&saved.totals).map_err(|e| e.to_string())?;
    s.aggregates = Aggregates {
        function: L::restore(totals).map_err(|e| e.to_string())?,
        rows_ingested: saved.rows_ingested,
        rows_invalid: saved.rows_invalid,
        ..Aggregates::default()
    };
    Ok(())
}
