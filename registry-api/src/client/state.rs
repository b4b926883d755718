//! What the client keeps between runs in its state directory (`--state-dir`, by default
//! [`default_state_dir`](super::default_state_dir)), so a killed push resumes: a chunked
//! upload's session URL (`upload.rs`), a direct multipart upload's session and its
//! finished parts (`direct.rs`). One file per registry, repository and blob. Losing a
//! file only costs re-sending that blob, so write failures are logged, not fatal.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use index_format::Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::repository::Repository;

/// One blob's record.
pub(super) struct SessionFile {
    path: PathBuf,
}

impl SessionFile {
    /// The record of `kind` (`""` for chunked uploads, whose files predate kinds) for
    /// `digest` in `repo`.
    pub(super) fn new(dir: &Path, repo: &Repository, digest: &Digest, kind: &str) -> Self {
        let id = format!("{kind}{}/{}@{digest}", repo.host(), repo.name());
        Self {
            path: dir.join(hex::encode(Sha256::digest(id.as_bytes()))),
        }
    }

    pub(super) fn load(&self) -> Option<String> {
        std::fs::read_to_string(&self.path)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    /// Replaces the record.
    pub(super) fn save(&self, content: &[u8]) {
        let write = || {
            if let Some(d) = self.path.parent() {
                std::fs::create_dir_all(d)?;
            }
            // Renamed into place: a run killed mid-write leaves the old record, not an
            // empty one.
            let tmp = self.path.with_extension("tmp");
            std::fs::write(&tmp, content)?;
            std::fs::rename(&tmp, &self.path)
        };
        self.log(write());
    }

    /// Adds a line. A run killed mid-append leaves a torn last line, which `load`ers skip.
    pub(super) fn append(&self, line: &str) {
        let write = || {
            let mut f = std::fs::OpenOptions::new().append(true).open(&self.path)?;
            f.write_all(format!("{line}\n").as_bytes())
        };
        self.log(write());
    }

    fn log(&self, result: std::io::Result<()>) {
        if let Err(e) = result {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot record the upload session");
        }
    }

    pub(super) fn clear(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A direct multipart upload as recorded: its session and plan on the first line (JSON),
/// then a line `<number> <sha256 hex> <etag>` per part the bucket acknowledged.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct DirectRecord {
    pub(super) session: DirectSession,
    /// Finished parts: number → (SHA-256 hex, ETag).
    pub(super) parts: BTreeMap<u32, (String, String)>,
}

/// The first line of a [`DirectRecord`].
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct DirectSession {
    pub(super) id: String,
    pub(super) part_size: u64,
}

impl DirectRecord {
    pub(super) fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        let session = serde_json::from_str(lines.next()?).ok()?;
        let parts = lines
            .filter_map(|l| {
                let mut words = l.split(' ');
                let number = words.next()?.parse().ok()?;
                let (sha, etag) = (words.next()?, words.next()?);
                (sha.len() == 64 && words.next().is_none())
                    .then(|| (number, (sha.to_owned(), etag.to_owned())))
            })
            .collect();
        Some(Self { session, parts })
    }

    /// The first line, for a new record.
    pub(super) fn header(session: &DirectSession) -> String {
        let json = serde_json::to_string(session).unwrap_or_default();
        format!("{json}\n")
    }

    /// The line of a finished part.
    pub(super) fn part_line(number: u32, sha256: &str, etag: &str) -> String {
        format!("{number} {sha256} {etag}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_and_a_torn_last_line_is_skipped() {
        let session = DirectSession {
            id: "abc".into(),
            part_size: 5 << 20,
        };
        let sha = "a".repeat(64);
        let text = format!(
            "{}{}\n{}\n2 {}",
            DirectRecord::header(&session),
            DirectRecord::part_line(3, &sha, "e3"),
            DirectRecord::part_line(1, &sha, "e1"),
            &sha[..10],
        );
        let record = DirectRecord::parse(&text).expect("parses");
        assert_eq!(record.session, session);
        let numbers: Vec<_> = record.parts.keys().copied().collect();
        assert_eq!(numbers, [1, 3]);
        assert_eq!(record.parts[&3], (sha, "e3".to_owned()));
        assert_eq!(DirectRecord::parse("not json\n1 x y"), None);
    }
}
