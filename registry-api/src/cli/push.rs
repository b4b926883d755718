//! `cargohold push <source> <registry>/<repo>:<tag>`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use registry_api::client::{Endpoint, ImageRef, Layout, copy_image, unpack_archive};

use super::ClientArgs;

/// `push` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// An OCI image layout directory, or a tarball (docker-archive or oci-archive, possibly
    /// gzipped).
    source: PathBuf,
    /// Where to: `registry/repository:tag`.
    destination: String,
    #[command(flatten)]
    client: ClientArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.client.client()?;
    let destination = ImageRef::parse(&args.destination)?;
    let tag = destination.tag.as_ref().map(|t| t.as_str().to_owned());
    // An archive is unpacked next to nothing else, and removed when the push ends.
    let unpacked = match args.source.is_dir() {
        true => None,
        false => Some(tempfile::tempdir().context("creating a directory to unpack into")?),
    };
    let layout = match &unpacked {
        None => Layout::open(&args.source)?,
        Some(dir) => {
            let (archive, dir) = (args.source.clone(), dir.path().to_owned());
            tokio::task::spawn_blocking(move || unpack_archive(&archive, &dir))
                .await
                .context("unpacking")??
        }
    };
    // The layout's entry named like the destination tag, else its only one.
    let reference = match &tag {
        Some(t) if layout.manifest(t)?.is_some() => t.clone(),
        _ => String::new(),
    };
    let src = Endpoint::Layout(Arc::new(layout));
    let dst = Endpoint::Registry(client.repository(&destination)?);
    let done = copy_image(&client, &src, &reference, &dst, tag.as_deref(), None, false).await?;
    client
        .progress()
        .finish(&format!("pushed {destination}@{}", done.root.digest));
    Ok(())
}
