//! Image tarballs: `oci-archive` (an OCI layout in a tar, what `skopeo copy ...
//! oci-archive:` writes, and `docker save` since 25) and `docker-archive` (`manifest.json`
//! naming a config and layer tars, what `podman save` and older `docker save` write),
//! either possibly gzipped. Unpacked into a directory that becomes a [`Layout`].

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use flate2::read::GzDecoder;
use index_format::Digest;
use index_format::manifest::Descriptor;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::ClientError;
use super::layout::{Layout, REF_NAME};
use super::repository::Manifest;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Unpacks the tarball at `archive` into `dir` (which should be empty) and returns it as a
/// layout, converting a docker-archive's images into OCI manifests (config and layers are
/// kept byte for byte, so their digests do not change).
pub fn unpack_archive(archive: &Path, dir: &Path) -> Result<Layout, ClientError> {
    let io = |p: &Path, e| ClientError::io(p.display(), e);
    let mut file = BufReader::new(File::open(archive).map_err(|e| io(archive, e))?);
    let gzip = is_gzip(file.get_mut()).map_err(|e| io(archive, e))?;
    let reader: Box<dyn Read> = if gzip {
        Box::new(GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    // `unpack` refuses entries that would land outside `dir` (`..`, absolute paths).
    tar::Archive::new(reader)
        .unpack(dir)
        .map_err(|e| io(archive, e))?;
    if dir.join("oci-layout").is_file() {
        return Layout::open(dir);
    }
    if dir.join("manifest.json").is_file() {
        return convert_docker_archive(dir);
    }
    Err(ClientError::Input(format!(
        "{}: neither an OCI archive (oci-layout) nor a docker archive (manifest.json)",
        archive.display()
    )))
}

fn is_gzip(file: &mut File) -> std::io::Result<bool> {
    use std::io::{Seek, SeekFrom};
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(n == 2 && magic == [0x1f, 0x8b])
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn convert_docker_archive(dir: &Path) -> Result<Layout, ClientError> {
    let manifest_path = dir.join("manifest.json");
    let text =
        std::fs::read(&manifest_path).map_err(|e| ClientError::io(manifest_path.display(), e))?;
    let images: Vec<DockerImage> = serde_json::from_slice(&text)
        .map_err(|e| ClientError::Input(format!("{}: {e}", manifest_path.display())))?;
    let layout = Layout::create(dir)?;
    // A file may be named by several images: moved once, remembered after.
    let mut moved: HashMap<PathBuf, (Digest, u64, bool)> = HashMap::new();
    for image in images {
        let mut blob = |name: &str| -> Result<(Digest, u64, bool), ClientError> {
            let path = safe_join(dir, name)?;
            if let Some(found) = moved.get(&path) {
                return Ok(found.clone());
            }
            let found = hash_file(&path)?;
            let target = layout.blob_path(&found.0);
            if !target.exists() {
                std::fs::rename(&path, &target).map_err(|e| ClientError::io(path.display(), e))?;
            }
            moved.insert(path, found.clone());
            Ok(found)
        };
        let (config_digest, config_size, _) = blob(&image.config)?;
        let mut layers = Vec::new();
        for l in &image.layers {
            let (digest, size, gzip) = blob(l)?;
            let media_type = if gzip { LAYER_GZIP } else { LAYER_TAR };
            layers.push(descriptor(media_type, digest, size));
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config_digest, config_size),
            "layers": layers,
        });
        let bytes = serde_json::to_vec(&manifest)
            .map_err(|e| ClientError::Input(format!("manifest: {e}")))?;
        let manifest = Manifest::new(Bytes::from(bytes), OCI_MANIFEST.to_owned());
        layout.write_small(&manifest.digest, &manifest.bytes)?;
        let tags = image.repo_tags.unwrap_or_default();
        let tags: Vec<Option<String>> = match tags.is_empty() {
            true => vec![None],
            false => tags
                .iter()
                .map(|t| t.rsplit_once(':').map(|(_, tag)| tag.to_owned()))
                .collect(),
        };
        for tag in tags {
            let mut desc = manifest.descriptor();
            desc.annotations = tag.map(|t| [(REF_NAME.to_owned(), t)].into());
            layout.push_entry(desc)?;
        }
    }
    Ok(layout)
}

fn descriptor(media_type: &str, digest: Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: media_type.to_owned(),
        digest,
        size,
        urls: None,
        annotations: None,
        artifact_type: None,
        platform: None,
    }
}

/// `dir/name`, refusing names that leave `dir`.
fn safe_join(dir: &Path, name: &str) -> Result<PathBuf, ClientError> {
    let rel = Path::new(name);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(ClientError::Input(format!(
            "manifest.json names {name:?}, outside the archive"
        )));
    }
    Ok(dir.join(rel))
}

/// The file's digest and size, and whether it is gzipped.
fn hash_file(path: &Path) -> Result<(Digest, u64, bool), ClientError> {
    let io = |e| ClientError::io(path.display(), e);
    let mut file = File::open(path).map_err(io)?;
    let gzip = is_gzip(&mut file).map_err(io)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        size += n as u64;
    }
    Ok((Digest::sha256(&hash.finalize().into()), size, gzip))
}
