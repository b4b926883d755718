//! `FsStore` conditions hold across processes sharing one directory: this test binary runs
//! itself twice more as writers (the ignored `child_writer` test, selected by name), and
//! both increment counters in one object by `IfMatch` read-modify-write.

use std::sync::Arc;
use std::time::Duration;

use blob_gateway::{FsStore, PutCondition, StoreError};

use crate::util::*;

const ROOT_ENV: &str = "CARGOHOLD_SUITE_FS_CHILD_ROOT";
const ID_ENV: &str = "CARGOHOLD_SUITE_FS_CHILD_ID";
const PROCESSES: usize = 2;
const TASKS: usize = 4;
const ROUNDS: usize = 25;
const SLOT: usize = 4;

fn counter_key() -> index_format::StorageKey {
    tag_key("suite/processes", "counter")
}

#[tokio::test]
async fn fs_conditional_puts_from_two_processes_lose_no_update() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Store = Arc::new(FsStore::open(dir.path()).expect("open"));
    let seed = "0".repeat(PROCESSES * TASKS * SLOT);
    put(&store, &counter_key(), seed, PutCondition::IfNoneMatch)
        .await
        .expect("seed");

    let exe = std::env::current_exe().expect("the test binary's path");
    let children = (0..PROCESSES).map(|id| {
        tokio::process::Command::new(&exe)
            .args([
                "--exact",
                "fs_processes::child_writer",
                "--ignored",
                "--nocapture",
            ])
            .args(["--test-threads", "1"])
            .env(ROOT_ENV, dir.path())
            .env(ID_ENV, id.to_string())
            .kill_on_drop(true)
            .output()
    });
    let outputs = futures::future::join_all(children).await;
    for (id, out) in outputs.into_iter().enumerate() {
        let out = out.expect("run writer process");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "writer process {id}: {}\n{stdout}\n{stderr}",
            out.status
        );
        assert!(
            stdout.contains("1 passed"),
            "writer process {id} ran its test:\n{stdout}"
        );
    }

    let (bytes, _) = read(&store, &counter_key()).await;
    let want = format!("{ROUNDS:0SLOT$}").repeat(PROCESSES * TASKS);
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        want,
        "no process lost an update"
    );
}

/// One writer process: `TASKS` tasks, each incrementing its own counter `ROUNDS` times.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a child process of fs_conditional_puts_from_two_processes_lose_no_update"]
async fn child_writer() {
    let root = std::env::var(ROOT_ENV).expect("run by the cross-process test, which sets the root");
    let id: usize = std::env::var(ID_ENV)
        .expect("writer id")
        .parse()
        .expect("numeric id");
    let store: Store = Arc::new(FsStore::open(root).expect("open"));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = store.clone();
        let slot = id * TASKS + task;
        tasks.push(tokio::spawn(async move {
            for _ in 0..ROUNDS {
                loop {
                    let (bytes, info) = read_either(&store, &counter_key(), task % 2 == 0).await;
                    let text = String::from_utf8(bytes).expect("ASCII counter");
                    let n: usize = text[slot * SLOT..(slot + 1) * SLOT]
                        .parse()
                        .expect("number");
                    let mut next = text.clone();
                    next.replace_range(
                        slot * SLOT..(slot + 1) * SLOT,
                        &format!("{:0SLOT$}", n + 1),
                    );
                    match put(
                        &store,
                        &counter_key(),
                        next,
                        PutCondition::IfMatch(info.etag),
                    )
                    .await
                    {
                        Ok(_) => break,
                        Err(StoreError::PreconditionFailed { .. }) => {
                            tokio::time::sleep(Duration::from_micros((slot as u64 * 97) % 500))
                                .await;
                        }
                        Err(e) => panic!("writer {id}/{task}: {e:#?}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer task");
    }
}
