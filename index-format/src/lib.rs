//! The cargohold sparse index, as data.
//!
//! This crate owns everything about *what* cargohold stores and *where*, and nothing about
//! *how*: it has no tokio, no network and no filesystem in its manifest.
//!
//! - [`layout`]: every object key in the bucket ([`StorageKey`]) with its URL path, content
//!   type and cache-control, drawn as a tree in the module doc.
//! - [`RepoName`], [`Tag`], [`Digest`], [`Reference`]: validated newtypes; there is no way to
//!   build an unchecked one.
//! - [`ManifestMediaType`] and [`manifest`]: the manifest kinds a registry accepts, and the
//!   parts of a manifest the registry must understand (references, subject).
//! - [`documents`]: the JSON documents of the index (root config, tag list, catalog,
//!   referrers, blob links), byte-for-byte what a static host serves.
//! - [`browse`]: the documents written for people (repository list, search, tag pages,
//!   manifest details), read by the browse UI.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod browse;
pub mod documents;
pub mod layout;
pub mod manifest;
mod media_type;
mod names;

pub use layout::{KeyPrefix, StorageKey, UiFile, UploadId};
pub use media_type::{ManifestMediaType, UnknownMediaType};
pub use names::{Digest, DigestAlgorithm, NameError, Reference, RepoName, Tag};

/// The version of the index layout written by this crate. Bumped on any change a reader
/// must know about; recorded in the root `config.json`.
pub const FORMAT_VERSION: u32 = 2;
