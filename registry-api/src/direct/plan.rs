//! How a direct upload is cut: one object, or equal parts within S3's limits.

/// S3's smallest part (all but the last).
pub const MIN_PART: u64 = 5 << 20;
/// S3's largest part, and its largest single `PutObject`.
pub const MAX_PART: u64 = 5 << 30;
/// S3's most parts per upload.
pub const MAX_PARTS: u64 = 10_000;
/// The part size when the client states none.
pub const DEFAULT_PART: u64 = 64 << 20;

/// Why a blob cannot be uploaded directly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {size}-byte blob exceeds {max} bytes ({MAX_PARTS} parts of at most {MAX_PART})")]
pub struct TooLarge {
    /// The blob's size.
    pub size: u64,
    /// The largest blob a direct upload takes.
    pub max: u64,
}

/// The part size for a blob of `size` bytes: `None` for one `PutObject` (up to
/// `single_max`, unless the client asked for parts), else every part but the last
/// `requested` (or [`DEFAULT_PART`]) clamped to S3's limits and grown until the blob
/// fits in [`MAX_PARTS`] parts.
pub fn part_size(
    size: u64,
    requested: Option<u64>,
    single_max: u64,
) -> Result<Option<u64>, TooLarge> {
    let max = MAX_PART * MAX_PARTS;
    if size > max {
        return Err(TooLarge { size, max });
    }
    if requested.is_none() && size <= single_max.min(MAX_PART) {
        return Ok(None);
    }
    let part = requested
        .unwrap_or(DEFAULT_PART)
        .clamp(MIN_PART, MAX_PART)
        .max(size.div_ceil(MAX_PARTS));
    Ok(Some(part))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn parts_respect_s3_limits() {
        let single = 512 * MIB;
        assert_eq!(part_size(100 * MIB, None, single), Ok(None));
        assert_eq!(part_size(600 * MIB, None, single), Ok(Some(DEFAULT_PART)));
        assert_eq!(part_size(10 * MIB, Some(MIB), single), Ok(Some(MIN_PART)));
        assert_eq!(
            part_size(10 * MIB, Some(6 << 30), single),
            Ok(Some(MAX_PART))
        );
        // 10,000 parts at most: a 1 TiB blob needs parts over 100 MiB.
        let tib = 1 << 40;
        assert_eq!(
            part_size(tib, None, single),
            Ok(Some(tib.div_ceil(MAX_PARTS)))
        );
        // A single PutObject never exceeds 5 GiB, whatever the operator set.
        assert_eq!(
            part_size(6 << 30, None, u64::MAX),
            Ok(Some(DEFAULT_PART.max((6u64 << 30).div_ceil(MAX_PARTS))))
        );
        assert!(part_size(MAX_PART * MAX_PARTS + 1, None, single).is_err());
    }
}
