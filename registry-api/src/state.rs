//! What every handler shares.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use blob_gateway::{ObjectStore, Uploads};

use crate::config::{BlobDelivery, DEFAULT_PRESIGN_EXPIRY};
use crate::index::Index;

/// Shared by every request: one reference count to bump per clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

#[derive(Clone)]
pub struct Shared {
    pub store: Arc<dyn ObjectStore>,
    pub index: Index,
    pub uploads: Uploads,
    pub blob_delivery: BlobDelivery,
    pub presign_expiry: Duration,
}

impl AppState {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self(Arc::new(Shared {
            index: Index::new(store.clone()),
            uploads: Uploads::new(store.clone()),
            store,
            blob_delivery: BlobDelivery::default(),
            presign_expiry: DEFAULT_PRESIGN_EXPIRY,
        }))
    }

    /// How blob downloads are answered, and how long a presigned URL lives.
    pub fn with_blob_delivery(self, delivery: BlobDelivery, expiry: Duration) -> Self {
        Self(Arc::new(Shared {
            blob_delivery: delivery,
            presign_expiry: expiry,
            ..Shared::clone(&self.0)
        }))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
