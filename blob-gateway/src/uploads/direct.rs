//! Direct uploads: the client writes a blob's bytes to the store itself, through presigned
//! requests signed with the bytes' SHA-256, and the API only plans, verifies and publishes.
//!
//! A direct session is an ordinary session (`uploads/<id>/state.json`, data at
//! `uploads/<id>/data`, perhaps a multipart upload), so the upload GC expires abandoned
//! ones like any other, aborting the multipart and removing the object. What the client
//! promised (digest, size, part size) is in [`UploadState::direct`]; the standard
//! `PATCH`/`PUT` do not accept such a session.
//!
//! Completing checks before publishing: the object's size; for a single object the
//! store's recorded SHA-256 (when the store enforces checksums) or else a streaming read;
//! for a multipart object always a streaming read, since the store's checksum of a
//! multipart object is a checksum of the parts' checksums. A digest that does not match
//! discards the session: nothing reaches `blobs/`.

use std::time::Duration;

use index_format::{Digest, DigestAlgorithm, RepoName, StorageKey, UploadId};
use serde::{Deserialize, Serialize};

use super::{PublishedUpload, StoredBlob, UploadError, UploadState, Uploads, new_id};
use crate::store::{
    ChecksummedPart, Presign, PresignedRequest, PutCondition, StoreError, UploadedPart,
};

/// What a direct upload's client promised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectUpload {
    /// The blob's digest (SHA-256).
    pub digest: Digest,
    /// The blob's size in bytes.
    pub size: u64,
    /// The size of every part but the last; `None` for one `PutObject`.
    pub part_size: Option<u64>,
}

impl DirectUpload {
    /// How many parts (1 for a single object).
    pub fn parts(&self) -> u32 {
        match self.part_size {
            Some(p) if p > 0 => u32::try_from(self.size.div_ceil(p).max(1)).unwrap_or(u32::MAX),
            _ => 1,
        }
    }

    /// The length of part `number`, when the plan has it.
    pub fn part_len(&self, number: u32) -> Option<u64> {
        if number == 0 || number > self.parts() {
            return None;
        }
        let Some(p) = self.part_size else {
            return Some(self.size);
        };
        let start = p * u64::from(number - 1);
        Some(p.min(self.size - start))
    }

    fn sha256(&self) -> Result<[u8; 32], UploadError> {
        let mut out = [0u8; 32];
        match self.digest.algorithm() {
            DigestAlgorithm::Sha256
                if hex::decode_to_slice(self.digest.hex(), &mut out).is_ok() =>
            {
                Ok(out)
            }
            _ => Err(invalid(
                &self.digest,
                "direct uploads take sha256 digests".into(),
            )),
        }
    }
}

fn invalid(what: impl std::fmt::Display, message: String) -> UploadError {
    UploadError::Store(StoreError::InvalidPart {
        key: what.to_string(),
        message,
    })
}

impl Uploads {
    fn presigner(&self) -> Result<&dyn Presign, UploadError> {
        self.store.presigner().ok_or_else(|| {
            UploadError::Store(StoreError::Io {
                key: String::new(),
                source: std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "this store cannot presign uploads",
                ),
            })
        })
    }

    /// A direct session of `repo`: its state and plan, the key its bytes go to, and the
    /// presigner that reaches them.
    async fn direct_session(
        &self,
        repo: &RepoName,
        id: &UploadId,
    ) -> Result<DirectSession<'_>, UploadError> {
        let (state, _) = self.status(repo, id).await?;
        let plan = state
            .direct
            .clone()
            .ok_or_else(|| UploadError::Unknown(id.clone()))?;
        Ok(DirectSession {
            state,
            plan,
            data: StorageKey::UploadData(id.clone()),
            presigner: self.presigner()?,
        })
    }

    /// Opens a direct session of `repo` for `plan` (a multipart upload when it has parts).
    pub async fn start_direct(
        &self,
        repo: &RepoName,
        plan: DirectUpload,
    ) -> Result<UploadId, UploadError> {
        plan.sha256()?;
        let id = new_id();
        let multipart = match plan.part_size {
            Some(_) => Some(
                self.presigner()?
                    .create_checksummed_multipart(&StorageKey::UploadData(id.clone()))
                    .await?,
            ),
            None => None,
        };
        let state = UploadState {
            multipart,
            direct: Some(plan),
            ..UploadState::fresh(repo)
        };
        self.save(&id, &state, PutCondition::IfNoneMatch).await?;
        Ok(id)
    }

    /// The plan of a direct session of `repo`.
    pub async fn direct_plan(
        &self,
        repo: &RepoName,
        id: &UploadId,
    ) -> Result<DirectUpload, UploadError> {
        let (state, _) = self.status(repo, id).await?;
        state.direct.ok_or_else(|| UploadError::Unknown(id.clone()))
    }

    /// A direct session's plan and the parts the store holds for it, so a client that
    /// was interrupted sends only the others. A single object is one part, listed once
    /// it is written. An upload the store no longer has (collected) is unknown.
    pub async fn direct_status(
        &self,
        repo: &RepoName,
        id: &UploadId,
    ) -> Result<(DirectUpload, Vec<UploadedPart>), UploadError> {
        let DirectSession {
            state,
            plan,
            data,
            presigner,
        } = self.direct_session(repo, id).await?;
        let parts = match &state.multipart {
            Some(multipart) => match presigner.list_checksummed(&data, multipart).await {
                Ok(parts) => parts,
                Err(StoreError::NoSuchUpload { .. }) => {
                    return Err(UploadError::Unknown(id.clone()));
                }
                Err(e) => return Err(e.into()),
            },
            None => match self.store.head(&data).await {
                Ok(info) => vec![UploadedPart {
                    number: 1,
                    etag: info.etag.0,
                    size: info.size,
                    sha256: presigner.stored_sha256(&data).await?,
                }],
                Err(e) if e.is_not_found() => Vec::new(),
                Err(e) => return Err(e.into()),
            },
        };
        Ok((plan, parts))
    }

    /// Presigned requests for `parts` of a direct session (for a single object, the one
    /// `PutObject`; `parts` is then ignored), valid for `expires`.
    pub async fn presign_direct(
        &self,
        repo: &RepoName,
        id: &UploadId,
        parts: &[ChecksummedPart],
        expires: Duration,
    ) -> Result<Vec<PresignedRequest>, UploadError> {
        let DirectSession {
            state,
            plan,
            data,
            presigner,
        } = self.direct_session(repo, id).await?;
        let Some(multipart) = &state.multipart else {
            let put = presigner
                .presign_put(&data, plan.size, &plan.sha256()?, expires)
                .await?;
            return Ok(vec![put]);
        };
        let mut out = Vec::with_capacity(parts.len());
        for part in parts {
            let len = plan.part_len(part.number).ok_or_else(|| {
                invalid(
                    id,
                    format!(
                        "part {} is not in the plan of {} parts",
                        part.number,
                        plan.parts()
                    ),
                )
            })?;
            out.push(
                presigner
                    .presign_part(&data, multipart, part, len, expires)
                    .await?,
            );
        }
        Ok(out)
    }

    /// Completes a direct session: assembles the parts (`parts` with their ETags and
    /// checksums; none for a single object), verifies size and digest, and publishes the
    /// blob. `trust_store_checksum`: the store enforces `x-amz-checksum-sha256`, so a
    /// single object's recorded checksum proves its bytes without reading them.
    pub async fn finish_direct(
        &self,
        repo: &RepoName,
        id: &UploadId,
        parts: &[ChecksummedPart],
        trust_store_checksum: bool,
    ) -> Result<PublishedUpload, UploadError> {
        let DirectSession {
            state,
            plan,
            data,
            presigner,
        } = self.direct_session(repo, id).await?;
        if let Some(multipart) = &state.multipart {
            if parts.len() != plan.parts() as usize {
                let message = format!("{} parts given, the plan has {}", parts.len(), plan.parts());
                return Err(invalid(id, message));
            }
            match presigner
                .complete_checksummed(&data, multipart, parts)
                .await
            {
                Ok(()) => {}
                // A retried completion: the object is already assembled.
                Err(StoreError::NoSuchUpload { .. }) if self.store.head(&data).await.is_ok() => {}
                Err(e) => return Err(e.into()),
            }
        }
        let size = match self.store.head(&data).await {
            Ok(info) => info.size,
            // Nothing uploaded yet: the session stays for the client to do so.
            Err(e) if e.is_not_found() => {
                return Err(UploadError::SizeMismatch {
                    announced: plan.size,
                    received: 0,
                });
            }
            Err(e) => return Err(e.into()),
        };
        if size != plan.size {
            self.discard(id, &state).await?;
            return Err(UploadError::SizeMismatch {
                announced: plan.size,
                received: size,
            });
        }
        let proven = state.multipart.is_none()
            && trust_store_checksum
            && presigner.stored_sha256(&data).await? == Some(plan.sha256()?);
        if !proven {
            let computed = Digest::sha256(&presigner.read_sha256(&data).await?);
            if computed != plan.digest {
                self.discard(id, &state).await?;
                return Err(UploadError::DigestMismatch {
                    expected: plan.digest,
                    computed,
                });
            }
        }
        self.publish(id, &data, &state, true, &plan.digest).await?;
        let blob = StoredBlob {
            digest: plan.digest,
            size,
        };
        Ok(PublishedUpload::new(self.clone(), id.clone(), state, blob))
    }
}

/// What [`Uploads::direct_session`] finds.
struct DirectSession<'a> {
    state: UploadState,
    plan: DirectUpload,
    data: StorageKey,
    presigner: &'a dyn Presign,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_blob_with_equal_parts_and_a_shorter_last() {
        let d = Digest::sha256(&[0; 32]);
        let plan = DirectUpload {
            digest: d.clone(),
            size: 25,
            part_size: Some(10),
        };
        assert_eq!(plan.parts(), 3);
        let lens: Vec<_> = (0..=4).map(|n| plan.part_len(n)).collect();
        assert_eq!(lens, [None, Some(10), Some(10), Some(5), None]);
        let single = DirectUpload {
            digest: d,
            size: 7,
            part_size: None,
        };
        assert_eq!((single.parts(), single.part_len(1)), (1, Some(7)));
    }
}
