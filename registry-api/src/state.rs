//! What every handler shares.

use std::sync::Arc;
use std::time::Duration;

use blob_gateway::{ObjectStore, Uploads};

use crate::config::{BlobDelivery, DEFAULT_PRESIGN_EXPIRY};
use crate::index::Index;

/// Shared, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn ObjectStore>,
    pub index: Index,
    pub uploads: Uploads,
    pub blob_delivery: BlobDelivery,
    pub presign_expiry: Duration,
}

impl AppState {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            index: Index::new(store.clone()),
            uploads: Uploads::new(store.clone()),
            store,
            blob_delivery: BlobDelivery::default(),
            presign_expiry: DEFAULT_PRESIGN_EXPIRY,
        }
    }

    /// How blob downloads are answered, and how long a presigned URL lives.
    pub fn with_blob_delivery(mut self, delivery: BlobDelivery, expiry: Duration) -> Self {
        self.blob_delivery = delivery;
        self.presign_expiry = expiry;
        self
    }
}
