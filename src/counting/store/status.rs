//! The state file's health as the landing page and `/-/ready` show it: when it was last
//! saved, and while saves fail, since when, how often, why, and how much is unsaved.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

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
    pub(super) fn new(path: PathBuf) -> Self {
        StoreStatus {
            path,
            health: Mutex::new(StoreHealth::default()),
        }
    }

    pub fn health(&self) -> StoreHealth {
        self.health.lock().clone()
    }

    pub(super) fn succeeded(&self) {
        let mut health = self.health.lock();
        health.last_commit = Some(Utc::now());
        health.problem = None;
    }

    /// Records a failure; returns how many attempts have failed in a row.
    pub(super) fn failed(&self, error: String, unsaved_changes: usize) -> u64 {
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
