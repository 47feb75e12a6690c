//! What is read: a call window (a half-open range of call start times) within Graph's
//! limit on one request, and what reading one took.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Graph's documented limit on one request's call-start range.
pub const MAX_WINDOW: Duration = Duration::from_secs(90 * 86_400);

/// A half-open range of call start times `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallWindow {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl CallWindow {
    /// Splits the window into consecutive windows no longer than `max`.
    pub fn split(self, max: Duration) -> Vec<CallWindow> {
        let max = chrono::Duration::from_std(max).unwrap_or(chrono::Duration::days(90));
        let mut windows = Vec::new();
        let mut from = self.from;
        while from < self.to {
            let to = (from + max).min(self.to);
            windows.push(CallWindow { from, to });
            from = to;
        }
        windows
    }
}

/// What reading a window took.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WindowRead {
    pub pages: u64,
    pub rows: u64,
}
