//! Multipart uploads on the filesystem: parts are files in `.multipart/<id>/`, joined by
//! the kernel (`copy_file_range`) when the upload completes.

use std::io;
use std::path::Path;
use std::time::SystemTime;

use index_format::StorageKey;
use sha2::{Digest as _, Sha256};

use super::{FsStore, MULTIPART_META, Sidecar, io_err};
use crate::store::{
    ByteStream, CompletedPart, MultipartId, ObjectInfo, PutCondition, PutMeta, StoreError,
};

impl FsStore {
    /// Aborts multipart uploads older than `before`, removes temp files killed writers left
    /// and empty session folders.
    pub(super) async fn mp_remove_leftovers(
        &self,
        before: SystemTime,
    ) -> Result<usize, StoreError> {
        let root = self.root.clone();
        let removed = tokio::task::spawn_blocking(move || {
            let temps = super::remove_stale_temps(&root).unwrap_or(0);
            let dirs = super::remove_empty_dirs(&root.join("uploads"))
                + super::remove_empty_dirs(&root.join(".meta").join("uploads"));
            temps + dirs
        })
        .await
        .unwrap_or(0);
        Ok(removed + self.mp_abort_stale(before).await?)
    }

    async fn mp_abort_stale(&self, before: SystemTime) -> Result<usize, StoreError> {
        let dir = self.root.join(".multipart");
        tokio::task::spawn_blocking(move || -> io::Result<usize> {
            let mut aborted = 0;
            for entry in std::fs::read_dir(&dir)?.flatten() {
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t < before);
                if old && std::fs::remove_dir_all(entry.path()).is_ok() {
                    aborted += 1;
                }
            }
            Ok(aborted)
        })
        .await
        .map_err(|e| StoreError::Io {
            key: ".multipart".into(),
            source: io::Error::other(e),
        })?
        .map_err(|source| StoreError::Io {
            key: ".multipart".into(),
            source,
        })
    }

    pub(super) async fn mp_create(
        &self,
        key: &StorageKey,
        meta: PutMeta,
    ) -> Result<MultipartId, StoreError> {
        let k = key.key();
        let id = MultipartId(uuid::Uuid::new_v4().to_string());
        let dir = self.multipart_dir(&id)?;
        tokio::fs::create_dir_all(&dir).await.map_err(io_err(&k))?;
        // The completed object carries the metadata given here, as on S3.
        let meta = Sidecar {
            size: 0,
            etag: String::new(),
            content_type: meta.content_type,
            cache_control: meta.cache_control,
            digest: meta.digest,
        };
        let bytes = serde_json::to_vec(&meta).map_err(|e| StoreError::Io {
            key: k.clone(),
            source: io::Error::other(e),
        })?;
        tokio::fs::write(dir.join(MULTIPART_META), bytes)
            .await
            .map_err(io_err(&k))?;
        Ok(id)
    }

    pub(super) async fn mp_upload_part(
        &self,
        key: &StorageKey,
        upload: &MultipartId,
        number: u32,
        body: ByteStream,
        size: Option<u64>,
    ) -> Result<CompletedPart, StoreError> {
        let k = key.key();
        let dir = self.multipart_dir(upload)?;
        if number == 0 || !tokio::fs::try_exists(&dir).await.unwrap_or(false) {
            return Err(StoreError::NoSuchUpload {
                key: k,
                upload: upload.0.clone(),
            });
        }
        let (temp, written, _) = self.write_temp(&k, body, false).await?;
        if let Some(size) = size.filter(|&s| s != written) {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(StoreError::InvalidPart {
                key: k,
                message: format!("part {number}: expected {size} bytes, got {written}"),
            });
        }
        tokio::fs::rename(&temp, dir.join(number.to_string()))
            .await
            .map_err(io_err(&k))?;
        // Parts are never hashed twice: the ETag only has to name this write.
        let etag = format!("{number}-{written}-{}", uuid::Uuid::new_v4().simple());
        tokio::fs::write(dir.join(format!("{number}.etag")), &etag)
            .await
            .map_err(io_err(&k))?;
        Ok(CompletedPart {
            number,
            etag,
            size: written,
        })
    }

    /// Joins the parts into the object. Crash-safe at every instant: the parts stay in
    /// `.multipart/<id>/` until the object is published, so an interrupted completion can be
    /// run again; once published, the folder goes and the upload is unknown, as on S3.
    pub(super) async fn mp_complete(
        &self,
        key: &StorageKey,
        upload: &MultipartId,
        parts: &[CompletedPart],
    ) -> Result<ObjectInfo, StoreError> {
        let k = key.key();
        let dir = self.multipart_dir(upload)?;
        if !tokio::fs::try_exists(&dir).await.unwrap_or(false) {
            return Err(StoreError::NoSuchUpload {
                key: k,
                upload: upload.0.clone(),
            });
        }
        self.check_parts(&k, &dir, parts).await?;
        let temp = self.temp_path();
        let numbers: Vec<u32> = parts.iter().map(|p| p.number).collect();
        let (t, d) = (temp.clone(), dir.clone());
        let size = tokio::task::spawn_blocking(move || join_parts(&d, &numbers, &t))
            .await
            .map_err(|e| StoreError::Io {
                key: k.clone(),
                source: io::Error::other(e),
            })?
            .map_err(io_err(&k))?;
        let meta = upload_meta(key, &dir).await;
        let sidecar = Sidecar {
            size,
            etag: multipart_etag(parts),
            content_type: meta.content_type,
            cache_control: meta.cache_control,
            digest: meta.digest,
        };
        let info = self.publish(&k, temp, sidecar, &PutCondition::None).await?;
        let _ = tokio::fs::remove_dir_all(&dir).await;
        Ok(info)
    }

    /// R2's equal-size rule (when enforced), and every part present with its ETag.
    async fn check_parts(
        &self,
        key: &str,
        dir: &Path,
        parts: &[CompletedPart],
    ) -> Result<(), StoreError> {
        let uneven = self.part_size.and_then(|n| {
            let last = parts.len().saturating_sub(1);
            parts[..last].iter().find(|p| p.size != n).map(|p| (p, n))
        });
        if let Some((p, n)) = uneven {
            return Err(StoreError::InvalidPart {
                key: key.to_owned(),
                message: format!(
                    "part {} has {} bytes; every part but the last must have {n}",
                    p.number, p.size
                ),
            });
        }
        for p in parts {
            let stored = tokio::fs::read_to_string(dir.join(format!("{}.etag", p.number)))
                .await
                .unwrap_or_default();
            if stored != p.etag {
                return Err(StoreError::InvalidPart {
                    key: key.to_owned(),
                    message: format!("part {} is missing or its ETag differs", p.number),
                });
            }
        }
        Ok(())
    }

    pub(super) async fn mp_abort(
        &self,
        _key: &StorageKey,
        upload: &MultipartId,
    ) -> Result<(), StoreError> {
        let dir = self.multipart_dir(upload)?;
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Io {
                key: upload.0.clone(),
                source,
            }),
        }
    }
}

/// Writes the parts, in order, into `out` (synced); returns the size. A single part is
/// hard-linked, not moved: it must survive until the object is published.
fn join_parts(dir: &Path, numbers: &[u32], out: &Path) -> io::Result<u64> {
    if let [only] = numbers {
        let part = dir.join(only.to_string());
        std::fs::hard_link(&part, out).or_else(|_| std::fs::copy(&part, out).map(drop))?;
        let file = std::fs::File::open(out)?;
        file.sync_all()?;
        return Ok(file.metadata()?.len());
    }
    let mut file = std::fs::File::create(out)?;
    let mut size = 0;
    for n in numbers {
        // std::io::copy between files uses copy_file_range: no bytes through us.
        size += io::copy(
            &mut std::fs::File::open(dir.join(n.to_string()))?,
            &mut file,
        )?;
    }
    file.sync_all()?;
    Ok(size)
}

/// The ETag of a completed upload: S3's shape, a hash of the part ETags and their count.
fn multipart_etag(parts: &[CompletedPart]) -> String {
    let mut hash = Sha256::new();
    for p in parts {
        hash.update(p.etag.as_bytes());
    }
    format!("{}-{}", hex::encode(&hash.finalize()[..16]), parts.len())
}

/// The content type and cache-control given at `create`; uploads created before the
/// metadata was kept get the layout's.
async fn upload_meta(key: &StorageKey, dir: &Path) -> PutMeta {
    match tokio::fs::read(dir.join(MULTIPART_META))
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<Sidecar>(&b).ok())
    {
        Some(m) => PutMeta {
            content_type: m.content_type,
            cache_control: m.cache_control,
            digest: m.digest,
        },
        None => PutMeta::new(key, None),
    }
}
