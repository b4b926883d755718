//! What every handler shares.

use std::sync::Arc;

use blob_gateway::{ObjectStore, Uploads};

use crate::index::Index;

/// Shared, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn ObjectStore>,
    pub index: Index,
    pub uploads: Uploads,
}

impl AppState {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            index: Index::new(store.clone()),
            uploads: Uploads::new(store.clone()),
            store,
        }
    }
}
