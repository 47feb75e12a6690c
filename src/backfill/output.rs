//! The output file: written as `FILE.partial` and renamed to `FILE` only once it ends in
//! `# EOF`, so that no interrupted or failed run leaves a file that looks complete.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use prometheus::proto::MetricFamily;

use super::openmetrics::{OpenMetrics, EOF};
use super::resume::{checkpoint_path, partial_path};
use super::BackfillError;

pub struct Output {
    path: PathBuf,
    partial: PathBuf,
    file: BufWriter<File>,
    len: u64,
    writer: OpenMetrics,
}

impl Output {
    /// Opens `FILE.partial`: a new one, or with `resume` the interrupted run's.
    pub fn create(path: &Path, resume: bool) -> Result<Output, BackfillError> {
        if path.exists() {
            return Err(BackfillError::OutputExists {
                path: path.display().to_string(),
            });
        }
        let partial = partial_path(path);
        let opened = if resume {
            OpenOptions::new().write(true).open(&partial)
        } else {
            File::create(&partial)
        };
        let file = opened.map_err(|e| BackfillError::Output {
            path: partial.display().to_string(),
            reason: e.to_string(),
        })?;
        if !resume {
            // A checkpoint of an earlier run describes another file.
            let _ = std::fs::remove_file(checkpoint_path(path));
        }
        Ok(Output {
            path: path.to_owned(),
            partial,
            file: BufWriter::with_capacity(1 << 20, file),
            len: 0,
            writer: OpenMetrics::default(),
        })
    }

    pub fn error(&self, error: std::io::Error) -> BackfillError {
        BackfillError::Output {
            path: self.partial.display().to_string(),
            reason: error.to_string(),
        }
    }

    /// Cuts the file back to the `len` bytes of the complete days, and appends from there.
    pub fn truncate(&mut self, len: u64) -> Result<(), BackfillError> {
        let file = self.file.get_mut();
        let cut = file
            .metadata()
            .and_then(|m| {
                if m.len() < len {
                    Err(std::io::Error::other(format!(
                        "it holds {} bytes, fewer than the {len} its checkpoint names",
                        m.len()
                    )))
                } else {
                    Ok(())
                }
            })
            .and_then(|()| file.set_len(len))
            .and_then(|()| file.seek(SeekFrom::Start(len)).map(drop));
        cut.map_err(|e| BackfillError::NoCheckpoint {
            path: self.partial.display().to_string(),
            reason: e.to_string(),
        })?;
        self.len = len;
        Ok(())
    }

    pub fn mark_known(&mut self, families: &[MetricFamily]) {
        self.writer.mark_known(families);
    }

    /// Appends the samples of `families` at `at` to `text`.
    pub fn render(&mut self, text: &mut String, families: &[MetricFamily], at: i64, previous: i64) {
        self.writer.write(text, families, at, previous);
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<(), BackfillError> {
        self.file.write_all(bytes).map_err(|e| self.error(e))?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Makes what was written durable and returns the file's length.
    pub fn sync(&mut self) -> Result<u64, BackfillError> {
        self.file.flush().map_err(|e| self.error(e))?;
        self.file.get_ref().sync_data().map_err(|e| self.error(e))?;
        Ok(self.len)
    }

    /// Ends the file and gives it its name; the checkpoint has served.
    pub fn finish(mut self) -> Result<(), BackfillError> {
        self.write(EOF.as_bytes())?;
        self.sync()?;
        std::fs::rename(&self.partial, &self.path).map_err(|e| self.error(e))?;
        let _ = std::fs::remove_file(checkpoint_path(&self.path));
        Ok(())
    }
}
