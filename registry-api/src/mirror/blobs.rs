//! Blobs through the mirror. A miss starts one download per repository and digest,
//! however many clients ask: it runs as its own task, streaming the upstream's bytes
//! through the store's upload path (`Uploads`: digest verified before the blob is
//! published, so nothing half-written is ever visible) while spooling them to a temporary
//! file that every waiting client follows as it grows. Memory stays one chunk per client
//! whatever the blob's size. Once published, the blob is linked into the repository
//! through the index owner, and the waiters' streams end.

use std::path::PathBuf;
use std::sync::Arc;

use blob_gateway::{ByteStream, ClosingBody};
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt, stream};
use index_format::documents::BlobLink;
use index_format::{Digest, RepoName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::{FetchError, Mirror, Mirrored};
use crate::state::AppState;

/// How much a waiting client reads from the spool file at a time.
const READ_CHUNK: usize = 64 << 10;

/// What a blob miss turned into.
pub enum BlobMiss {
    /// The blob is now linked into the repository: serve it as any other.
    Linked(BlobLink),
    /// The blob is being fetched: its size when the upstream said, and the bytes.
    Streaming(Option<u64>, ByteStream),
}

/// A download in progress.
pub(super) struct Flight {
    /// The spool file; removed when the last holder of the flight lets go (a waiter
    /// that opened it keeps reading its bytes).
    path: tempfile::TempPath,
    state: watch::Receiver<State>,
}

#[derive(Debug, Clone)]
enum State {
    /// Asking the upstream.
    Opening,
    /// Bytes arriving: how many are in the spool file so far.
    Running {
        size: Option<u64>,
        written: u64,
    },
    /// Verified, published and linked: every byte is in the spool file.
    Done,
    /// The repository could already serve it (fetched meanwhile, or stored for another
    /// repository and confirmed upstream): serve it from the store.
    Linked,
    Failed(FetchError),
}

impl Mirror {
    /// A blob `repo` does not link yet: joins or starts its download.
    pub async fn blob(
        &self,
        app: &AppState,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<BlobMiss>, FetchError> {
        let Some(mirrored) = self.mirrored(repo) else {
            return Ok(None);
        };
        let flight = self.flight(app, &mirrored, repo, digest)?;
        let mut state = flight.state.clone();
        let current = state
            .wait_for(|s| !matches!(s, State::Opening))
            .await
            .map(|s| s.clone())
            .map_err(|_| FetchError::Store("the download task ended".into()))?;
        let size = match current {
            State::Opening => None,
            State::Running { size, .. } => size,
            State::Done => std::fs::metadata(&flight.path).ok().map(|m| m.len()),
            State::Linked => {
                return match app.index.blob(repo, digest).await {
                    Ok(Some(link)) => Ok(Some(BlobMiss::Linked(link))),
                    Ok(None) => Err(FetchError::Store("the blob link vanished".into())),
                    Err(e) => Err(FetchError::Store(super::chain(&e))),
                };
            }
            State::Failed(FetchError::NotFound) => return Ok(None),
            State::Failed(e) => return Err(e),
        };
        let file = tokio::fs::File::open(&flight.path)
            .await
            .map_err(|e| FetchError::Store(format!("opening the spool file: {e}")))?;
        Ok(Some(BlobMiss::Streaming(size, follow(file, state, size))))
    }

    /// The download of `digest` for `repo`, started if none is running.
    fn flight(
        &self,
        app: &AppState,
        mirrored: &Mirrored<'_>,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Arc<Flight>, FetchError> {
        let key = (repo.clone(), digest.clone());
        let mut flights = self.blobs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = flights.get(&key) {
            return Ok(f.clone());
        }
        std::fs::create_dir_all(&self.spool)
            .map_err(|e| FetchError::Store(format!("{}: {e}", self.spool.display())))?;
        let (file, path) = tempfile::NamedTempFile::new_in(&self.spool)
            .map_err(|e| FetchError::Store(format!("{}: {e}", self.spool.display())))?
            .into_parts();
        let (tx, rx) = watch::channel(State::Opening);
        let flight = Arc::new(Flight { path, state: rx });
        flights.insert(key.clone(), flight.clone());
        let download = Download {
            app: app.clone(),
            remote: mirrored.conn.repository(mirrored.upstream_repo.clone()),
            upstream: mirrored.conn.settings.name.clone(),
            repo: repo.clone(),
            digest: digest.clone(),
            spool: tokio::fs::File::from_std(file),
            tx,
        };
        let mirror = app.mirror.clone();
        let held = flight.clone();
        tokio::spawn(async move {
            download.run().await;
            // Later requests find the link; the spool file goes with the last waiter.
            if let Some(m) = mirror {
                let mut flights = m.blobs.lock().unwrap_or_else(|p| p.into_inner());
                if flights.get(&key).is_some_and(|f| Arc::ptr_eq(f, &held)) {
                    flights.remove(&key);
                }
            }
        });
        Ok(flight)
    }
}

/// One download task.
struct Download {
    app: AppState,
    remote: crate::client::Repository,
    upstream: String,
    repo: RepoName,
    digest: Digest,
    spool: tokio::fs::File,
    tx: watch::Sender<State>,
}

impl Download {
    async fn run(self) {
        let tx = self.tx.clone();
        let state = match self.fetch().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(repo = %self.repo, digest = %self.digest, error = %e, "mirror blob fetch failed");
                State::Failed(e)
            }
        };
        tx.send_replace(state);
    }

    fn upstream_error(&self, e: &crate::client::ClientError) -> FetchError {
        FetchError::Upstream {
            upstream: self.upstream.clone(),
            message: super::chain(e),
        }
    }

    async fn fetch(&self) -> Result<State, FetchError> {
        let store_error = |e: &dyn std::error::Error| FetchError::Store(super::chain(e));
        let index = &self.app.index;
        // Linked since the request looked (the previous download just finished).
        if index
            .blob(&self.repo, &self.digest)
            .await
            .map_err(|e| store_error(&e))?
            .is_some()
        {
            return Ok(State::Linked);
        }
        // Stored for another repository: a HEAD upstream confirms this one has it too
        // (or a client could read any stored blob through a mirrored name).
        if index
            .stored_blob_size(&self.digest)
            .await
            .map_err(|e| store_error(&e))?
            .is_some()
        {
            let there = self.remote.blob_size(&self.digest).await;
            match there.map_err(|e| self.upstream_error(&e))? {
                Some(_) => {
                    index
                        .link_stored_blob(&self.repo, &self.digest)
                        .await
                        .map_err(|e| store_error(&e))?;
                    return Ok(State::Linked);
                }
                None => return Err(FetchError::NotFound),
            }
        }
        let fetched = self.remote.fetch_blob(&self.digest).await;
        let Some((size, body)) = fetched.map_err(|e| self.upstream_error(&e))? else {
            return Err(FetchError::NotFound);
        };
        self.tx.send_replace(State::Running { size, written: 0 });
        let uploads = &self.app.uploads;
        let (id, _) = uploads
            .start(&self.repo)
            .await
            .map_err(|e| store_error(&e))?;
        let last = ClosingBody {
            body: tee(
                body,
                self.spool.try_clone().await.map_err(|e| store_error(&e))?,
                self.tx.clone(),
                size,
            ),
            size,
            start: None,
        };
        // Verified against the digest before anything is published.
        let published = match uploads
            .finish(&self.repo, &id, Some(last), &self.digest)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                // The session's parts go now rather than at the next upload GC.
                let _ = uploads.cancel(&self.repo, &id).await;
                return Err(store_error(&e));
            }
        };
        index
            .link_upload(published)
            .await
            .map_err(|e| store_error(&e))?;
        tracing::info!(repo = %self.repo, digest = %self.digest, "mirrored blob");
        Ok(State::Done)
    }
}

/// `body`, each chunk written to `spool` (and flushed, so followers can read it) before it
/// goes on to the store; `tx` says how far the spool file is written.
fn tee(
    body: ByteStream,
    spool: tokio::fs::File,
    tx: watch::Sender<State>,
    size: Option<u64>,
) -> ByteStream {
    let chunks = stream::unfold(
        (body, spool, tx, 0u64),
        move |(mut body, mut spool, tx, written)| async move {
            let chunk = match body.next().await? {
                Ok(c) => c,
                Err(e) => return Some((Err(e), (body, spool, tx, written))),
            };
            let stored = async {
                spool.write_all(&chunk).await?;
                spool.flush().await
            };
            if let Err(e) = stored.await {
                return Some((Err(e), (body, spool, tx, written)));
            }
            let written = written + chunk.len() as u64;
            tx.send_replace(State::Running { size, written });
            Some((Ok(chunk), (body, spool, tx, written)))
        },
    );
    Box::pin(chunks)
}

/// The spool file as it grows, until the download is done. The last bytes are held
/// until the blob is verified and linked, so a client has its whole body (its
/// Content-Length) only then; a failed download ends the stream in an error, so a client
/// never takes a short or unverified body as whole.
fn follow(file: tokio::fs::File, state: watch::Receiver<State>, size: Option<u64>) -> ByteStream {
    let reads = stream::try_unfold(
        (file, state, BytesMut::new(), 0u64),
        move |(mut file, mut state, mut buf, mut read)| async move {
            let mut done = false;
            loop {
                buf.reserve(READ_CHUNK);
                let n = file.read_buf(&mut buf).await?;
                read += n as u64;
                let complete = size.is_some_and(|s| read >= s);
                if n > 0 && !complete {
                    let chunk: Bytes = buf.split().freeze();
                    return Ok(Some((chunk, (file, state, buf, read))));
                }
                let current = if complete {
                    let terminal = |s: &State| !matches!(s, State::Opening | State::Running { .. });
                    state.wait_for(terminal).await.map(|s| s.clone())
                } else {
                    Ok(state.borrow_and_update().clone())
                };
                match current {
                    Ok(State::Done) if !buf.is_empty() => {
                        let chunk: Bytes = buf.split().freeze();
                        return Ok(Some((chunk, (file, state, buf, read))));
                    }
                    Ok(State::Done) if complete || done => return Ok(None),
                    // Every byte was written before `Done` was sent: one more read.
                    Ok(State::Done) => done = true,
                    // Written since the read.
                    Ok(State::Running { written, .. }) if written > read => {}
                    Ok(State::Opening | State::Running { .. }) => {
                        if state.changed().await.is_err() {
                            return Err(std::io::Error::other("the download task ended"));
                        }
                    }
                    Ok(State::Failed(e)) => return Err(std::io::Error::other(e)),
                    Ok(State::Linked) | Err(_) => {
                        return Err(std::io::Error::other("the download task ended"));
                    }
                }
            }
        },
    );
    Box::pin(reads.into_stream())
}

/// Where blob downloads are spooled by default.
pub fn default_spool() -> PathBuf {
    std::env::temp_dir().join("cargohold-mirror")
}
