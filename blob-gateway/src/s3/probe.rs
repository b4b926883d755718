//! Does this S3-compatible server honour conditional writes? Some (Garage) silently ignore
//! `If-None-Match` and `If-Match`, and a registry that trusts them there loses tags.

use std::fmt;

use super::S3Store;
use crate::store::{ETag, PutCondition, StoreError};

/// What [`S3Store::probe_conditional_writes`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConditionalWrites {
    /// A second create-only write (`If-None-Match: *`) of one key was refused.
    pub if_none_match: bool,
    /// A write with a stale `If-Match` ETag was refused.
    pub if_match: bool,
}

impl ConditionalWrites {
    /// Both conditions are enforced: several registry processes may share the bucket.
    pub fn enforced(&self) -> bool {
        self.if_none_match && self.if_match
    }
}

impl fmt::Display for ConditionalWrites {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = |ok: bool| if ok { "enforced" } else { "IGNORED" };
        write!(
            f,
            "If-None-Match {}, If-Match {}",
            word(self.if_none_match),
            word(self.if_match)
        )
    }
}

impl S3Store {
    /// Writes a fresh probe key (`<prefix>/_probe/<uuid>`, outside the layout) create-only
    /// twice, then with a stale `If-Match`, and reports which the server refused. The probe
    /// key is deleted afterwards. Errors other than the expected 412 are returned.
    pub async fn probe_conditional_writes(&self) -> Result<ConditionalWrites, StoreError> {
        let key = format!("_probe/{}", uuid::Uuid::new_v4());
        let object = self.object_key(&key);
        let attempt = |body: &'static [u8], condition: PutCondition| {
            let (key, object) = (key.clone(), object.clone());
            async move {
                let meta = Default::default();
                match self
                    .put_single(&key, &object, body.into(), meta, &condition)
                    .await
                {
                    Ok(_) => Ok(false),
                    Err(StoreError::PreconditionFailed { .. }) => Ok(true),
                    Err(e) => Err(e),
                }
            }
        };
        let result = async {
            if attempt(b"1", PutCondition::IfNoneMatch).await? {
                // A fresh UUID key already exists: nothing sensible can be concluded.
                return Err(StoreError::PreconditionFailed { key: key.clone() });
            }
            let if_none_match = attempt(b"2", PutCondition::IfNoneMatch).await?;
            let stale = ETag("00000000000000000000000000000000".to_owned());
            let if_match = attempt(b"3", PutCondition::IfMatch(stale)).await?;
            Ok(ConditionalWrites {
                if_none_match,
                if_match,
            })
        }
        .await;
        let cleanup = self.delete_object(&key, &object).await;
        let found = result?;
        cleanup?;
        Ok(found)
    }
}
