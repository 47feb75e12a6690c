use super::*;
use chrono::DateTime;
use redb::ReadableTable;

use crate::counting::state::{Ingest, RowKey};
use crate::source::direct_routing::{DirectRouting, DirectRoutingTotals};

// The store is generic over the call-log function; these tests keep Direct Routing's.
type TenantState = crate::counting::state::TenantState<DirectRouting>;
type StateStore = super::StateStore<DirectRouting>;
type Saved = super::Saved<DirectRouting>;
type Aggregates = crate::counting::state::Aggregates<DirectRoutingTotals>;

const TENANT: &str = "11111111-2222-3333-4444-555555555555";

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A well-formed row with a GUID id, started `minute` minutes after 08:00.
fn row(n: u32, minute: u32) -> String {
    format!(
        r#"{{"id":"{n:08x}-dc14-533a-a7dd-f0da6575eed1","startDateTime":"2026-11-27T{:02}:{:02}:00Z",
        "inviteDateTime":"2026-11-27T{:02}:{:02}:00Z","endDateTime":"2026-11-27T{:02}:{:02}:30Z",
        "duration":30,"callType":"ByotIn","successfulCall":{},"mediaPathLocation":"USWE",
        "finalSipCode":{},"callEndSubReason":560503,"trunkFullyQualifiedDomainName":"sbc{}.contoso.com"}}"#,
        8 + minute / 60,
        minute % 60,
        8 + minute / 60,
        minute % 60,
        8 + minute / 60,
        minute % 60,
        !n.is_multiple_of(3),
        if n.is_multiple_of(3) { 503 } else { 0 },
        n % 4,
    )
}

fn ingest(state: &Mutex<TenantState>, rows: &[String]) {
    state.lock().ingest(
        rows.iter().map(String::as_str),
        Ingest::Count,
        at("2026-11-27T12:00:00Z"),
        at("2026-11-27T07:00:00Z"),
    );
}

fn options(dir: &tempfile::TempDir) -> StateOptions {
    StateOptions {
        path: dir.path().join("state.redb"),
        reset: false,
    }
}

fn open(options: &StateOptions) -> Result<(StateStore, Option<Saved>), StateError> {
    StateStore::open(options, TENANT, IntCounter::new("e", "e").unwrap())
}

fn progress() -> Progress {
    Progress {
        first_start_done: true,
        last_sweep: Some(at("2026-11-27T11:00:00Z")),
        covered_until: Some(at("2026-11-27T11:59:00Z")),
        forgotten_before: Some(at("2026-11-24T11:59:00Z")),
        ..Progress::default()
    }
}

fn assert_restores(options: &StateOptions, state: &Mutex<TenantState>, progress: &Progress) {
    let (_, saved) = open(options).unwrap();
    let saved = saved.expect("saved state");
    let state = state.lock();
    assert_eq!(&saved.remembered, state.remembered());
    assert_eq!(saved.aggregates, state.aggregates);
    assert_eq!(&saved.progress, progress);
}

#[test]
fn a_commit_restores_exactly_and_writes_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(&dir);
    let (mut store, saved) = open(&options).unwrap();
    assert!(saved.is_none(), "a new file");
    let state = Mutex::new(TenantState::durable(HashMap::new(), Aggregates::default()));
    let rows: Vec<String> = (0..1000).map(|n| row(n, n % 200)).collect();
    ingest(&state, &rows);
    // A malformed row without an id and one with a text id.
    state.lock().ingest(
        [
            "17",
            r#"{"id":"Not-A-Guid","startDateTime":"2026-11-27T10:00:00Z"}"#,
        ],
        Ingest::Count,
        at("2026-11-27T12:00:00Z"),
        at("2026-11-27T07:00:00Z"),
    );
    assert_eq!(store.commit(&state, &progress()), Some(1002));
    assert_eq!(state.lock().pending_changes(), 0);

    let more: Vec<String> = (1000..1010).map(|n| row(n, 230)).collect();
    ingest(&state, &more);
    ingest(&state, &rows); // seen again: nothing changes
    assert_eq!(store.commit(&state, &progress()), Some(10), "ten new ids");
    // Forgetting rows that started before 09:00 deletes exactly those.
    let forgotten = state.lock().forget_before(at("2026-11-27T09:00:00Z"));
    assert!(forgotten > 100);
    assert_eq!(store.commit(&state, &progress()), Some(forgotten));
    drop(store);
    assert_restores(&options, &state, &progress());
}

#[test]
fn published_aggregates_follow_commits() {
    let state = Mutex::new(TenantState::durable(HashMap::new(), Aggregates::default()));
    ingest(&state, &[row(1, 1)]);
    assert_eq!(state.lock().exposed().rows_ingested, 0, "not committed yet");
    state.lock().publish();
    assert_eq!(state.lock().exposed().rows_ingested, 1);
    let live = Mutex::new(TenantState::new());
    ingest(&live, &[row(1, 1)]);
    assert_eq!(
        live.lock().exposed().rows_ingested,
        1,
        "no store: live values"
    );
    assert_eq!(
        live.lock().pending_changes(),
        0,
        "no store: nothing tracked"
    );
}

#[test]
fn a_failed_commit_keeps_its_changes_and_the_next_one_writes_them() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("data");
    fs::create_dir(&dir).unwrap();
    let options = StateOptions {
        path: dir.join("state.redb"),
        reset: false,
    };
    let errors = IntCounter::new("e", "e").unwrap();
    let (mut store, _) = StateStore::open(&options, TENANT, errors.clone()).unwrap();
    let state = Mutex::new(TenantState::durable(HashMap::new(), Aggregates::default()));
    ingest(
        &state,
        &(0..500).map(|n| row(n, n % 100)).collect::<Vec<_>>(),
    );
    assert_eq!(store.commit(&state, &progress()), Some(500));

    // The directory becomes unusable (a file where it was: fails even for root), after an
    // I/O error made the store let go of the database.
    let aside = base.path().join("aside");
    fs::rename(&dir, &aside).unwrap();
    fs::write(&dir, b"not a directory").unwrap();
    store.close();
    ingest(&state, &(500..520).map(|n| row(n, 150)).collect::<Vec<_>>());
    assert_eq!(store.commit(&state, &progress()), None);
    ingest(&state, &(520..530).map(|n| row(n, 150)).collect::<Vec<_>>());
    state.lock().forget_before(at("2026-11-27T08:30:00Z"));
    assert_eq!(store.commit(&state, &progress()), None);
    assert_eq!(errors.get(), 2);
    let health = store.status().health();
    let problem = health.problem.expect("the problem is shown");
    assert_eq!(problem.failed_attempts, 2);
    assert!(problem.unsaved_changes >= 30, "{problem:?}");

    // The disk is back: one incremental commit writes everything not yet written.
    fs::remove_file(&dir).unwrap();
    fs::rename(&aside, &dir).unwrap();
    let written = store.commit(&state, &progress()).expect("commit succeeds");
    assert!(written < 500, "incremental, not a rewrite: {written}");
    assert!(store.status().health().problem.is_none());
    drop(store);
    assert_restores(&options, &state, &progress());
}

#[test]
fn a_vanished_file_is_written_whole() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(&dir);
    let (mut store, _) = open(&options).unwrap();
    let state = Mutex::new(TenantState::durable(HashMap::new(), Aggregates::default()));
    ingest(
        &state,
        &(0..300).map(|n| row(n, n % 100)).collect::<Vec<_>>(),
    );
    assert_eq!(store.commit(&state, &progress()), Some(300));
    // Deleted while open: noticed at the next commit, without any I/O error.
    fs::remove_file(&options.path).unwrap();
    ingest(&state, &[row(300, 100)]);
    assert_eq!(
        store.commit(&state, &progress()),
        Some(301),
        "rewritten whole"
    );
    // Replaced by an older copy of itself: the mark differs, so rewritten whole again.
    let copy = dir.path().join("copy");
    fs::copy(&options.path, &copy).unwrap();
    ingest(&state, &[row(301, 100)]);
    assert_eq!(store.commit(&state, &progress()), Some(1));
    store.close();
    fs::rename(&copy, &options.path).unwrap();
    ingest(&state, &[row(302, 100)]);
    assert_eq!(store.commit(&state, &progress()), Some(303));
    drop(store);
    assert_restores(&options, &state, &progress());
}

#[cfg(target_os = "linux")]
#[test]
fn an_unwritable_place_is_counted_and_the_exporter_goes_on() {
    // procfs refuses new files even to root, where a read-only mode would not.
    let options = StateOptions {
        path: PathBuf::from("/proc/self/teams-voice-exporter-test/state.redb"),
        reset: false,
    };
    let errors = IntCounter::new("e", "e").unwrap();
    let (mut store, saved) = StateStore::open(&options, TENANT, errors.clone()).unwrap();
    assert!(saved.is_none());
    assert_eq!(errors.get(), 1, "the failed creation is counted");
    let state = Mutex::new(TenantState::durable(HashMap::new(), Aggregates::default()));
    ingest(&state, &[row(1, 1)]);
    assert_eq!(store.commit(&state, &progress()), None);
    assert_eq!(errors.get(), 2);
    assert_eq!(
        state.lock().pending_changes(),
        1,
        "kept for the next attempt"
    );
}

/// Writes a file with `edit` applied to its meta table, as another program would.
fn tampered(
    dir: &tempfile::TempDir,
    edit: impl FnOnce(&mut redb::Table<&str, &[u8]>),
) -> StateOptions {
    let options = options(dir);
    let (mut store, _) = open(&options).unwrap();
    let state = Mutex::new(TenantState::durable(HashMap::new(), Aggregates::default()));
    ingest(&state, &[row(1, 1), row(2, 2)]);
    store.commit(&state, &progress()).unwrap();
    drop(store);
    let db = Database::open(&options.path).unwrap();
    let txn = db.begin_write().unwrap();
    edit(&mut txn.open_table(META).unwrap());
    txn.commit().unwrap();
    options
}

fn refusal(options: &StateOptions) -> String {
    let error = open(options).err().expect("refused");
    let text = error.to_string();
    assert!(text.contains(&options.path.display().to_string()), "{text}");
    text
}

#[test]
fn each_function_has_its_own_file_beside_the_path() {
    use crate::source::Function;
    let options = |path: &str| StateOptions {
        path: path.into(),
        reset: false,
    };
    let at = |path: &str, function| options(path).path_for(function);
    let dr = Function::DirectRoutingCalls;
    let pstn = Function::PstnCalls;
    assert_eq!(
        at("/var/lib/tve/state.redb", dr),
        Path::new("/var/lib/tve/state.redb")
    );
    assert_eq!(
        at("/var/lib/tve/state.redb", pstn),
        Path::new("/var/lib/tve/state.pstn.redb")
    );
    assert_eq!(at("state", pstn), Path::new("state.pstn"));
    assert_eq!(at("dir/.state", pstn), Path::new("dir/.state.pstn"));
}

#[test]
fn files_that_cannot_be_used_are_refused_with_the_choices() {
    let dir = tempfile::tempdir().unwrap();
    let newer = tampered(&dir, |meta| {
        meta.insert(
            "format_version",
            (super::FORMAT_VERSION + 1).to_le_bytes().as_slice(),
        )
        .unwrap();
        meta.insert("written_by", b"teams-voice-exporter 9.0.0".as_slice())
            .unwrap();
    });
    let text = refusal(&newer);
    assert!(text.contains("newer") && text.contains("9.0.0"), "{text}");
    assert!(text.contains("--state.reset") && text.contains("move the file aside"));

    let dir = tempfile::tempdir().unwrap();
    let other = tampered(&dir, |meta| {
        meta.insert("tenant_id", b"someone-else".as_slice())
            .unwrap();
    });
    assert!(refusal(&other).contains("someone-else"));

    // Another source's file, renamed by hand.
    let dir = tempfile::tempdir().unwrap();
    let pstn = tampered(&dir, |meta| {
        meta.insert("function", b"getPstnCalls".as_slice()).unwrap();
    });
    let text = refusal(&pstn);
    assert!(
        text.contains("getPstnCalls") && text.contains("getDirectRoutingCalls"),
        "{text}"
    );

    // A managed identity's state (tenant unknown, recorded as "(…)") is no other tenant's.
    let dir = tempfile::tempdir().unwrap();
    let managed = tampered(&dir, |meta| {
        meta.insert("tenant_id", b"(the managed identity's own)".as_slice())
            .unwrap();
    });
    assert!(open(&managed).unwrap().1.is_some(), "restored");

    let dir = tempfile::tempdir().unwrap();
    let broken = tampered(&dir, |meta| {
        let mut summary = meta.get("summary").unwrap().unwrap().value().to_vec();
        let last = summary.len() - 1;
        summary[last] ^= 0x55;
        meta.insert("summary", summary.as_slice()).unwrap();
    });
    assert!(refusal(&broken).contains("damaged"));

    let dir = tempfile::tempdir().unwrap();
    let foreign = options(&dir);
    let db = Database::create(&foreign.path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(TableDefinition::<u64, u64>::new("other"))
        .unwrap()
        .insert(1, 2)
        .unwrap();
    txn.commit().unwrap();
    drop(db);
    assert!(refusal(&foreign).contains("not a teams-voice-exporter state file"));

    let dir = tempfile::tempdir().unwrap();
    let sqlite = options(&dir);
    fs::write(&sqlite.path, b"SQLite format 3\0\x10\x00").unwrap();
    assert!(refusal(&sqlite).contains("SQLite"));
}

#[test]
fn a_changed_id_fails_the_digest() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(&dir);
    let (mut store, _) = open(&options).unwrap();
    let state = Mutex::new(TenantState::durable(HashMap::new(), Aggregates::default()));
    ingest(&state, &(0..50).map(|n| row(n, n)).collect::<Vec<_>>());
    store.commit(&state, &progress()).unwrap();
    drop(store);
    let db = Database::open(&options.path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut rows = txn.open_table(ROWS).unwrap();
        let key = rows.first().unwrap().unwrap().0.value().to_vec();
        rows.insert(key.as_slice(), 1).unwrap();
    }
    txn.commit().unwrap();
    drop(db);
    let text = refusal(&options);
    assert!(text.contains("digest"), "{text}");
}

#[test]
fn a_file_in_use_is_refused_and_reset_starts_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(&dir);
    let (mut store, _) = open(&options).unwrap();
    let state = Mutex::new(TenantState::durable(HashMap::new(), Aggregates::default()));
    ingest(&state, &[row(1, 1)]);
    store.commit(&state, &progress()).unwrap();
    assert!(matches!(open(&options), Err(StateError::InUse { .. })));
    let reset = StateOptions {
        reset: true,
        ..options.clone()
    };
    assert!(
        matches!(open(&reset), Err(StateError::InUse { .. })),
        "never pulled from under a running exporter"
    );
    drop(store);
    fs::write(&options.path, b"garbage that is not a state file").unwrap();
    let (_, saved) = open(&reset).unwrap();
    assert!(saved.is_none(), "started afresh");
}

#[test]
fn the_progress_of_a_file_in_use_is_read_from_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(&dir);
    assert_eq!(
        saved_progress::<DirectRouting>(&options.path, TENANT).unwrap(),
        None,
        "no file"
    );
    let (mut store, _) = open(&options).unwrap();
    let state = Mutex::new(TenantState::durable(HashMap::new(), Aggregates::default()));
    ingest(&state, &[row(1, 1)]);
    store.commit(&state, &progress()).unwrap();
    // The store still holds the file's lock, as a running exporter does.
    assert!(matches!(open(&options), Err(StateError::InUse { .. })));
    assert_eq!(
        saved_progress::<DirectRouting>(&options.path, TENANT).unwrap(),
        Some(progress())
    );
    assert!(matches!(
        saved_progress::<DirectRouting>(&options.path, "99999999-2222-3333-4444-555555555555"),
        Err(StateError::OtherTenant { .. })
    ));
    drop(store);
    let (_, saved) = open(&options).unwrap();
    assert_eq!(saved.unwrap().remembered.len(), 1, "the file untouched");
}

#[test]
fn keys_round_trip_and_content_hashes_are_stable() {
    for key in [
        RowKey::from_id("9e8bba57-dc14-533a-a7dd-f0da6575eed1"),
        RowKey::from_id("Not-A-Guid"),
        RowKey::ContentHash(0x0123_4567_89ab_cdef),
    ] {
        assert_eq!(decode_key(&encode_key(&key)), Some(key));
    }
    assert_eq!(decode_key(&[9, 1, 2]), None);
    // Pinned: a different value would make saved ids of malformed rows unrecognisable.
    assert_eq!(
        RowKey::from_content("17"),
        RowKey::ContentHash(xxhash_rust::xxh3::xxh3_64(b"17"))
    );
    assert_eq!(xxhash_rust::xxh3::xxh3_64(b"17"), PINNED_XXH3_OF_17);
}

const PINNED_XXH3_OF_17: u64 = 11_694_473_104_765_870_811;

#[test]
fn a_commit_shows_what_it_wrote_and_nothing_counted_after() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(&dir);
    let (mut store, _) = open(&options).unwrap();
    let state = Mutex::new(TenantState::durable(HashMap::new(), Aggregates::default()));
    ingest(&state, &[row(1, 1)]);
    store.commit(&state, &progress()).unwrap();
    assert_eq!(state.lock().exposed().rows_ingested, 1);
    // Counted by another poll after that commit: not shown until a commit holds it.
    ingest(&state, &[row(2, 1)]);
    assert_eq!(state.lock().exposed().rows_ingested, 1);
    store.commit(&state, &progress()).unwrap();
    assert_eq!(state.lock().exposed().rows_ingested, 2);
}

/// A state file written by version 0.1.0 (state format 1, Direct Routing only): twelve rows
/// of [`row`] ingested by [`ingest`] and committed with [`progress`].
const V1_FIXTURE: &str = "tests/data/state-v1.redb.gz";

#[test]
fn a_version_1_file_restores_as_direct_routing_and_is_rewritten_as_version_2() {
    use std::io::Read as _;
    let dir = tempfile::tempdir().unwrap();
    let options = options(&dir);
    let mut file = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(V1_FIXTURE).unwrap())
        .read_to_end(&mut file)
        .unwrap();
    fs::write(&options.path, file).unwrap();

    let counted = Mutex::new(TenantState::durable(HashMap::new(), Aggregates::default()));
    ingest(&counted, &(1..=12).map(|n| row(n, n)).collect::<Vec<_>>());
    let counted = counted.lock();
    let same_as_counted = |saved: &Saved| {
        assert_eq!(&saved.remembered, counted.remembered());
        let (a, b) = (&saved.aggregates, &counted.aggregates);
        assert_eq!(a.rows_ingested, 12);
        assert_eq!(
            (a.rows_ingested, a.rows_invalid, &a.arrival_delay),
            (b.rows_ingested, b.rows_invalid, &b.arrival_delay)
        );
        let (f, g) = (&a.function, &b.function);
        assert_eq!(
            (&f.calls, &f.failures, &f.duration, &f.setup),
            (&g.calls, &g.failures, &g.duration, &g.setup)
        );
        assert_eq!(saved.progress, progress());
    };
    let (mut store, saved) = open(&options).unwrap();
    let saved = saved.expect("a version 1 file is restored");
    same_as_counted(&saved);

    // The first commit writes version 2, which restores the same.
    let state = Mutex::new(TenantState::durable(saved.remembered, saved.aggregates));
    store.commit(&state, &progress()).unwrap();
    drop(store);
    let db = Database::open(&options.path).unwrap();
    let meta = db.begin_read().unwrap().open_table(META).unwrap();
    let version = meta
        .get("format_version")
        .unwrap()
        .unwrap()
        .value()
        .to_vec();
    assert_eq!(version, FORMAT_VERSION.to_le_bytes());
    let function = meta.get("function").unwrap().unwrap().value().to_vec();
    assert_eq!(function, b"getDirectRoutingCalls");
    drop(meta);
    drop(db);
    same_as_counted(&open(&options).unwrap().1.expect("restored"));
}
