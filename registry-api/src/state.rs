//! What every handler shares.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use blob_gateway::{Blobs, FaultPoint, ObjectStore, Uploads};

use crate::auth::Auth;
use crate::config::{
    BlobDelivery, DEFAULT_MAX_UPLOAD_SESSIONS, DEFAULT_MAX_UPLOAD_SESSIONS_PER_CLIENT,
    DEFAULT_PRESIGN_EXPIRY, DEFAULT_UPLOAD_MAX_AGE,
};
use crate::index::Index;
use crate::sessions::{OpenSessions, SessionLimits};
use crate::upload_url::UploadUrl;

/// Shared by every request: one reference count to bump per clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

#[derive(Clone)]
pub struct Shared {
    /// The one owner of every index document.
    pub index: Index,
    /// Upload sessions.
    pub uploads: Uploads,
    /// Blob bytes: redirects and streams.
    pub blobs: Blobs,
    /// How blob downloads are answered.
    pub blob_delivery: BlobDelivery,
    /// How long a presigned download URL lives.
    pub presign_expiry: Duration,
    /// Authentication and rules; `None`: the server is open.
    pub auth: Option<Arc<Auth>>,
    /// The direct-upload extension, when offered.
    pub direct: Option<Arc<crate::direct::Direct>>,
    /// The upload sessions this process has open, against their caps.
    pub sessions: OpenSessions,
    /// Where upload sessions continue, when not on the host that started them.
    pub upload_url: Option<Arc<UploadUrl>>,
}

impl AppState {
    /// The state for a server on `store`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self(Arc::new(Shared {
            index: Index::new(store.clone()),
            uploads: Uploads::new(store.clone()),
            blobs: Blobs::new(store),
            blob_delivery: BlobDelivery::default(),
            presign_expiry: DEFAULT_PRESIGN_EXPIRY,
            auth: None,
            direct: None,
            sessions: OpenSessions::new(
                SessionLimits {
                    total: DEFAULT_MAX_UPLOAD_SESSIONS,
                    per_client: DEFAULT_MAX_UPLOAD_SESSIONS_PER_CLIENT,
                },
                DEFAULT_UPLOAD_MAX_AGE,
            ),
            upload_url: None,
        }))
    }

    /// Caps open upload sessions; one is forgotten after `max_age` (see `sessions.rs`).
    pub fn with_session_limits(self, limits: SessionLimits, max_age: Duration) -> Self {
        Self(Arc::new(Shared {
            sessions: OpenSessions::new(limits, max_age),
            ..Shared::clone(&self.0)
        }))
    }

    /// Offers the direct-upload extension with these settings (`None`: not offered).
    pub fn with_direct(self, direct: Option<Arc<crate::direct::Direct>>) -> Self {
        Self(Arc::new(Shared {
            direct,
            ..Shared::clone(&self.0)
        }))
    }

    /// Upload sessions continue at this URL (`None`: where they started).
    pub fn with_upload_url(self, upload_url: Option<UploadUrl>) -> Self {
        Self(Arc::new(Shared {
            upload_url: upload_url.map(Arc::new),
            ..Shared::clone(&self.0)
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

impl AppState {
    /// Makes the process crash at `point` while closing uploads (crash tests only).
    pub fn with_fault(self, point: Option<FaultPoint>) -> Self {
        Self(Arc::new(Shared {
            uploads: self.0.uploads.clone().with_fault(point),
            ..Shared::clone(&self.0)
        }))
    }
}

impl AppState {
    /// Requires authentication and applies access rules.
    pub fn with_auth(self, auth: Option<Auth>) -> Self {
        Self(Arc::new(Shared {
            auth: auth.map(Arc::new),
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
