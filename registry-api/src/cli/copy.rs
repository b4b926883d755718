//! `cargohold copy <src-ref> <dst-ref>`.

use registry_api::client::{Endpoint, ImageRef, Platform, copy_image};

use super::ClientArgs;

/// `copy` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// From: `registry/repository[:tag][@digest]`.
    source: String,
    /// To: `registry/repository[:tag]` (the source's tag when none is given).
    destination: String,
    /// Only this platform of an index: `os/arch[/variant]` (default: every platform).
    #[arg(long)]
    platform: Option<String>,
    /// Bring the manifests that refer to the image (signatures, SBOMs) along.
    #[arg(long)]
    referrers: bool,
    #[command(flatten)]
    client: ClientArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.client.client()?;
    let from = ImageRef::parse(&args.source)?;
    let to = ImageRef::parse(&args.destination)?;
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    let tag = to
        .tag
        .as_ref()
        .or(from.tag.as_ref())
        .map(|t| t.as_str().to_owned());
    let src = Endpoint::Registry(client.repository(&from)?);
    let dst = Endpoint::Registry(client.repository(&to)?);
    let done = copy_image(
        &client,
        &src,
        &from.reference(),
        &dst,
        tag.as_deref(),
        platform.as_ref(),
        args.referrers,
    )
    .await?;
    client.progress().finish(&format!(
        "copied {from} to {to}@{} ({} manifests, {} blobs)",
        done.root.digest,
        done.manifests,
        done.blobs.len()
    ));
    Ok(())
}
