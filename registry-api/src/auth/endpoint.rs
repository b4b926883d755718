//! `GET /token` (Basic credentials or none: docker's token flow) and `POST /token`
//! (`grant_type=password | refresh_token`: the OAuth2 form). Every requested scope is
//! answered with what the caller may do of it, possibly nothing: a token never fails for
//! asking too much, the registry refuses the request it does not cover.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use index_format::RepoName;

use super::caller::{basic_credentials, login_error, peer_ip};
use super::scope::{self, REGISTRY, REPOSITORY, ResourceAccess};
use super::{Auth, Principal};
use crate::error::{ApiError, ApiResult, OciCode};
use crate::state::AppState;

/// Decoded `application/x-www-form-urlencoded` pairs (a query or a form body); keys may
/// repeat (`scope`).
fn form_pairs(s: &str) -> Vec<(String, String)> {
    let decode = |x: &str| {
        percent_encoding::percent_decode_str(&x.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The token endpoint.
pub async fn token(State(app): State<AppState>, parts: Parts, body: Bytes) -> ApiResult<Response> {
    let Some(auth) = app.auth.as_deref().filter(|a| a.issues_tokens()) else {
        return Err(ApiError::with_status(
            OciCode::NameUnknown,
            StatusCode::NOT_FOUND,
            "this registry issues no tokens",
        ));
    };
    let mut params = form_pairs(parts.uri.query().unwrap_or(""));
    if parts.method == Method::POST {
        params.extend(form_pairs(&String::from_utf8_lossy(&body)));
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let peer = peer_ip(&parts);
    let bad_login = |e| login_error(auth, &parts.headers, e);
    let (principal, offline, refresh) = match (parts.method.clone(), param("grant_type")) {
        (Method::POST, Some("password")) => {
            let (u, p) = (
                param("username").unwrap_or(""),
                param("password").unwrap_or(""),
            );
            let who = auth.login(u, p, peer).await.map_err(bad_login)?;
            (who, param("access_type") == Some("offline"), None)
        }
        (Method::POST, Some("refresh_token")) => {
            let given = param("refresh_token").unwrap_or("");
            let s = auth.settings();
            let claims = auth
                .verifier
                .verify(given, &s.issuer, &s.service, true)
                .map_err(|e| unauthorized_token(&e.to_string()))?;
            let who = auth
                .principal_of(&claims.sub)
                .map_err(ApiError::Internal)?
                .ok_or_else(|| unauthorized_token("the refresh token's subject is gone"))?;
            (who, false, Some(given.to_owned()))
        }
        (Method::POST, other) => {
            return Err(ApiError::with_status(
                OciCode::Unsupported,
                StatusCode::BAD_REQUEST,
                format!("unsupported grant_type {other:?}"),
            ));
        }
        _ => {
            let who = match parts.headers.get(header::AUTHORIZATION) {
                None => Principal::Anonymous,
                Some(v) => {
                    let v = v.to_str().unwrap_or_default();
                    let creds = v
                        .strip_prefix("Basic ")
                        .or_else(|| v.strip_prefix("basic "))
                        .and_then(basic_credentials)
                        .ok_or_else(|| unauthorized_token("send Basic credentials"))?;
                    auth.login(&creds.0, &creds.1, peer)
                        .await
                        .map_err(bad_login)?
                }
            };
            (who, param("offline_token") == Some("true"), None)
        }
    };
    let requested = scope::parse(
        params
            .iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.as_str()),
    );
    let granted = grant(auth, &principal, requested);
    respond(auth, &principal, granted, offline, refresh)
}

fn unauthorized_token(message: &str) -> ApiError {
    ApiError::new(OciCode::Unauthorized, message)
}

/// Each requested resource with the actions `who` may do there; nothing else.
fn grant(auth: &Auth, who: &Principal, requested: Vec<ResourceAccess>) -> Vec<ResourceAccess> {
    requested
        .into_iter()
        .filter_map(|r| match r.kind.as_str() {
            REPOSITORY => {
                let repo = RepoName::new(&r.name).ok()?;
                let allowed = r.actions().intersect(auth.rights(who, repo.as_str()));
                (!allowed.is_empty()).then(|| ResourceAccess::repository(repo.as_str(), allowed))
            }
            REGISTRY if r.name == scope::CATALOG && auth.may_list_catalog(who) => {
                Some(ResourceAccess::catalog())
            }
            _ => None,
        })
        .collect()
}

fn respond(
    auth: &Auth,
    who: &Principal,
    access: Vec<ResourceAccess>,
    offline: bool,
    refresh: Option<String>,
) -> ApiResult<Response> {
    let s = auth.settings();
    let sub = who.sub();
    let token = auth
        .verifier
        .issue(&s.issuer, &s.service, &sub, access, s.token_ttl, false)
        .map_err(ApiError::Internal)?;
    let refresh = match (refresh, offline && *who != Principal::Anonymous) {
        (Some(r), _) => Some(r),
        (None, true) => Some(
            auth.verifier
                .issue(&s.issuer, &s.service, &sub, Vec::new(), s.refresh_ttl, true)
                .map_err(ApiError::Internal)?,
        ),
        (None, false) => None,
    };
    let issued_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let mut body = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": s.token_ttl.as_secs(),
        "issued_at": issued_at,
    });
    if let Some(r) = refresh {
        body["refresh_token"] = r.into();
    }
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_pairs_decode_and_repeat() {
        let p =
            form_pairs("scope=repository%3Aa%3Apull&scope=repository:b:push+repository:c:pull&x");
        assert_eq!(p[0], ("scope".into(), "repository:a:pull".into()));
        assert_eq!(p[1].1, "repository:b:push repository:c:pull");
        assert_eq!(p[2], ("x".into(), String::new()));
    }
}
