//! Whether a direct multipart upload's digest is computed by the store (in a checksummed
//! publishing copy: see [`Presign::copies_checksums`]) or read back through the API.
//! Decided by a probe at the first multipart completion, once per process; a store the
//! probe did not prove, or a probe that failed, means a read.

use tokio::sync::OnceCell;

use crate::store::Presign;

/// The store-hashing decision of a server.
#[derive(Debug, Default)]
pub struct CopyChecksums {
    enabled: bool,
    proven: OnceCell<bool>,
}

impl CopyChecksums {
    /// `enabled`: the store may be asked (after the probe); `false` always reads back.
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            proven: OnceCell::new(),
        }
    }

    /// Whether to let the store hash: probes `presigner` the first time (a failed probe
    /// is retried at the next completion) and says what it found.
    pub async fn proven(&self, presigner: &dyn Presign) -> bool {
        if !self.enabled {
            return false;
        }
        let probe = || async {
            let proven = presigner.copies_checksums().await?;
            match proven {
                true => tracing::info!(
                    "the store computes the SHA-256 of a whole object it copies: direct multipart uploads are verified without reading them"
                ),
                false => tracing::warn!(
                    "the store does not return the SHA-256 of a whole multipart object it copies: direct multipart uploads are verified by reading them back"
                ),
            }
            Ok::<_, crate::StoreError>(proven)
        };
        match self.proven.get_or_try_init(probe).await {
            Ok(proven) => *proven,
            Err(e) => {
                tracing::warn!(error = %e, "probing checksummed copies failed: this upload is verified by reading it back");
                false
            }
        }
    }
}
