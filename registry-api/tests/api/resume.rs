//! A closing `PUT` retried after the server died at any step of finishing the upload
//! completes it: the server is made to abort right after each step in turn
//! (`CARGOHOLD_TEST_CRASH_AFTER`), restarted on the same store, and the client repeats
//! its request. Runs on whichever store the suite runs on (filesystem with R2's part rule,
//! or S3).

use reqwest::StatusCode;

use crate::util::*;

const POINTS: [&str; 4] = ["received", "assembled", "published", "linked"];

/// Chunks, then a closing `PUT` carrying the last one; the server dies after `point`.
async fn crash_then_retry(point: &str, monolithic_close: bool) {
    let s3 = s3_backend();
    let mut s = TestServer::crashing_after(point, small_parts(s3)).await;
    let data = bytes(5_000, 3);
    let d = digest(&data);
    let loc = s.start_upload("r").await;
    let split = if monolithic_close { 0 } else { 2_100 };
    if split > 0 {
        let r = s.patch(&loc, 0, &data[..split]).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{point}: PATCH");
    }
    let died = s
        .req(reqwest::Method::PUT, &format!("{loc}?digest={d}"))
        .header("content-range", format!("{split}-{}", data.len() - 1))
        .body(data[split..].to_vec())
        .send()
        .await;
    assert!(
        died.is_err() || died.as_ref().is_ok_and(|r| r.status().is_server_error()),
        "{point}: the server should have died, answered {died:?}"
    );
    s.kill();

    let s2 = s.sharing(&[]).await;
    let status = s2.upload_status(&loc).await;
    assert_eq!(
        header(&status, "range"),
        format!("0-{}", data.len() - 1),
        "{point}"
    );
    let r = s2.finish_upload_from(&loc, &d, split, &data[split..]).await;
    assert_status(r, StatusCode::CREATED, &format!("{point}: retried PUT")).await;
    assert_eq!(s2.blob_bytes("r", &d).await, data, "{point}");
    assert_eq!(
        s2.get_status(&loc).await,
        StatusCode::NOT_FOUND,
        "{point}: session gone"
    );
    let report = s2.command(&["index", "check"]);
    assert!(report.contains(" 0 findings"), "{point}: {report}");
}

#[tokio::test]
async fn closing_put_retried_after_a_crash_at_any_step_finishes_the_upload() {
    for point in POINTS {
        crash_then_retry(point, false).await;
    }
}

#[tokio::test]
async fn single_request_upload_retried_after_a_crash_at_any_step_finishes() {
    for point in POINTS {
        crash_then_retry(point, true).await;
    }
}

#[tokio::test]
async fn finished_uploads_leave_no_session_folders() {
    let s = TestServer::spawn().await;
    let Some(root) = s.fs_root() else {
        return; // folders are a filesystem matter
    };
    for seed in 0..3 {
        let data = bytes(3_000, seed);
        let loc = s.start_upload("r").await;
        let r = s.finish_upload(&loc, &digest(&data), &data).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let uploads = root.join("uploads");
    let left: Vec<_> = std::fs::read_dir(&uploads)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}
