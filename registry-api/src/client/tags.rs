//! A repository's tag list (`/tags/list`, following `Link` pagination) and a manifest's
//! digest by `HEAD`, which Docker Hub does not count against its pull limit.

use index_format::Digest;
use reqwest::{Method, StatusCode, header};

use super::ClientError;
use super::registry::unexpected;
use super::repository::{ACCEPT, Repository};

/// Tags asked for per page; registries may answer fewer.
const PAGE: usize = 1000;
/// Pages followed at most, so a registry that links in a circle cannot hold a run forever.
const MAX_PAGES: usize = 10_000;

impl Repository {
    /// Every tag of the repository, in the registry's order; `None` when the registry has
    /// no such repository.
    pub async fn tags(&self) -> Result<Option<Vec<String>>, ClientError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut url = self.path(&format!("tags/list?n={PAGE}"));
        let mut tags = Vec::new();
        for _ in 0..MAX_PAGES {
            let response = self.registry.send_simple(Method::GET, &url).await?;
            match response.status() {
                StatusCode::OK => {}
                StatusCode::NOT_FOUND if tags.is_empty() => return Ok(None),
                _ => return Err(unexpected(&format!("GET {url}"), response).await),
            }
            let next = response
                .headers()
                .get(header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let page: Page = response.json().await.map_err(ClientError::Http)?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(n) => url = n,
                None => return Ok(Some(tags)),
            }
        }
        Err(ClientError::Input(format!(
            "{}: the tag list runs past {MAX_PAGES} pages",
            self.name()
        )))
    }

    /// The digest of the manifest `reference` names, by `HEAD`; `None` when there is none.
    /// A registry that sends no `Docker-Content-Digest` is asked with `GET`.
    pub async fn manifest_digest(&self, reference: &str) -> Result<Option<Digest>, ClientError> {
        let url = self.path(&format!("manifests/{reference}"));
        let response = self
            .registry
            .send_built(|| {
                self.registry
                    .request(Method::HEAD, &url)
                    .header(header::ACCEPT, ACCEPT)
            })
            .await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(unexpected(&format!("HEAD {url}"), response).await),
        }
        let sent = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::new(v).ok());
        match sent {
            Some(d) => Ok(Some(d)),
            None => Ok(self.manifest(reference).await?.map(|m| m.digest)),
        }
    }
}

/// The `rel="next"` target of a `Link` header: `<url>; rel="next"`.
fn next_link(value: &str) -> Option<String> {
    value.split(',').find_map(|link| {
        let (target, params) = link.split_once(';')?;
        let next = params.split(';').any(|p| {
            let p = p.trim();
            p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        next.then(|| target.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn next_link_is_found_among_others() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"<https://x/prev>; rel="prev", <https://x/n>; rel=next"#).as_deref(),
            Some("https://x/n")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
