//! Which upstream tags a sync job copies: the job's regex or semver range, then the newest
//! N in version order (semver) or natural order (digit runs compared as numbers, so
//! `3.9 < 3.18` and `20240101 < 20250101`).

use std::cmp::Ordering;

use crate::mirror::settings::{SyncJob, TagFilter};

impl TagFilter {
    /// Whether `tag` passes the filter.
    pub fn matches(&self, tag: &str) -> bool {
        match self {
            Self::All => true,
            Self::Regex(re) => re.is_match(tag),
            Self::Semver(req) => version(tag).is_some_and(|v| req.matches(&v)),
        }
    }
}

impl SyncJob {
    /// The tags of `listed` this job copies, oldest first: those the filter passes, then
    /// the newest `newest` of them.
    pub fn select(&self, listed: Vec<String>) -> Vec<String> {
        let mut tags: Vec<String> = listed
            .into_iter()
            .filter(|t| self.tags.matches(t))
            .collect();
        match self.tags {
            TagFilter::Semver(_) => {
                tags.sort_by(|a, b| version(a).cmp(&version(b)).then_with(|| natural(a, b)))
            }
            _ => tags.sort_by(|a, b| natural(a, b)),
        }
        tags.dedup();
        if let Some(n) = self.newest {
            tags.drain(..tags.len().saturating_sub(n));
        }
        tags
    }
}

/// `tag` as a semantic version: a leading `v` allowed, and a missing minor or patch read
/// as 0 (`3.18` is `3.18.0`), as image tags often leave them out.
pub fn version(tag: &str) -> Option<semver::Version> {
    let bare = tag.strip_prefix(['v', 'V']).unwrap_or(tag);
    [bare.to_owned(), format!("{bare}.0"), format!("{bare}.0.0")]
        .iter()
        .find_map(|s| semver::Version::parse(s).ok())
}

/// Natural order: runs of digits compare as numbers, everything else byte by byte.
fn natural(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) if p.is_ascii_digit() && q.is_ascii_digit() => {
                let (m, rest_x) = split_digits(x);
                let (n, rest_y) = split_digits(y);
                let (m, n) = (trim_zeros(m), trim_zeros(n));
                let order = m.len().cmp(&n.len()).then_with(|| m.cmp(n));
                if order != Ordering::Equal {
                    return order;
                }
                (x, y) = (rest_x, rest_y);
            }
            (Some(p), Some(q)) if p != q => return p.cmp(q),
            _ => (x, y) = (&x[1..], &y[1..]),
        }
    }
}

fn split_digits(s: &[u8]) -> (&[u8], &[u8]) {
    s.split_at(
        s.iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(s.len()),
    )
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    &s[s.iter().position(|&c| c != b'0').unwrap_or(s.len())..]
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn job(tags: TagFilter, newest: Option<usize>) -> SyncJob {
        SyncJob {
            upstream: "up".into(),
            repository: "r".into(),
            tags,
            newest,
            platforms: Vec::new(),
            referrers: false,
            every: None,
        }
    }

    fn semver(req: &str) -> TagFilter {
        TagFilter::Semver(semver::VersionReq::parse(req).expect("valid range"))
    }

    fn regex(re: &str) -> TagFilter {
        TagFilter::Regex(regex::Regex::new(re).expect("valid regex"))
    }

    fn owned(tags: &[&str]) -> Vec<String> {
        tags.iter().map(|&t| t.to_owned()).collect()
    }

    #[test]
    fn semver_ranges_accept_a_leading_v_and_short_versions() {
        let f = semver(">=3.18, <4");
        for yes in ["3.18", "v3.18.2", "3.19.0", "V3.20"] {
            assert!(f.matches(yes), "{yes}");
        }
        for no in ["3.17.9", "4.0", "latest", "3.19-rc1", "edge", "v"] {
            assert!(!f.matches(no), "{no}");
        }
    }

    #[test]
    fn newest_n_in_semver_order() {
        let j = job(semver(">=1"), Some(2));
        let listed = owned(&["v1.10.0", "1.9.0", "v1.2.0", "latest", "1.10.1-rc1"]);
        assert_eq!(j.select(listed), ["1.9.0", "v1.10.0"]);
    }

    #[test]
    fn newest_n_in_natural_order_for_regex_and_all() {
        let listed = owned(&["3.9", "3.18", "3.2", "edge", "3.18.1"]);
        let j = job(regex(r"^3\.\d+$"), Some(2));
        assert_eq!(j.select(listed.clone()), ["3.9", "3.18"]);
        let j = job(TagFilter::All, None);
        assert_eq!(j.select(listed), ["3.2", "3.9", "3.18", "3.18.1", "edge"]);
    }

    #[test]
    fn natural_order_reads_numbers() {
        let mut v = owned(&["a10", "a9", "a010", "b", "a", "20250101", "20240101"]);
        v.sort_by(|a, b| natural(a, b));
        assert_eq!(v, ["20240101", "20250101", "a", "a9", "a010", "a10", "b"]);
    }

    proptest! {
        /// Whatever the tags, `newest` keeps min(N, matching) of the matching tags, and
        /// no matching tag left out sorts after one kept.
        #[test]
        fn newest_keeps_the_greatest_matching_tags(
            listed in proptest::collection::vec("v?[0-9]{1,2}(\\.[0-9]{1,2}){0,2}|[a-z]{1,3}", 0..40),
            n in 1usize..10,
            use_semver in any::<bool>(),
        ) {
            let filter = if use_semver { semver(">=1.0.0") } else { regex("^[0-9v]") };
            let j = job(filter.clone(), Some(n));
            let kept = j.select(listed.clone());
            let mut matching: Vec<String> = listed.into_iter().filter(|t| filter.matches(t)).collect();
            matching.sort();
            matching.dedup();
            prop_assert_eq!(kept.len(), n.min(matching.len()));
            prop_assert!(kept.iter().all(|t| filter.matches(t)));
            let order = |a: &String, b: &String| match &filter {
                TagFilter::Semver(_) => version(a).cmp(&version(b)).then_with(|| natural(a, b)),
                _ => natural(a, b),
            };
            for t in matching.iter().filter(|t| !kept.contains(t)) {
                prop_assert!(kept.iter().all(|k| order(t, k) == Ordering::Less), "{} dropped", t);
            }
            prop_assert!(kept.windows(2).all(|w| order(&w[0], &w[1]) == Ordering::Less));
        }
    }
}
