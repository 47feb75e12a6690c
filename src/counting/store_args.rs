//! The `--state.*` flags: whether counted calls survive a restart, and where.
//!
//! Nothing here touches the file: opening, checking and resetting it is the store's job at
//! start, where a problem can say what it found in the file.

use std::path::PathBuf;

use clap::Args;

use crate::counting::store::StateOptions;

/// The state file's flags.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// File that keeps the counted calls and remembered row ids across restarts (put it on a
    /// persistent volume). Without it, a restart sets the counters back to zero.
    // The demo tenant starts afresh every run, so there is nothing to keep.
    #[arg(long = "state.path", value_name = "PATH", conflicts_with = "demo")]
    pub state_path: Option<PathBuf>,
    /// Delete the state saved at --state.path and start afresh (counters from zero, counting
    /// from one recent window before the start); for a state file that cannot be used.
    #[arg(long = "state.reset", requires = "state_path")]
    pub state_reset: bool,
}

impl StateArgs {
    /// How the store is to be used; `None` keeps everything in memory.
    pub fn options(&self) -> Option<StateOptions> {
        self.state_path.clone().map(|path| StateOptions {
            path,
            reset: self.state_reset,
        })
    }
}
