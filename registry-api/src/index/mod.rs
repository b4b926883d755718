//! The code that turns a push into index writes, and answers reads from the index.
//!
//! Write order makes every crash leave a readable index: a manifest's bytes are stored
//! under its digest before any tag or referrers list names it, and a blob is published
//! before it is linked. Read-modify-write documents (tag lists, referrers, the catalog) are
//! updated by [`Index::update`]: read with the ETag, change, write back only if unchanged
//! (or, for a new document, only if still absent), and retry on conflict, so concurrent
//! pushes across tasks and processes never lose a tag.

mod documents;
mod manifests;

use std::sync::Arc;

use blob_gateway::ObjectStore;

pub use documents::DocumentError;
pub use manifests::{PushedManifest, StoredManifest, digest_of};

/// Largest manifest accepted, as the spec asks registries to support (4 MiB).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// The sparse index on a store.
#[derive(Clone)]
pub struct Index {
    store: Arc<dyn ObjectStore>,
}

impl Index {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }
}
