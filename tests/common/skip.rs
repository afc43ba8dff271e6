//! The one skip rule of every test, the library's unit tests included
//! (src/lib.rs includes this file): a test that needs a peer program or a
//! privilege runs, or says why it is skipped; under CI=true it fails.

use std::path::PathBuf;

/// Where `prog` is on PATH, if anywhere.
pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| std::fs::metadata(p).map(|m| m.is_file()).unwrap_or(false))
}

/// True when `what` (a program, root, a capability...) is there; otherwise
/// print why the test is skipped and return false. Under CI=true a missing
/// requirement is a failure: the suite must not go green by testing
/// nothing.
pub fn have(what: &str, found: bool) -> bool {
    if found {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is required in CI (CI=true) but is missing here");
    }
    eprintln!("SKIPPED: needs {what}, which is missing here");
    false
}
