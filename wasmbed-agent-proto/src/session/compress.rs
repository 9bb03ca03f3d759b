//! When a compressed upload (`LOAD … compress=deflate`, docs/PROTOCOL.md "Compressed uploads")
//! pays: the decision is the gateway's, made from the link speed and the two sizes.

use std::time::Duration;

/// The slowest inflater speed the decision assumes (bytes of module per second): miniz's tinfl on
/// a Cortex-M4 at its reset clock. The agent inflates each chunk before it acknowledges it, so
/// this time is on the upload's path.
pub const INFLATE_BYTES_PER_SEC: u64 = 1_000_000;

/// The least a compressed upload must save, so that noise never flips the decision.
pub const MIN_SAVING: Duration = Duration::from_millis(5);

/// The time saved by sending `deflated` bytes instead of `raw` at `line_bytes_per_sec`, minus the
/// device's inflation time; `None` when compressing does not pay. `line_bytes_per_sec` `None`
/// is an instant link (an emulator over TCP): the bytes cost nothing, compressing never pays.
pub fn deflate_saving(
    raw: usize,
    deflated: usize,
    line_bytes_per_sec: Option<u32>,
) -> Option<Duration> {
    let rate = u64::from(line_bytes_per_sec.filter(|&r| r > 0)?);
    let saved_bytes = (raw as u64).checked_sub(deflated as u64)?;
    let saved = Duration::from_micros(saved_bytes * 1_000_000 / rate);
    let inflate = Duration::from_micros(raw as u64 * 1_000_000 / INFLATE_BYTES_PER_SEC);
    saved.checked_sub(inflate).filter(|s| *s >= MIN_SAVING)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pays_on_slow_lines_only() {
        // 64 KiB that halves: at 115200 baud it saves about 2.8 s, on an instant link nothing
        let s = deflate_saving(65_536, 32_768, Some(11_520)).unwrap();
        assert!(
            s > Duration::from_millis(2_700) && s < Duration::from_millis(2_900),
            "{s:?}"
        );
        assert_eq!(deflate_saving(65_536, 32_768, None), None);
        // incompressible bytes, or a line so fast that inflating costs more than it saves
        assert_eq!(deflate_saving(65_536, 65_600, Some(11_520)), None);
        assert_eq!(deflate_saving(65_536, 60_000, Some(10_000_000)), None);
        // a tiny module saves less than the noise margin
        assert_eq!(deflate_saving(460, 300, Some(92_160)), None);
    }
}
