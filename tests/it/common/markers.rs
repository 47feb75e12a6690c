//! The log messages the tests wait for, kill on or look for, word for word as the exporter
//! logs them in the `message` field of its JSON log lines. Each names where it is logged,
//! so that the library can export it and the tests use that instead: a reworded message
//! must break the build, not leave a test waiting for a line that never comes.

/// The exporter serves; its `address` field says where (src/app.rs:142).
pub const LISTENING: &str = "teams-voice-exporter listening";

/// `simulate` serves the simulated tenant; its `url` field says where (src/app.rs:295).
pub const SIMULATOR_SERVING: &str = "simulated Graph tenant serving; point --graph.endpoint and --azure.authority-host at the url (the client secret is in the README)";

/// The credential the exporter uses, in its `credential` field (src/app.rs:94).
pub const CREDENTIAL_CHOSEN: &str = "credential chosen";

/// A poll begins; its `parts` field counts its sub-windows (src/counting/poller/mod.rs:325).
pub const POLL_STARTING: &str = "poll starting";

/// A poll failed; its `error` field says why (src/counting/poller/mod.rs:539).
pub const POLL_FAILED: &str =
    "poll failed; counted rows are kept and the window is read again at the next poll";

/// A commit of the durable state begins (src/counting/store.rs:353).
pub const COMMIT_STARTING: &str = "state commit starting";

/// Just before redb writes and fsyncs a commit (src/counting/store.rs:564).
pub const COMMIT_WRITING: &str = "state commit writing to disk";

/// A commit finished (src/counting/store.rs:361).
pub const COMMITTED: &str = "state committed";

/// A commit after failed ones succeeded (src/counting/store.rs:367).
pub const STATE_SAVED_AGAIN: &str =
    "the state is saved again; everything counted meanwhile is in the file";

/// A commit failed (src/counting/store.rs:580).
pub const STATE_NOT_SAVED: &str = "cannot save the state; polling and serving go on with the state in memory and the next poll tries again. Make the file and its directory writable or free disk space: until then a restart loses what was counted since the last save";

/// `--state.reset` deleted the saved state (src/counting/store.rs:826).
pub const STATE_RESET: &str = "--state.reset: the saved state was deleted; counters restart at zero and the next start is a first start (counting begins one recent window back). Remove --state.reset so that the next restart resumes instead";

/// A changed `--web.config.file` was refused (crates/exporter-web/src/web_config.rs:283).
pub const WEB_CONFIG_REJECTED: &str =
    "the changed web configuration does not load; the previous one stays in force";
