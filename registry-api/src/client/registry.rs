//! One registry's HTTP connection: base URL, credentials, the token the token flow gave,
//! and the retry policy. Every request of the client goes through [`Registry::send`].

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode, header};

use super::auth::{Challenge, Credentials, TokenResponse};
use super::{ClientError, Options};

/// A registry's API, reached over HTTP(S).
pub struct Registry {
    http: reqwest::Client,
    /// `scheme://host[:port]`.
    base: String,
    creds: Option<Credentials>,
    auth: Mutex<AuthState>,
    attempts: u32,
    backoff: Duration,
    /// Whether it offers cargohold's direct uploads, once asked.
    pub(super) direct: tokio::sync::OnceCell<bool>,
}

#[derive(Default)]
struct AuthState {
    /// The `Authorization` value to send, once a challenge asked for one.
    header: Option<String>,
    /// Every scope asked for so far: one token then covers a push that also mounts.
    scopes: BTreeSet<String>,
}

impl Registry {
    /// The registry at `host` (`name[:port]`); plain HTTP for loopback hosts or with
    /// `insecure`.
    pub(super) fn new(
        http: reqwest::Client,
        host: &str,
        creds: Option<Credentials>,
        options: &Options,
    ) -> Self {
        let plain = options.insecure || super::reference::is_loopback(host);
        let base = format!("{}://{host}", if plain { "http" } else { "https" });
        Self::at(http, base, creds, options)
    }

    /// The registry whose API is at `base` (`scheme://host[:port]`, no trailing slash).
    pub(super) fn at(
        http: reqwest::Client,
        base: String,
        creds: Option<Credentials>,
        options: &Options,
    ) -> Self {
        Self {
            http,
            base,
            creds,
            auth: Mutex::default(),
            attempts: options.retries.max(1),
            backoff: options.backoff,
            direct: tokio::sync::OnceCell::new(),
        }
    }

    /// `host[:port]` of the API's base URL.
    pub fn host(&self) -> &str {
        self.base.split_once("://").map_or(&self.base, |(_, h)| h)
    }

    /// The absolute URL of `path_or_url` (a `Location` may be either).
    pub fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        }
    }

    /// The HTTP client, for requests that must not carry the registry's credentials
    /// (presigned ones).
    pub(super) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A request to `url` (absolute, or a path on this registry).
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.http.request(method, self.url(url))
    }

    /// Sends what `make` builds, authenticating when challenged and retrying connection
    /// errors and 5xx answers with backoff (up to the configured attempts; `make` builds
    /// each attempt afresh, reopening any streamed body). Any other answer is returned as
    /// is, for the caller to judge.
    pub async fn send<F, Fut>(&self, make: F) -> Result<Response, ClientError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<RequestBuilder, ClientError>>,
    {
        let mut attempt = 0;
        let mut authenticated = false;
        loop {
            attempt += 1;
            let mut request = make().await?;
            if let Some(h) = self.auth_header() {
                request = request.header(header::AUTHORIZATION, h);
            }
            let request = request.build().map_err(ClientError::http)?;
            let url = request.url().to_string();
            let result = self.http.execute(request).await;
            let retry = match &result {
                Err(e) => e.is_connect() || e.is_timeout() || e.is_request() || e.is_body(),
                Ok(r) => r.status().is_server_error() && r.status() != StatusCode::NOT_IMPLEMENTED,
            };
            if retry && attempt < self.attempts {
                let wait = self.backoff * 2u32.saturating_pow(attempt - 1);
                tracing::debug!(%url, attempt, ?wait, "retrying");
                tokio::time::sleep(wait.min(Duration::from_secs(10))).await;
                continue;
            }
            let response = result.map_err(ClientError::http)?;
            if response.status() == StatusCode::UNAUTHORIZED && !authenticated {
                let challenge = response
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Challenge::parse);
                if let Some(challenge) = challenge {
                    self.authenticate(challenge).await?;
                    authenticated = true;
                    attempt -= 1;
                    continue;
                }
            }
            return Ok(response);
        }
    }

    /// [`send`](Self::send) for a request without a body.
    pub async fn send_simple(&self, method: Method, url: &str) -> Result<Response, ClientError> {
        self.send_built(|| self.request(method.clone(), url)).await
    }

    /// [`send`](Self::send) for a request built without I/O (no body to reopen).
    pub async fn send_built(
        &self,
        make: impl Fn() -> RequestBuilder,
    ) -> Result<Response, ClientError> {
        self.send(|| {
            let r = make();
            async { Ok(r) }
        })
        .await
    }

    fn auth_header(&self) -> Option<String> {
        self.auth.lock().ok().and_then(|a| a.header.clone())
    }

    /// Answers a challenge: Basic sends the credentials from now on; Bearer fetches a token
    /// for every scope asked for so far, with the credentials if there are any.
    async fn authenticate(&self, challenge: Challenge) -> Result<(), ClientError> {
        let (realm, service, scopes) = match challenge {
            Challenge::Basic => {
                let creds = self.creds.as_ref().ok_or_else(|| {
                    ClientError::Auth(format!("{} wants credentials (--creds)", self.base))
                })?;
                self.set_header(creds.basic(), None);
                return Ok(());
            }
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let mut scopes = self
                    .auth
                    .lock()
                    .map(|a| a.scopes.clone())
                    .unwrap_or_default();
                scopes.extend(scope);
                (realm, service, scopes)
            }
        };
        let mut query: Vec<(&str, &str)> = scopes.iter().map(|s| ("scope", s.as_str())).collect();
        if let Some(s) = &service {
            query.push(("service", s));
        }
        let mut tries = 0;
        let response = loop {
            tries += 1;
            let mut request = self.http.get(&realm).query(&query);
            if let Some(c) = &self.creds {
                request = request.header(header::AUTHORIZATION, c.basic());
            }
            let response = request.send().await.map_err(ClientError::http)?;
            // A registry braking password guesses locks the address too: behind a shared
            // NAT someone else's typo must not fail a CI push, so a short lock is waited out.
            let wait = (response.status() == StatusCode::TOO_MANY_REQUESTS)
                .then(|| retry_after(&response))
                .flatten()
                .filter(|w| *w <= MAX_LOGIN_WAIT);
            match wait {
                Some(wait) if tries < self.attempts => {
                    tracing::info!(%realm, ?wait, "the token endpoint asks to wait");
                    tokio::time::sleep(wait).await;
                }
                _ => break response,
            }
        };
        if !response.status().is_success() {
            return Err(ClientError::Auth(format!(
                "the token endpoint {realm} answered {}",
                response.status()
            )));
        }
        let token = response
            .json::<TokenResponse>()
            .await
            .map_err(ClientError::http)?
            .into_token()
            .ok_or_else(|| ClientError::Auth(format!("{realm} returned no token")))?;
        self.set_header(format!("Bearer {token}"), Some(scopes));
        Ok(())
    }

    fn set_header(&self, value: String, scopes: Option<BTreeSet<String>>) {
        if let Ok(mut a) = self.auth.lock() {
            a.header = Some(value);
            if let Some(s) = scopes {
                a.scopes = s;
            }
        }
    }
}

/// The longest `Retry-After` of a token endpoint the client waits out.
const MAX_LOGIN_WAIT: Duration = Duration::from_secs(30);

/// A `Retry-After` given in seconds (the HTTP-date form is not used by registries).
fn retry_after(response: &Response) -> Option<Duration> {
    let v = response.headers().get(header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse().ok().map(Duration::from_secs)
}

/// The error for an answer the caller did not expect, with the registry's error message.
pub async fn unexpected(what: &str, response: Response) -> ClientError {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let e = v.get("errors")?.get(0)?;
            Some(format!(
                "{}: {}",
                e.get("code")?.as_str()?,
                e.get("message").and_then(|m| m.as_str()).unwrap_or("")
            ))
        })
        .unwrap_or_else(|| body.chars().take(200).collect());
    ClientError::Status {
        what: what.to_owned(),
        status: status.as_u16(),
        message,
    }
}

/// `url` with `key=value` added to its query.
pub fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    let value = percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC);
    format!("{url}{sep}{key}={value}")
}
