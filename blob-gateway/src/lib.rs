//! cargohold's object-storage boundary. Every byte that touches storage goes through here.
//!
//! - [`ObjectStore`]: the one store trait, S3-shaped (conditional puts, multipart, ranges,
//!   presigned URLs); its module doc states the contract each backend keeps.
//! - [`FsStore`]: the filesystem backend, the embedded default.
//! - [`S3Store`]: the S3 backend (feature `s3`, on by default), configured by [`S3Config`].
//! - [`SingleWriter`]: conditional writes checked in-process, for stores that ignore them.
//! - [`Uploads`]: OCI upload sessions kept in the store, so any process can continue them;
//!   finishing one yields a [`PublishedUpload`] for the index to link.
//! - [`Blobs`]: content-addressed blob bytes: a presigned redirect or a stream.
//! - [`DigestWriter`]: SHA-256/512 computed while bytes stream, never by a second read.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod blobs;
mod digest;
mod fs;
#[cfg(feature = "s3")]
mod s3;
mod single_writer;
mod store;
mod uploads;

pub use blobs::{Blobs, Download, Via};
pub use digest::{DigestWriter, HashState};
pub use fs::FsStore;
#[cfg(feature = "s3")]
pub use s3::{ConditionalWrites, S3Config, S3ConfigError, S3Store};
pub use single_writer::SingleWriter;
pub use store::{
    ByteRange, ByteStream, ChecksummedPart, CompletedPart, ETag, ListPage, ManifestMeta,
    MultipartId, ObjectBody, ObjectInfo, ObjectStore, Presign, PresignedRequest, PutCondition,
    StoreError, StoredChecksum, UploadedPart, one_chunk, put_bytes,
};
pub use uploads::{
    ClosingBody, CopyChecksums, DirectUpload, FaultPoint, GcReport, PublishedUpload, StoredBlob,
    UploadError, UploadState, Uploads,
};
