//! How far a backfill has come: a progress bar with rows, pages, rate and ETA on a
//! terminal, one plain line every few seconds otherwise (a log file, CI), so a long run
//! never looks hung.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the plain line is written.
const LINE_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
    /// Day pieces of all sources, and how many are done (this run's first included).
    pieces: u64,
    done: u64,
    first_done: u64,
    pub rows: u64,
    pub pages: u64,
    day: String,
}

impl Progress {
    /// Progress over `pieces` day pieces of which `done` were done by an earlier run.
    pub fn new(pieces: u64, done: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(pieces), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} day pieces  {msg}  [{elapsed_precise}, ETA {eta}]",
                )
                .expect("a valid template"),
            );
            bar.set_position(done);
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            started: now,
            last_line: now,
            pieces,
            done,
            first_done: done,
            rows: 0,
            pages: 0,
            day: String::new(),
        }
    }

    /// The day being read.
    pub fn day(&mut self, day: String) {
        self.day = day;
    }

    /// A page of `rows` arrived.
    pub fn page(&mut self, rows: u64) {
        self.pages += 1;
        self.rows += rows;
        let summary = self.summary();
        if let Some(bar) = &self.bar {
            bar.set_message(summary);
        } else if self.last_line.elapsed() >= LINE_EVERY {
            self.last_line = Instant::now();
            eprintln!("backfill: {summary}");
        }
    }

    /// A source's day piece was read.
    pub fn piece_done(&mut self) {
        self.done += 1;
        if let Some(bar) = &self.bar {
            bar.set_position(self.done);
        }
    }

    fn summary(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = self.rows as f64 / secs;
        let this_run = self.done - self.first_done;
        let eta = if this_run == 0 {
            "unknown".to_owned()
        } else {
            let left = (self.pieces - self.done) as f64 * secs / this_run as f64;
            humantime::format_duration(Duration::from_secs(left as u64)).to_string()
        };
        format!(
            "day {} ({}/{} pieces): {} rows, {} pages, {:.0} rows/s, ETA {eta}",
            self.day, self.done, self.pieces, self.rows, self.pages, rate
        )
    }

    /// Clears the bar before a final message.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
