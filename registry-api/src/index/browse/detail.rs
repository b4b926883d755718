//! A manifest's browse detail, built from its bytes, its config blob (read here, capped)
//! and, for an index, its platforms' details.

use index_format::browse::{
    BROWSE_VERSION, ConfigSummary, ManifestDetail, PlatformSummary, platform_name,
};
use index_format::manifest::{Descriptor, ParsedManifest};
use index_format::{Digest, RepoName, StorageKey};

use crate::index::{Index, IndexError, found};

/// Largest config blob summarized; image configs are a few KiB, and a bigger one only
/// means its page shows no config.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// `os/architecture[/variant]` of an index entry's `platform` object.
fn platform_of(d: &Descriptor) -> String {
    let field = |k: &str| {
        d.platform
            .as_ref()
            .and_then(|p| p.get(k))
            .and_then(|v| v.as_str())
    };
    platform_name(field("os"), field("architecture"), field("variant"))
}

impl Index {
    /// The detail of the manifest `bytes` (parsed as `parsed`), stored as `digest`.
    pub(crate) async fn manifest_detail(
        &self,
        repo: &RepoName,
        digest: &Digest,
        bytes: &[u8],
        parsed: &ParsedManifest,
    ) -> Result<ManifestDetail, IndexError> {
        let manifest_size = bytes.len() as u64;
        let mut detail = ManifestDetail {
            version: BROWSE_VERSION,
            digest: digest.clone(),
            media_type: parsed.media_type.as_str().to_owned(),
            artifact_type: parsed.artifact_type.clone(),
            manifest_size,
            created: None,
            size: manifest_size,
            annotations: parsed.annotations.clone().unwrap_or_default(),
            subject: parsed.subject.as_ref().map(|s| s.digest.clone()),
            layers: Vec::new(),
            config: None,
            platforms: Vec::new(),
            tags: Vec::new(),
        };
        if parsed.media_type.is_index() {
            for child in &parsed.references {
                let key = StorageKey::BrowseManifest(repo.clone(), child.digest.clone());
                let known = self.read::<ManifestDetail>(&key).await?;
                if detail.created.is_none() {
                    detail.created = known.as_ref().and_then(|k| k.created.clone());
                }
                let size = known.map_or(child.size, |k| k.size);
                detail.size += size;
                detail.platforms.push(PlatformSummary {
                    platform: platform_of(child),
                    digest: child.digest.clone(),
                    media_type: child.media_type.clone(),
                    size,
                });
            }
            return Ok(detail);
        }
        let Some((config, layers)) = parsed.references.split_first() else {
            return Ok(detail);
        };
        detail.size += parsed.references.iter().map(|d| d.size).sum::<u64>();
        detail.layers = layers.to_vec();
        detail.config = self.config_summary(config).await?;
        detail.created = detail.config.as_ref().and_then(|c| c.created.clone());
        Ok(detail)
    }

    /// The summary of an image config blob; `None` when it is missing, too big, or not
    /// an image config.
    async fn config_summary(
        &self,
        config: &Descriptor,
    ) -> Result<Option<ConfigSummary>, IndexError> {
        if config.size > MAX_CONFIG_BYTES || config.is_foreign() {
            return Ok(None);
        }
        let key = StorageKey::Blob(config.digest.clone());
        let read = found(self.store.read(&key, MAX_CONFIG_BYTES).await)?;
        Ok(read.and_then(|(bytes, _)| ConfigSummary::parse(config, &bytes)))
    }
}
