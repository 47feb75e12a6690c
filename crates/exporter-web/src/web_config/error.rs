//! The one error a web configuration file can have: it names the file and the field, so
//! that an operator can go straight to the line to fix. Messages never quote a key or a
//! password hash.

/// A problem with the web configuration file, naming the file and the field.
#[derive(Debug, thiserror::Error)]
#[error("--web.config.file {file}: {field}: {problem}")]
pub struct WebConfigError {
    pub file: String,
    pub field: String,
    pub problem: String,
}

/// Makes the errors of one file, so each check names only its field and its problem.
pub(super) struct Fail {
    file: String,
}

impl Fail {
    pub(super) fn new(file: String) -> Fail {
        Fail { file }
    }

    /// The file's error at `field`.
    pub(super) fn at(&self, field: &str, problem: impl Into<String>) -> WebConfigError {
        WebConfigError {
            file: self.file.clone(),
            field: field.to_owned(),
            problem: problem.into(),
        }
    }
}
