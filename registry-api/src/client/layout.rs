//! OCI image layout directories (image-spec `image-layout.md`): `oci-layout`, `index.json`,
//! `blobs/<alg>/<hex>`.

use std::path::{Path, PathBuf};

use blob_gateway::ByteStream;
use bytes::Bytes;
use futures::TryStreamExt;
use index_format::Digest;
use index_format::manifest::{Descriptor, sniff_media_type};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use super::ClientError;
use super::progress::BlobProgress;
use super::repository::Manifest;

/// The annotation that names an `index.json` entry (its tag).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexJson {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

impl Layout {
    /// The layout at `root`, which must have an `oci-layout` file.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, ClientError> {
        let root = root.into();
        if !root.join("oci-layout").is_file() {
            return Err(ClientError::Input(format!(
                "{}: not an OCI image layout (no oci-layout file)",
                root.display()
            )));
        }
        Ok(Self { root })
    }

    /// The layout at `root`, created (empty) if absent.
    pub fn create(root: impl Into<PathBuf>) -> Result<Self, ClientError> {
        let root = root.into();
        let io = |p: &Path, e| ClientError::io(p.display(), e);
        std::fs::create_dir_all(root.join("blobs/sha256")).map_err(|e| io(&root, e))?;
        let marker = root.join("oci-layout");
        if !marker.exists() {
            std::fs::write(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)
                .map_err(|e| io(&marker, e))?;
        }
        let layout = Self { root };
        if !layout.root.join("index.json").exists() {
            layout.write_index(&IndexJson {
                schema_version: 2,
                media_type: Some(INDEX_MEDIA_TYPE.into()),
                manifests: Vec::new(),
            })?;
        }
        Ok(layout)
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `digest` is (or would be).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    fn read_index(&self) -> Result<IndexJson, ClientError> {
        let path = self.root.join("index.json");
        let text = std::fs::read(&path).map_err(|e| ClientError::io(path.display(), e))?;
        serde_json::from_slice(&text)
            .map_err(|e| ClientError::Input(format!("{}: {e}", path.display())))
    }

    fn write_index(&self, index: &IndexJson) -> Result<(), ClientError> {
        let path = self.root.join("index.json");
        let bytes = serde_json::to_vec_pretty(index)
            .map_err(|e| ClientError::Input(format!("index.json: {e}")))?;
        let tmp = self.root.join(".index.json.tmp");
        std::fs::write(&tmp, bytes).map_err(|e| ClientError::io(tmp.display(), e))?;
        std::fs::rename(&tmp, &path).map_err(|e| ClientError::io(path.display(), e))
    }

    /// The manifest `reference` names: a digest; or a tag (an `index.json` entry's
    /// `ref.name`); or, when empty, the layout's only entry.
    pub fn manifest(&self, reference: &str) -> Result<Option<Manifest>, ClientError> {
        if let Ok(digest) = Digest::new(reference) {
            return self.manifest_blob(&digest);
        }
        let index = self.read_index()?;
        let named = |d: &&Descriptor| {
            d.annotations
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .is_some_and(|n| n == reference)
        };
        let entry = match index.manifests.iter().find(named) {
            Some(e) => e,
            None if index.manifests.len() == 1 => &index.manifests[0],
            None if reference.is_empty() => {
                return Err(ClientError::Input(format!(
                    "{}: {} images; say which by tag",
                    self.root.display(),
                    index.manifests.len()
                )));
            }
            None => return Ok(None),
        };
        self.manifest_blob(&entry.digest)
    }

    fn manifest_blob(&self, digest: &Digest) -> Result<Option<Manifest>, ClientError> {
        let path = self.blob_path(digest);
        let bytes = match std::fs::read(&path) {
            Ok(b) => Bytes::from(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ClientError::io(path.display(), e)),
        };
        let media_type = sniff_media_type(&bytes).as_str().to_owned();
        Ok(Some(Manifest::new(bytes, media_type)))
    }

    /// The blob's size when the layout has it.
    pub fn blob_size(&self, digest: &Digest) -> Option<u64> {
        std::fs::metadata(self.blob_path(digest))
            .ok()
            .map(|m| m.len())
    }

    /// Writes a blob from `stream`, checking its digest and size before it appears under
    /// its name (a temp file renamed), so an interrupted pull leaves no wrong blob.
    pub async fn write_blob(
        &self,
        desc: &Descriptor,
        mut stream: ByteStream,
        progress: &BlobProgress,
    ) -> Result<(), ClientError> {
        let path = self.blob_path(&desc.digest);
        let tmp = path.with_extension(format!("part-{}", uuid::Uuid::new_v4()));
        let io = |e| ClientError::io(tmp.display(), e);
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io)?;
        }
        let mut file = tokio::fs::File::create(&tmp).await.map_err(io)?;
        let mut hash = Sha256::new();
        let mut size = 0u64;
        let result = async {
            while let Some(chunk) = stream.try_next().await.map_err(io)? {
                hash.update(&chunk);
                size += chunk.len() as u64;
                progress.inc(chunk.len() as u64);
                file.write_all(&chunk).await.map_err(io)?;
            }
            file.flush().await.map_err(io)?;
            let actual = Digest::sha256(&hash.finalize().into());
            if actual != desc.digest || size != desc.size {
                return Err(ClientError::DigestMismatch {
                    digest: desc.digest.to_string(),
                    actual: format!("{actual} ({size} bytes)"),
                });
            }
            tokio::fs::rename(&tmp, &path).await.map_err(io)
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    /// Writes a small blob (a manifest, a config) from memory.
    pub fn write_small(&self, digest: &Digest, bytes: &[u8]) -> Result<(), ClientError> {
        let path = self.blob_path(digest);
        std::fs::write(&path, bytes).map_err(|e| ClientError::io(path.display(), e))
    }

    /// Lists `manifest` in `index.json`, named `tag` if given (replacing the entry that had
    /// the name); an unnamed manifest is listed once.
    pub fn add_to_index(&self, manifest: &Manifest, tag: Option<&str>) -> Result<(), ClientError> {
        self.write_small(&manifest.digest, &manifest.bytes)?;
        let mut index = self.read_index()?;
        let mut desc = manifest.descriptor();
        let name = |d: &Descriptor| {
            d.annotations
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .cloned()
        };
        match tag {
            Some(t) => {
                index.manifests.retain(|d| name(d).as_deref() != Some(t));
                desc.annotations = Some([(REF_NAME.to_owned(), t.to_owned())].into());
            }
            None if index.manifests.iter().any(|d| d.digest == desc.digest) => return Ok(()),
            None => {}
        }
        index.manifests.push(desc);
        self.write_index(&index)
    }

    /// Adds an entry to `index.json` as is (used when converting an archive).
    pub(super) fn push_entry(&self, desc: Descriptor) -> Result<(), ClientError> {
        let mut index = self.read_index()?;
        index.manifests.push(desc);
        self.write_index(&index)
    }
}
