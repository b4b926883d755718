//! Direct uploads: the client writes a blob's bytes to the store itself, through presigned
//! requests signed with the bytes' SHA-256, and the API only plans, verifies and publishes.
//!
//! A direct session is an ordinary session (`uploads/<id>/state.json`), so the upload GC
//! expires abandoned ones like any other. What the client promised (digest, size, part
//! size) is in [`UploadState::direct`]; the standard `PATCH`/`PUT` do not accept such a
//! session. Where the bytes go:
//!
//! - **In place** ([`DirectUpload::in_place`]: one object, on a store that enforces
//!   `x-amz-checksum-sha256`): straight to `blobs/<alg>/<hex>`. Only bytes that hash to
//!   the digest can land there, so overwriting a blob that was already stored (perhaps for
//!   a repository the caller cannot read) changes nothing, and the PUT carries no
//!   condition (a `412` would tell the caller the blob exists). The PUT signs the session
//!   id into the object's metadata: completing links the blob only if this session wrote
//!   it, so a session cannot claim a blob it never had the bytes of. Completing is a
//!   `HEAD` (size, recorded checksum, writer): no copy. An abandoned session leaves at
//!   most a complete, verified blob nothing links.
//! - **Staged** (parts, or a store that does not enforce checksums): to `uploads/<id>/data`
//!   (perhaps a multipart upload; the upload GC aborts it and removes the object).
//!   Completing checks the size, then the store's recorded SHA-256 (a single object, where
//!   the store enforces checksums). A multipart object's checksum is a checksum of its
//!   parts' checksums: its SHA-256 is computed by the store in the publishing copy to
//!   `blobs/` (one checksummed part, up to 5 GiB, where a probe proved the store returns
//!   the whole object's; see [`CopyChecksums`]), or else by a streaming read while the
//!   publishing copy runs. Either copy is completed only for the digest: a digest that
//!   does not match discards the session, and nothing reaches `blobs/`.

use std::time::Duration;

use index_format::{Digest, DigestAlgorithm, RepoName, StorageKey, UploadId};
use serde::{Deserialize, Serialize};

use super::copysum::CopyChecksums;
use super::{PublishedUpload, StoredBlob, UploadError, UploadState, Uploads, new_id};
use crate::store::{
    ChecksummedPart, Presign, PresignedRequest, PutCondition, StoreError, StoredChecksum,
    UploadedPart,
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
    /// The one `PutObject` goes straight to the blob's key (see the module's comment);
    /// only for a single object on a store that enforces checksums.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_place: bool,
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
        let data = match plan.in_place {
            true => StorageKey::Blob(plan.digest.clone()),
            false => StorageKey::UploadData(id.clone()),
        };
        Ok(DirectSession {
            state,
            plan,
            data,
            presigner: self.presigner()?,
        })
    }

    /// The single object of a direct session, once written. For an in-place session only
    /// if this session wrote it: the blob's key may hold an object from before, which the
    /// session must neither report nor claim.
    async fn written_object(
        &self,
        id: &UploadId,
        session: &DirectSession<'_>,
    ) -> Result<Option<StoredChecksum>, UploadError> {
        match session.presigner.stored_checksum(&session.data).await {
            Ok(o) if session.plan.in_place && o.writer.as_deref() != Some(id.as_str()) => Ok(None),
            Ok(o) => Ok(Some(o)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens a direct session of `repo` for `plan` (a multipart upload when it has parts).
    pub async fn start_direct(
        &self,
        repo: &RepoName,
        plan: DirectUpload,
    ) -> Result<UploadId, UploadError> {
        plan.sha256()?;
        if plan.in_place && plan.part_size.is_some() {
            let message = "only a single object is uploaded in place".into();
            return Err(invalid(&plan.digest, message));
        }
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
        let session = self.direct_session(repo, id).await?;
        let parts = match &session.state.multipart {
            Some(multipart) => match session
                .presigner
                .list_checksummed(&session.data, multipart)
                .await
            {
                Ok(parts) => parts,
                Err(StoreError::NoSuchUpload { .. }) => {
                    return Err(UploadError::Unknown(id.clone()));
                }
                Err(e) => return Err(e.into()),
            },
            None => match self.written_object(id, &session).await? {
                Some(o) => vec![UploadedPart {
                    number: 1,
                    etag: o.etag,
                    size: o.size,
                    sha256: o.sha256,
                }],
                None => Vec::new(),
            },
        };
        Ok((session.plan, parts))
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
                .presign_put(&data, plan.size, &plan.sha256()?, id.as_str(), expires)
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
    /// `copy_checksums`: whether the store may hash a multipart object by copying it.
    pub async fn finish_direct(
        &self,
        repo: &RepoName,
        id: &UploadId,
        parts: &[ChecksummedPart],
        trust_store_checksum: bool,
        copy_checksums: &CopyChecksums,
    ) -> Result<PublishedUpload, UploadError> {
        let session = self.direct_session(repo, id).await?;
        if session.plan.in_place {
            return self.finish_in_place(id, session).await;
        }
        let DirectSession {
            state,
            plan,
            data,
            presigner,
        } = session;
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
        let staged = match self.store.head(&data).await {
            Ok(info) => info,
            Err(e) if e.is_not_found() => return Err(nothing_uploaded(&plan)),
            Err(e) => return Err(e.into()),
        };
        if staged.size != plan.size {
            self.discard(id, &state).await?;
            return Err(UploadError::SizeMismatch {
                announced: plan.size,
                received: staged.size,
            });
        }
        let proven = state.multipart.is_none()
            && trust_store_checksum
            && presigner.stored_checksum(&data).await?.sha256 == Some(plan.sha256()?);
        if !proven {
            let blob = StorageKey::Blob(plan.digest.clone());
            let by_store = copy_checksums.proven(presigner).await;
            let sha256 = presigner
                .read_sha256_publishing(&data, &staged, &blob, &plan.sha256()?, by_store)
                .await?;
            let computed = Digest::sha256(&sha256);
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
            size: staged.size,
        };
        Ok(PublishedUpload::new(self.clone(), id.clone(), state, blob))
    }
}

impl Uploads {
    /// Completes an in-place session: the object at the blob's key is this session's and
    /// the store recorded the digest's SHA-256 for exactly the planned size; nothing is
    /// read or copied.
    async fn finish_in_place(
        &self,
        id: &UploadId,
        session: DirectSession<'_>,
    ) -> Result<PublishedUpload, UploadError> {
        let Some(object) = self.written_object(id, &session).await? else {
            return Err(nothing_uploaded(&session.plan));
        };
        let plan = session.plan;
        // A store that enforces checksums records the signed one; read only if it did not.
        let sha256 = match object.sha256 {
            Some(s) => s,
            None => session.presigner.read_sha256(&session.data).await?,
        };
        if object.size != plan.size || sha256 != plan.sha256()? {
            // Only a store that stopped enforcing checksums lets this through: what this
            // session wrote under the digest's name is not the digest's bytes.
            self.store.delete(&session.data).await?;
            self.discard(id, &session.state).await?;
            return Err(match object.size == plan.size {
                true => UploadError::DigestMismatch {
                    expected: plan.digest,
                    computed: Digest::sha256(&sha256),
                },
                false => UploadError::SizeMismatch {
                    announced: plan.size,
                    received: object.size,
                },
            });
        }
        let blob = StoredBlob {
            digest: plan.digest,
            size: object.size,
        };
        Ok(PublishedUpload::new(
            self.clone(),
            id.clone(),
            session.state,
            blob,
        ))
    }
}

/// Completing before any byte arrived: the session stays for the client to upload.
fn nothing_uploaded(plan: &DirectUpload) -> UploadError {
    UploadError::SizeMismatch {
        announced: plan.size,
        received: 0,
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
            in_place: false,
        };
        assert_eq!(plan.parts(), 3);
        let lens: Vec<_> = (0..=4).map(|n| plan.part_len(n)).collect();
        assert_eq!(lens, [None, Some(10), Some(10), Some(5), None]);
        let single = DirectUpload {
            digest: d,
            size: 7,
            part_size: None,
            in_place: true,
        };
        assert_eq!((single.parts(), single.part_len(1)), (1, Some(7)));
    }
}
