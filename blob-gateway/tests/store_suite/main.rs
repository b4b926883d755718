//! The one store test suite: every clause of the `ObjectStore` contract (the module doc of
//! `blob-gateway/src/store.rs`), run against every backend.
//!
//! - `filesystem`: an `FsStore` in a fresh temp dir per test; always runs.
//! - `s3_localstack`, `s3_s3s_fs`: an `S3Store` on the servers `.ci/s3-servers.sh start`
//!   launches, under a fresh key prefix per test, plus the S3-only clauses of `s3_env`.
//!   They read `CARGOHOLD_TEST_S3_*` and `CARGOHOLD_TEST_S3SFS_*` (source `.ci/.s3/env`);
//!   without them they print that they were skipped, to the terminal, uncaptured. With
//!   `CARGOHOLD_TEST_S3_REQUIRED=1` a missing server fails the test instead.
//! - `fs_processes`: `FsStore` conditions across two processes sharing a directory.
//!
//! A clause is an `async fn(Arc<dyn ObjectStore>)` in one of the modules below; the
//! `store_suite!` macro turns each into one `#[tokio::test]` per backend, so a failure
//! names both: `s3_localstack::ranges_return_exactly_the_requested_bytes`.
//!
//! A server that breaks a clause by its own fault (s3s-fs) lists it in its
//! `KNOWN_FAILURES` with the reason: the clause still runs and must still fail (it is
//! reported on the terminal); when the server is fixed and the clause passes, the test
//! fails so that the entry is removed.

mod basics;
mod conditions;
mod fs_processes;
mod listing;
mod multipart;
#[cfg(feature = "s3")]
mod s3_env;
mod util;

use std::future::Future;
use std::io::Write as _;

/// Every clause of the contract, by module.
macro_rules! store_suite {
    ($fixture:path) => {
        store_suite!(@each $fixture;
            basics::missing_key_is_not_found,
            basics::put_then_get_round_trips_bytes_and_metadata,
            basics::read_returns_whole_small_objects_and_refuses_larger,
            basics::empty_object_round_trips,
            basics::ranges_return_exactly_the_requested_bytes,
            basics::delete_is_idempotent,
            basics::failed_put_leaves_the_old_object,
            conditions::if_none_match_creates_once_and_keeps_the_old_content,
            conditions::if_match_replaces_only_the_current_etag,
            conditions::if_match_on_a_missing_key_fails,
            conditions::concurrent_if_match_writers_lose_no_update,
            conditions::concurrent_creators_have_exactly_one_winner,
            conditions::copy_is_server_side_and_conditional,
            listing::list_returns_keys_under_the_prefix_in_lexical_order,
            listing::list_pages_with_after_and_limit,
            multipart::multipart_assembles_parts_in_order,
            multipart::multipart_with_one_part,
            multipart::complete_with_a_wrong_etag_fails,
            multipart::abort_is_idempotent_and_ends_the_upload,
            multipart::remove_leftovers_ends_only_older_uploads,
            multipart::large_object_streams_both_ways,
        );
    };
    (@each $fixture:path; $($module:ident :: $clause:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $clause() {
                use $fixture as fixture;
                let Some(fixture) = fixture().await else { return };
                let clause = crate::$module::$clause(fixture.store.clone());
                crate::run_clause(&fixture, stringify!($clause), clause).await;
            }
        )*
    };
}

/// A store for one test, and whatever must live as long as it.
pub struct Fixture {
    pub store: util::Store,
    /// The server, for messages.
    pub server: &'static str,
    /// The clauses this server fails, and why.
    pub known_failures: &'static [(&'static str, Known)],
    _guard: Option<tempfile::TempDir>,
}

/// Why a server fails a clause.
#[derive(Debug, Clone, Copy)]
pub enum Known {
    /// Fails every time.
    Fails(&'static str),
    /// A race the server loses often but not always: either outcome is reported.
    Racy(&'static str),
}

/// Runs a clause; one the server is known to fail must fail (or, if racy, may).
pub async fn run_clause(
    fixture: &Fixture,
    name: &str,
    clause: impl Future<Output = ()> + Send + 'static,
) {
    let known = fixture.known_failures.iter().find(|(c, _)| *c == name);
    let Some((_, known)) = known else {
        return clause.await;
    };
    let server = fixture.server;
    // Straight to the terminal: libtest captures print!/eprint! of passing tests.
    let report = |what: &str, reason: &str| {
        let _ = writeln!(
            std::io::stderr(),
            "store_suite: {server}::{name} {what}: {reason}"
        );
    };
    match (tokio::spawn(clause).await, known) {
        (Err(e), Known::Fails(reason)) if e.is_panic() => report("failed as known", reason),
        (Err(e), Known::Racy(reason)) if e.is_panic() => report("lost a known race", reason),
        (Err(e), _) => panic!("{name}: {e}"),
        (Ok(()), Known::Racy(reason)) => report("won a known race this time", reason),
        (Ok(()), Known::Fails(reason)) => {
            panic!("{name} now passes on {server}: remove it from its KNOWN_FAILURES ({reason})")
        }
    }
}

mod filesystem {
    use super::*;

    pub async fn fs_fixture() -> Option<Fixture> {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = blob_gateway::FsStore::open(dir.path()).expect("open FsStore");
        Some(Fixture {
            store: std::sync::Arc::new(store),
            server: "filesystem",
            known_failures: &[],
            _guard: Some(dir),
        })
    }

    store_suite!(fs_fixture);

    /// The filesystem cannot hand out URLs: the API streams blobs instead.
    #[tokio::test]
    async fn filesystem_has_no_presigner() {
        let fixture = fs_fixture().await.expect("a filesystem fixture");
        assert!(
            fixture.store.presigner().is_none(),
            "the filesystem store offers no presigner"
        );
    }

    /// On the filesystem `remove_leftovers` also removes temp files that no writer holds
    /// and that are over a minute old, and empty session folders, and counts them.
    #[tokio::test]
    async fn filesystem_remove_leftovers_removes_stale_temps_and_empty_folders() {
        use std::time::{Duration, SystemTime};

        use blob_gateway::PutCondition;

        let dir = tempfile::tempdir().expect("temp dir");
        let store = blob_gateway::FsStore::open(dir.path()).expect("open FsStore");
        let store: util::Store = std::sync::Arc::new(store);
        let tmp = dir.path().join(".tmp");
        let temp = |name: &str, age: Duration| {
            let file = std::fs::File::create(tmp.join(name)).expect("create temp file");
            file.set_modified(SystemTime::now() - age)
                .expect("age temp file");
            file
        };
        drop(temp("stale", Duration::from_secs(120)));
        drop(temp("fresh", Duration::from_secs(5)));
        let held = temp("held", Duration::from_secs(120));
        held.try_lock().expect("lock the held temp file");
        let state = util::upload_state_key();
        util::put(&store, &state, &b"{}"[..], PutCondition::None)
            .await
            .expect("put upload state");
        let empty = dir
            .path()
            .join("uploads")
            .join(uuid::Uuid::new_v4().to_string());
        std::fs::create_dir_all(&empty).expect("empty session folder");

        let removed = store
            .remove_leftovers(SystemTime::now() - Duration::from_secs(3600))
            .await
            .expect("remove leftovers");
        assert_eq!(removed, 2, "the stale temp file and the empty folder");
        assert!(!tmp.join("stale").exists(), "a stale temp file goes");
        assert!(tmp.join("fresh").exists(), "a fresh temp file stays");
        assert!(
            tmp.join("held").exists(),
            "a temp file a writer holds stays"
        );
        assert!(!empty.exists(), "an empty session folder goes");
        let (bytes, _) = util::read(&store, &state).await;
        assert_eq!(bytes, b"{}", "a live session's objects stay");
        drop(held);
    }
}

#[cfg(feature = "s3")]
mod s3_localstack {
    use super::*;

    async fn localstack() -> Option<Fixture> {
        s3_env::fixture("localstack", "CARGOHOLD_TEST_S3", &[]).await
    }

    store_suite!(localstack);
    s3_env::s3_only!("localstack", "CARGOHOLD_TEST_S3");
}

#[cfg(feature = "s3")]
mod s3_s3s_fs {
    use super::*;

    /// Read in s3s-fs 0.14.1's `s3.rs`: conditions are checked, then the object written,
    /// with no lock between; `CompleteMultipartUpload` reads parts by number only; an
    /// upload id it does not know fails its access check.
    const KNOWN_FAILURES: &[(&str, Known)] = &[
        (
            "concurrent_if_match_writers_lose_no_update",
            Known::Fails("s3s-fs checks If-Match without a lock: concurrent writers all pass"),
        ),
        (
            "concurrent_creators_have_exactly_one_winner",
            Known::Racy(
                "s3s-fs checks If-None-Match without a lock: concurrent creators may all win",
            ),
        ),
        (
            "complete_with_a_wrong_etag_fails",
            Known::Fails("s3s-fs CompleteMultipartUpload never compares part ETags"),
        ),
        (
            "abort_is_idempotent_and_ends_the_upload",
            Known::Fails(
                "s3s-fs answers 403 AccessDenied, not 404 NoSuchUpload, for an upload that is gone",
            ),
        ),
        (
            "remove_leftovers_ends_only_older_uploads",
            Known::Fails(
                "s3s-fs has no ListMultipartUploads: stale uploads are left to lifecycle rules",
            ),
        ),
    ];

    async fn s3s_fs() -> Option<Fixture> {
        s3_env::fixture("s3s-fs", "CARGOHOLD_TEST_S3SFS", KNOWN_FAILURES).await
    }

    store_suite!(s3s_fs);
    s3_env::s3_only!("s3s-fs", "CARGOHOLD_TEST_S3SFS");
}
