//! A time-bounded mutation fuzzer for the targets in `lib.rs`, on the stable toolchain:
//! `cargo run -p cargohold-fuzz --release -- [--seconds N] [--seed S] [TARGET...]`.
//!
//! Each round takes a seed input, applies a few random mutations (byte flips, inserts and
//! deletions, splices of tokens parsers care about: `..`, `%2F`, brackets, huge numbers)
//! and runs the target. No coverage guidance: this finds what grammar-aware random
//! inputs find; for guided fuzzing, wrap the same targets with `cargo afl` (see README).

use std::panic;
use std::time::{Duration, Instant};

use cargohold_fuzz::TARGETS;

/// Fragments parsers treat specially.
const TOKENS: &[&str] = &[
    "..",
    "%2F",
    "%2e%2e",
    "%00",
    "\\",
    "/",
    ":",
    "-",
    ",",
    "=",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "\\\"",
    "99999999999999999999",
    "0",
    "bytes=",
    "sha256:",
    "_manifests",
    "\u{0}",
    "\u{ff}",
    r#""size":"#,
    r#""config":"#,
    "[[[[[[[[[[[[[[[[",
    "null",
    "true",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    for _ in 0..=rng.below(8) {
        let at = rng.below(input.len() + 1);
        match rng.below(5) {
            0 if at < input.len() => input[at] ^= 1 << rng.below(8),
            1 => input.insert(at, rng.next() as u8),
            2 if at < input.len() => {
                let end = (at + rng.below(16)).min(input.len());
                input.drain(at..end);
            }
            3 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                let most = if rng.below(20) == 0 { 2000 } else { 3 };
                let times = 1 + rng.below(most);
                for _ in 0..times {
                    input.splice(at..at, t.iter().copied());
                }
            }
            _ if !input.is_empty() => {
                // Repeat a slice of the input itself (duplicate keys, long components).
                let from = rng.below(input.len());
                let end = (from + rng.below(64)).min(input.len());
                let chunk = input[from..end].to_vec();
                input.splice(at..at, chunk);
            }
            _ => {}
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut seconds, mut seed, mut only) = (30u64, 0x5eed_u64, Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(seconds),
            "--seed" => seed = args.next().and_then(|s| s.parse().ok()).unwrap_or(seed),
            name => only.push(name.to_owned()),
        }
    }
    let targets: Vec<_> = TARGETS
        .iter()
        .filter(|(name, ..)| only.is_empty() || only.iter().any(|o| o == name))
        .collect();
    if targets.is_empty() {
        eprintln!(
            "no such target; targets: {:?}",
            TARGETS.iter().map(|t| t.0).collect::<Vec<_>>()
        );
        std::process::exit(2);
    }
    let budget = Duration::from_secs(seconds) / targets.len() as u32;
    let mut rng = Rng(seed | 1);
    for (name, target, seeds) in targets {
        let started = Instant::now();
        let mut runs = 0u64;
        while started.elapsed() < budget {
            let mut input = seeds[rng.below(seeds.len())].as_bytes().to_vec();
            mutate(&mut rng, &mut input);
            if panic::catch_unwind(|| target(&input)).is_err() {
                eprintln!(
                    "{name}: failing input ({} bytes): {:?}",
                    input.len(),
                    String::from_utf8_lossy(&input)
                );
                std::process::exit(1);
            }
            runs += 1;
        }
        println!(
            "{name}: {runs} inputs in {:.1}s, no failure",
            started.elapsed().as_secs_f64()
        );
    }
}
