//! The rows of the table, in sections: key, label, which way is better, and what the
//! ratio column divides by.

use super::state::State;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// The last column of a row: cargohold ÷ the best peer, or ÷ another row's figure.
#[derive(Clone, Copy)]
pub enum Ratio {
    BestPeer,
    Of(&'static str),
    None,
}

pub struct Row {
    pub key: &'static str,
    pub label: String,
    pub better: Better,
    pub ratio: Ratio,
    pub decimals: usize,
}

fn row(
    key: &'static str,
    label: impl Into<String>,
    better: Better,
    ratio: Ratio,
    decimals: usize,
) -> Row {
    Row {
        key,
        label: label.into(),
        better,
        ratio,
        decimals,
    }
}

pub struct Section {
    pub title: &'static str,
    /// Rows of cargohold alone (nginx, delivery): the other columns stay empty.
    pub cargohold_only: bool,
    pub rows: Vec<Row>,
}

/// A request row's three figures: rate, p50, p99.
fn request_rows(key: &'static str, label: &str, ratio: [Ratio; 3]) -> [Row; 3] {
    use Better::*;
    let (rps, p50, p99) = match key {
        "man_tag" => ("man_tag_rps", "man_tag_p50", "man_tag_p99"),
        "man_digest" => ("man_digest_rps", "man_digest_p50", "man_digest_p99"),
        "blob_head" => ("blob_head_rps", "blob_head_p50", "blob_head_p99"),
        "nginx_man_tag" => (
            "nginx_man_tag_rps",
            "nginx_man_tag_p50",
            "nginx_man_tag_p99",
        ),
        _ => ("nginx_plain_rps", "nginx_plain_p50", "nginx_plain_p99"),
    };
    [
        row(rps, format!("{label} (req/s)"), Higher, ratio[0], 0),
        row(p50, format!("{label} p50 (ms)"), Lower, ratio[1], 3),
        row(p99, format!("{label} p99 (ms)"), Lower, ratio[2], 3),
    ]
}

pub fn sections(s: &State, delivery: bool) -> Vec<Section> {
    use Better::*;
    use Ratio::*;
    let k = &s.knobs;
    let peer = [BestPeer; 3];
    let mut all = vec![
        row(
            "push_mono",
            format!(
                "push monolithic, {} pushers, {} MiB (MB/s)",
                k.pushers, k.push_mib
            ),
            Higher,
            BestPeer,
            1,
        ),
        row(
            "push_chunked",
            format!(
                "push chunked {} MiB PATCH, {} pushers (MB/s)",
                k.chunk_mib, k.pushers
            ),
            Higher,
            BestPeer,
            1,
        ),
    ];
    all.extend(request_rows("man_tag", "manifest GET by tag", peer));
    all.extend(request_rows("man_digest", "manifest GET by digest", peer));
    all.extend(request_rows("blob_head", "blob HEAD", peer));
    all.extend([
        row(
            "blob_get",
            format!("blob GET {} MiB (GB/s)", k.big_mib),
            Higher,
            BestPeer,
            3,
        ),
        row(
            "tags_p50",
            format!("tags/list, {} tags, p50 (ms)", k.tags),
            Lower,
            BestPeer,
            3,
        ),
        row(
            "tags_p99",
            format!("tags/list, {} tags, p99 (ms)", k.tags),
            Lower,
            BestPeer,
            3,
        ),
        row("rss_hwm", "peak RSS, VmHWM (MiB)", Lower, BestPeer, 1),
    ]);
    let mut nginx = Vec::new();
    let of_plain = [
        Of("nginx_plain_rps"),
        Of("nginx_plain_p50"),
        Of("nginx_plain_p99"),
    ];
    nginx.extend(request_rows(
        "nginx_man_tag",
        "nginx, cargohold.conf: manifest GET by tag",
        of_plain,
    ));
    nginx.extend(request_rows(
        "nginx_plain",
        "nginx, plain file of the same size",
        [None; 3],
    ));
    let mut out = Vec::new();
    if !s.servers.is_empty() {
        out.push(Section {
            title: "all servers; ratio = cargohold / best peer",
            cargohold_only: false,
            rows: all,
        });
    }
    if s.servers.iter().any(|x| x == "cargohold") {
        out.push(Section {
            title: "nginx in front of cargohold's store; ratio = / plain file",
            cargohold_only: true,
            rows: nginx,
        });
    }
    if delivery {
        let p = k.pull_mib;
        let (s3p, s3m, c) = (
            k.s3_pushers.unwrap_or(k.pushers),
            k.s3_push_mib,
            k.chunk_mib,
        );
        let rows = vec![
            row(
                "s3_push_mono",
                format!("S3: push monolithic, {s3p} pushers, {s3m} MiB (MB/s)"),
                Higher,
                None,
                1,
            ),
            row(
                "s3_push_chunked",
                format!("S3: push chunked {c} MiB PATCH, {s3p} pushers (MB/s)"),
                Higher,
                None,
                1,
            ),
            row(
                "s3_redirect_mbs",
                format!("S3: blob GET {p} MiB, redirect (MB/s)"),
                Higher,
                Of("s3_proxy_mbs"),
                1,
            ),
            row(
                "s3_proxy_mbs",
                format!("S3: blob GET {p} MiB, proxy (MB/s)"),
                Higher,
                None,
                1,
            ),
            row(
                "s3_redirect_cpu",
                "S3: API CPU per GB pulled, redirect (s/GB)",
                Lower,
                Of("s3_proxy_cpu"),
                3,
            ),
            row(
                "s3_proxy_cpu",
                "S3: API CPU per GB pulled, proxy (s/GB)",
                Lower,
                None,
                3,
            ),
            row(
                "fs_nginx_mbs",
                format!("fs: blob GET {p} MiB through nginx (MB/s)"),
                Higher,
                Of("fs_direct_mbs"),
                1,
            ),
            row(
                "fs_direct_mbs",
                format!("fs: blob GET {p} MiB from the API (MB/s)"),
                Higher,
                None,
                1,
            ),
            row(
                "fs_nginx_cpu",
                "fs: API CPU per GB pulled, through nginx (s/GB)",
                Lower,
                Of("fs_direct_cpu"),
                3,
            ),
            row(
                "fs_direct_cpu",
                "fs: API CPU per GB pulled, from the API (s/GB)",
                Lower,
                None,
                3,
            ),
            row(
                "fs_nginx_ngx_cpu",
                "fs: nginx worker CPU per GB, through nginx (s/GB)",
                Lower,
                None,
                3,
            ),
        ];
        out.push(Section {
            title: "blob delivery, cargohold only; ratio = / the row named",
            cargohold_only: true,
            rows,
        });
    }
    out
}
