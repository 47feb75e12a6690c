//! Pins every message to the text the store built by hand before it had error types: the
//! right-hand sides are the old `format!`s and literals, verbatim.

use super::*;

fn boom() -> io::Error {
    io::Error::other("boom")
}

fn redb_error() -> Box<redb::Error> {
    Box::new(redb::Error::from(StorageError::Io(boom())))
}

#[test]
fn save_errors_read_as_before() {
    let shown = "/var/lib/tve/state.redb";
    let cases: Vec<(SaveError, String)> = vec![
        (
            SaveError::NotWritable {
                path: shown.into(),
                source: boom(),
            },
            format!("the state file {shown} is not writable: {}", boom()),
        ),
        (
            SaveError::Create {
                path: shown.into(),
                source: CreateError::Io(boom()),
            },
            format!("cannot create the state file {shown}: {}", boom()),
        ),
        (
            SaveError::Create {
                path: shown.into(),
                source: DatabaseError::DatabaseAlreadyOpen.into(),
            },
            // `create` used to wrap redb's errors in an `io::Error`.
            format!(
                "cannot create the state file {shown}: {}",
                io::Error::other(DatabaseError::DatabaseAlreadyOpen)
            ),
        ),
        (
            SaveError::Create {
                path: shown.into(),
                source: CreateError::Initialise(redb_error()),
            },
            format!(
                "cannot create the state file {shown}: {}",
                io::Error::other(redb_error())
            ),
        ),
        (
            SaveError::Unreachable {
                path: shown.into(),
                source: boom(),
            },
            format!("cannot reach the state file {shown}: {}", boom()),
        ),
        (
            SaveError::reopening(shown, OpenError::Locked),
            format!("the state file {shown} is in use by another process"),
        ),
        (
            SaveError::reopening(shown, OpenError::Io(boom())),
            format!("cannot open the state file {shown}: {}", boom()),
        ),
        (
            SaveError::reopening(shown, OpenError::Damaged(Damage::Panicked("x".into()))),
            format!("the state file {shown} is damaged (the storage library gave up on it: x); it is left as it is"),
        ),
        (
            SaveError::NotOurs {
                path: shown.into(),
                source: LoadError::Newer {
                    found: 2,
                    written_by: "teams-voice-exporter 9.0.0".into(),
                },
            },
            format!(
                "the state file {shown} no longer holds this exporter's state ({}); it is left as it is",
                "written by teams-voice-exporter 9.0.0 in state format 2"
            ),
        ),
        (
            SaveError::Write {
                path: shown.into(),
                source: redb_error(),
            },
            format!("cannot write the state file {shown}: {}", redb_error()),
        ),
    ];
    for (new, old) in cases {
        assert_eq!(new.to_string(), old);
    }
}

#[test]
fn load_errors_describe_as_before() {
    let cases: Vec<(LoadError, String)> = vec![
        (
            Foreign::NotOurs.into(),
            "it is a redb database, but not one this exporter wrote".into(),
        ),
        (
            LoadError::Newer {
                found: 3,
                written_by: "an unknown version".into(),
            },
            format!("written by {} in state format {}", "an unknown version", 3),
        ),
        (
            LoadError::OtherTenant("someone-else".into()),
            format!("it belongs to tenant {}", "someone-else"),
        ),
        (Damage::NoSummary.into(), "no summary".into()),
    ];
    for (new, old) in cases {
        assert_eq!(new.to_string(), old);
    }
}

#[test]
fn details_read_as_before() {
    let storage = || StorageError::Io(boom());
    let table = || TableError::TableDoesNotExist("meta".into());
    let cases: Vec<(String, String)> = vec![
        (Foreign::Directory.to_string(), "it is a directory; give a file name inside it".into()),
        (Foreign::Sqlite.to_string(), "it is an SQLite database".into()),
        (Foreign::Text.to_string(), "it is a text file".into()),
        (Foreign::NotRedb.to_string(), "it does not start like a redb database".into()),
        (Foreign::NoTables.to_string(), "it is a redb database without this exporter's tables".into()),
        (
            Foreign::OtherTables(Box::new(table())).to_string(),
            "it is a redb database whose tables are not this exporter's".into(),
        ),
        (Damage::from(DatabaseError::RepairAborted).to_string(), DatabaseError::RepairAborted.to_string()),
        (
            Damage::from(TransactionError::Storage(storage())).to_string(),
            TransactionError::Storage(storage()).to_string(),
        ),
        (Damage::from(table()).to_string(), table().to_string()),
        (Damage::from(storage()).to_string(), storage().to_string()),
        (
            Damage::Panicked("index out of bounds".into()).to_string(),
            format!("the storage library gave up on it: {}", "index out of bounds"),
        ),
        (Damage::NoVersion.to_string(), "its format version is missing".into()),
        (Damage::VersionZero.to_string(), "its format version is 0".into()),
        (Damage::SummaryTruncated.to_string(), format!("its summary {}", "is truncated")),
        (Damage::SummaryChecksum.to_string(), format!("its summary {}", "fails its checksum")),
        (
            Damage::SummaryUndecodable(postcard::Error::DeserializeUnexpectedEnd).to_string(),
            format!("its summary {}", "cannot be decoded"),
        ),
        (Damage::MalformedId.to_string(), "a remembered id is malformed".into()),
        (
            Damage::Rows { found: 7, written: 9 }.to_string(),
            format!(
                "it holds {} remembered ids where its last commit wrote {}, or their digest differs",
                7, 9
            ),
        ),
        (Damage::SaveTime.to_string(), "its save time is out of range".into()),
        (Damage::Time.to_string(), "a saved time is out of range".into()),
        (
            Damage::Buckets { histogram: "arrival delay" }.to_string(),
            format!("its {} histogram has other buckets than this version's", "arrival delay"),
        ),
        (Damage::Histogram.to_string(), "a histogram does not add up".into()),
    ];
    for (new, old) in cases {
        assert_eq!(new, old);
    }
}

#[test]
fn refusals_at_start_carry_the_same_details() {
    let shown = "/p";
    let refusal = |error: StateError| error.to_string();
    assert_eq!(
        refusal(OpenError::Locked.at(shown)),
        refusal(StateError::InUse { path: shown.into() })
    );
    assert_eq!(
        refusal(OpenError::Io(boom()).at(shown)),
        refusal(StateError::Unreadable {
            path: shown.into(),
            reason: boom().to_string()
        })
    );
    assert_eq!(
        refusal(OpenError::Damaged(Damage::Panicked("x".into())).at(shown)),
        refusal(StateError::Corrupted {
            path: shown.into(),
            detail: "the storage library gave up on it: x".into()
        })
    );
    assert_eq!(
        refusal(LoadError::from(Foreign::NoTables).at(shown, "t")),
        refusal(StateError::WrongFormat {
            path: shown.into(),
            detail: "it is a redb database without this exporter's tables".into()
        })
    );
    assert_eq!(
        refusal(LoadError::OtherTenant("s".into()).at(shown, "t")),
        refusal(StateError::OtherTenant {
            path: shown.into(),
            saved: "s".into(),
            configured: "t".into()
        })
    );
    assert_eq!(
        refusal(LoadError::from(Damage::NoSummary).at(shown, "t")),
        refusal(StateError::Corrupted {
            path: shown.into(),
            detail: "no summary".into()
        })
    );
}
