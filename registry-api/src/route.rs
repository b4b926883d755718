//! Repository names contain `/`, so every `/v2/...` path goes through one parser that
//! returns a typed [`Route`]; handlers are chosen by matching it exhaustively.

use index_format::{Digest, Reference, RepoName, UploadId};

use crate::error::{ApiError, OciCode};

/// A parsed `/v2/<rest>` path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/tags/list`
    Tags(RepoName),
    /// `/v2/<name>/manifests/<reference>`
    Manifest(RepoName, Reference),
    /// `/v2/<name>/manifests/<reference>` where the reference is neither a valid tag nor a
    /// valid digest, with why. Nothing can be stored under it: a read is
    /// `MANIFEST_UNKNOWN` (as upstream's conformance suite expects), a push
    /// `MANIFEST_INVALID`.
    InvalidReference(RepoName, String),
    /// `/v2/<name>/blobs/<digest>`
    Blob(RepoName, Digest),
    /// `/v2/<name>/blobs/uploads/`
    UploadStart(RepoName),
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload(RepoName, UploadId),
    /// `/v2/<name>/referrers/<digest>`
    Referrers(RepoName, Digest),
    /// `/v2/_<ext>/...` (repository `None`) or `/v2/<name>/_<ext>/...`: an extension
    /// endpoint, with the path from its `_<ext>` on. Repository names never have a
    /// component starting with `_`, so the first `/_` starts the extension.
    Extension(Option<RepoName>, String),
}

/// The extension namespaces this registry answers, each with its trailing `/`.
const EXTENSIONS: [&str; 2] = ["_oci/", "_cargohold/"];

impl Route {
    /// Parses the path after `/v2/`. Unknown shapes are `None` (404); a known shape with a
    /// bad name, digest or reference is the matching spec error.
    pub fn parse(rest: &str) -> Result<Option<Self>, ApiError> {
        if rest.is_empty() {
            return Ok(Some(Self::Base));
        }
        if rest == "_catalog" {
            return Ok(Some(Self::Catalog));
        }
        let name = |n: &str| RepoName::new(n).map_err(ApiError::from);
        // Extensions live under a namespace of their own (`_oci`, `_cargohold`); any other
        // `_` component is a bad name, refused by the name check below.
        let extension = |p: &str| EXTENSIONS.iter().any(|e| p.starts_with(e));
        if extension(rest) {
            return Ok(Some(Self::Extension(None, rest.to_owned())));
        }
        if let Some((n, ext)) = rest
            .split_once("/_")
            .filter(|(_, e)| extension(&format!("_{e}")))
        {
            return Ok(Some(Self::Extension(Some(name(n)?), format!("_{ext}"))));
        }
        if let Some(n) = rest.strip_suffix("/tags/list") {
            return Ok(Some(Self::Tags(name(n)?)));
        }
        if let Some(n) = rest
            .strip_suffix("/blobs/uploads/")
            .or(rest.strip_suffix("/blobs/uploads"))
        {
            return Ok(Some(Self::UploadStart(name(n)?)));
        }
        let Some((head, last)) = rest.rsplit_once('/') else {
            return Ok(None);
        };
        let Some((n, kind)) = head.rsplit_once('/') else {
            return Ok(None);
        };
        Ok(Some(match kind {
            "manifests" => match Reference::new(last) {
                Ok(reference) => Self::Manifest(name(n)?, reference),
                Err(e) => Self::InvalidReference(name(n)?, e.to_string()),
            },
            "blobs" => Self::Blob(name(n)?, Digest::new(last)?),
            "referrers" => Self::Referrers(name(n)?, Digest::new(last)?),
            "uploads" => {
                let Some(n) = n.strip_suffix("/blobs") else {
                    return Ok(None);
                };
                let id = UploadId::new(last).ok_or_else(|| {
                    ApiError::new(
                        OciCode::BlobUploadUnknown,
                        format!("upload {last:?} is unknown"),
                    )
                })?;
                Self::Upload(name(n)?, id)
            }
            _ => return Ok(None),
        }))
    }
}

impl Route {
    /// The repository the route is about, if any.
    pub fn repo(&self) -> Option<&RepoName> {
        match self {
            Self::Base | Self::Catalog | Self::Extension(None, _) => None,
            Self::Tags(n)
            | Self::Manifest(n, _)
            | Self::InvalidReference(n, _)
            | Self::Blob(n, _)
            | Self::UploadStart(n)
            | Self::Upload(n, _)
            | Self::Referrers(n, _)
            | Self::Extension(Some(n), _) => Some(n),
        }
    }

    /// The route with its repository (if any) replaced by what `f` makes of it.
    pub fn map_repo<E>(self, f: impl FnOnce(RepoName) -> Result<RepoName, E>) -> Result<Self, E> {
        Ok(match self {
            Self::Base | Self::Catalog | Self::Extension(None, _) => self,
            Self::Tags(n) => Self::Tags(f(n)?),
            Self::Manifest(n, r) => Self::Manifest(f(n)?, r),
            Self::InvalidReference(n, why) => Self::InvalidReference(f(n)?, why),
            Self::Blob(n, d) => Self::Blob(f(n)?, d),
            Self::UploadStart(n) => Self::UploadStart(f(n)?),
            Self::Upload(n, id) => Self::Upload(f(n)?, id),
            Self::Referrers(n, d) => Self::Referrers(f(n)?, d),
            Self::Extension(Some(n), p) => Self::Extension(Some(f(n)?), p),
        })
    }

    /// The URL path of this route, the inverse of [`Route::parse`]: the one place
    /// `Location` and `Link` headers get their paths from. `None` for
    /// [`Route::InvalidReference`], which names nothing that exists.
    pub fn path(&self) -> Option<String> {
        Some(match self {
            Self::Base => "/v2/".to_owned(),
            Self::Catalog => "/v2/_catalog".to_owned(),
            Self::Tags(n) => format!("/v2/{n}/tags/list"),
            Self::Manifest(n, r) => format!("/v2/{n}/manifests/{}", r.as_str()),
            Self::InvalidReference(..) => return None,
            Self::Blob(n, d) => format!("/v2/{n}/blobs/{d}"),
            Self::UploadStart(n) => format!("/v2/{n}/blobs/uploads/"),
            Self::Upload(n, id) => format!("/v2/{n}/blobs/uploads/{id}"),
            Self::Referrers(n, d) => format!("/v2/{n}/referrers/{d}"),
            Self::Extension(None, p) => format!("/v2/{p}"),
            Self::Extension(Some(n), p) => format!("/v2/{n}/{p}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn ok(path: &str) -> Route {
        match Route::parse(path) {
            Ok(Some(r)) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn parses_every_shape() {
        assert_eq!(ok(""), Route::Base);
        assert_eq!(ok("_catalog"), Route::Catalog);
        assert!(matches!(ok("a/b/tags/list"), Route::Tags(n) if n.as_str() == "a/b"));
        assert!(
            matches!(ok("a/manifests/latest"), Route::Manifest(n, Reference::Tag(_)) if n.as_str() == "a")
        );
        assert!(matches!(
            ok(&format!("a/b/manifests/{D}")),
            Route::Manifest(_, Reference::Digest(_))
        ));
        assert!(matches!(ok(&format!("x/blobs/{D}")), Route::Blob(..)));
        assert!(matches!(ok("x/y/blobs/uploads/"), Route::UploadStart(n) if n.as_str() == "x/y"));
        assert!(matches!(
            ok("x/blobs/uploads/0f0e0d0c-0b0a-4908-8706-050403020100"),
            Route::Upload(..)
        ));
        assert!(matches!(
            ok(&format!("x/referrers/{D}")),
            Route::Referrers(..)
        ));
        // A repository may itself be called "manifests" or "blobs".
        assert!(
            matches!(ok("manifests/manifests/v1"), Route::Manifest(n, _) if n.as_str() == "manifests")
        );
    }

    #[test]
    fn paths_round_trip_through_the_parser() {
        let paths = [
            "".to_owned(),
            "_catalog".to_owned(),
            "a/b/tags/list".to_owned(),
            "a/manifests/latest".to_owned(),
            format!("a/b/manifests/{D}"),
            format!("x/blobs/{D}"),
            "x/y/blobs/uploads/".to_owned(),
            "x/blobs/uploads/0f0e0d0c-0b0a-4908-8706-050403020100".to_owned(),
            format!("x/referrers/{D}"),
            "manifests/manifests/v1".to_owned(),
            "_oci/ext/discover".to_owned(),
            "a/b/_cargohold/direct/start".to_owned(),
        ];
        for rest in paths {
            let route = ok(&rest);
            let path = route.path().expect("a path");
            assert_eq!(path, format!("/v2/{rest}"));
            let again = path.strip_prefix("/v2/").map(ok);
            assert_eq!(again, Some(route), "{path}");
        }
    }

    #[test]
    fn errors_carry_spec_codes() {
        let code = |p: &str| match Route::parse(p) {
            Err(ApiError::Oci { code, .. }) => code,
            other => panic!("{p}: {other:?}"),
        };
        assert_eq!(code("UPPER/manifests/v1"), OciCode::NameInvalid);
        for bad in ["bad:ref", ".hidden", "sha256:xyz"] {
            assert!(matches!(
                Route::parse(&format!("a/manifests/{bad}")),
                Ok(Some(Route::InvalidReference(..)))
            ));
        }
        assert_eq!(code("a/blobs/sha256:xyz"), OciCode::DigestInvalid);
        assert_eq!(
            code("a/blobs/uploads/not-a-uuid"),
            OciCode::BlobUploadUnknown
        );
        assert!(matches!(Route::parse("a/unknown/x"), Ok(None)));
        assert!(matches!(Route::parse("nothing"), Ok(None)));
    }
}
