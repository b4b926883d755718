//! Fault injection for the crash tests: a server started with
//! `CARGOHOLD_TEST_CRASH_AFTER=<point>` aborts (as SIGKILL would stop it) right after that
//! step of closing an upload, so a test can check that a retry finishes from there. Never
//! set in production; unset, it costs one `Option` check per step.

use std::str::FromStr;

use super::Uploads;

/// A step of closing an upload, after which a crash test may stop the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// The closing request's bytes are saved and the session is marked closing.
    Received,
    /// The multipart upload is joined into the session's data object.
    Assembled,
    /// The blob is under `blobs/`, not yet linked.
    Published,
    /// The blob is linked into the repository; the session is not yet discarded.
    Linked,
}

impl FromStr for FaultPoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "received" => Ok(Self::Received),
            "assembled" => Ok(Self::Assembled),
            "published" => Ok(Self::Published),
            "linked" => Ok(Self::Linked),
            other => Err(format!(
                "unknown fault point {other:?} (received, assembled, published, linked)"
            )),
        }
    }
}

impl Uploads {
    /// Aborts the process if it was told to crash at `point`.
    pub(super) fn fault(&self, point: FaultPoint) {
        if self.fault == Some(point) {
            eprintln!("cargohold: test fault: crashing after {point:?}");
            std::process::abort();
        }
    }
}
