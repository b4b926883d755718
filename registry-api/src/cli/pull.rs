//! `cargohold pull <ref> <oci-layout-dir>`.

use std::path::PathBuf;
use std::sync::Arc;

use registry_api::client::{Endpoint, ImageRef, Layout, Platform, copy_image};

use super::ClientArgs;

/// `pull` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// What to pull: `registry/repository[:tag][@digest]`.
    reference: String,
    /// The OCI layout directory to write (created if absent; other images in it stay).
    directory: PathBuf,
    /// Only this platform of an index: `os/arch[/variant]`.
    #[arg(long)]
    platform: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.client.client()?;
    let image = ImageRef::parse(&args.reference)?;
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    let src = Endpoint::Registry(client.repository(&image)?);
    let dst = Endpoint::Layout(Arc::new(Layout::create(&args.directory)?));
    let tag = image.tag.as_ref().map(|t| t.as_str().to_owned());
    let reference = image.reference();
    let done = copy_image(
        &client,
        &src,
        &reference,
        &dst,
        tag.as_deref(),
        platform.as_ref(),
        false,
    )
    .await?;
    client
        .progress()
        .finish(&format!("pulled {image}@{}", done.root.digest));
    Ok(())
}
