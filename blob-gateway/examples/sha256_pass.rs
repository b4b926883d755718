//! One SHA-256 pass over MiB mebibytes (argument, default 512) with the `sha2` crate the
//! store verifies direct uploads with: the limit `bench/direct-upload.sh` holds the direct
//! multipart path's API CPU to. Hashes one 8 MiB buffer over and over (SHA-256's speed
//! does not depend on the bytes), so the process's CPU time is the hash's.

use sha2::{Digest as _, Sha256};

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(512);
    let buf: Vec<u8> = (0..8usize << 20).map(|i| (i * 31 % 251) as u8).collect();
    let mut hash = Sha256::new();
    let mut left = mib << 20;
    while left > 0 {
        let n = left.min(buf.len());
        hash.update(&buf[..n]);
        left -= n;
    }
    println!("{}", hex::encode(hash.finalize()));
}
