//! Noticing that the web configuration file, or a file it names, changed: each file's
//! metadata is noted just before it is read and compared later, a `stat` a file and no
//! reading, cheap enough to do on every connection and request.

use std::path::{Path, PathBuf};

/// What a file's identity and content were when it was last loaded; any difference
/// means it was replaced or rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stamp {
    Missing,
    Seen {
        len: u64,
        modified: Option<std::time::SystemTime>,
        // inode, device and ctime catch a Kubernetes secret's symlink swap and a rewrite
        // that kept the length and mtime (`cp -p`, `touch -r`).
        #[cfg(unix)]
        unix: (u64, u64, i64, i64),
    },
}

impl Stamp {
    pub(super) fn of(path: &Path) -> Stamp {
        match std::fs::metadata(path) {
            Err(_) => Stamp::Missing,
            Ok(m) => Stamp::Seen {
                len: m.len(),
                modified: m.modified().ok(),
                #[cfg(unix)]
                unix: {
                    use std::os::unix::fs::MetadataExt;
                    (m.dev(), m.ino(), m.ctime(), m.ctime_nsec())
                },
            },
        }
    }
}

/// The files one load read, each as it was just before it was read.
#[derive(Debug, Default)]
pub(super) struct Watched(Vec<(PathBuf, Stamp)>);

impl Watched {
    /// Notes `path` as it is now; call it before reading the file, so that a change
    /// during the read is seen at the next look.
    pub(super) fn note(&mut self, path: &Path) {
        self.0.push((path.to_owned(), Stamp::of(path)));
    }

    /// Whether every file is still as noted.
    pub(super) fn unchanged(&self) -> bool {
        self.0.iter().all(|(path, stamp)| Stamp::of(path) == *stamp)
    }
}
