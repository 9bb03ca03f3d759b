//! `bench`: latency statistics and the generated upload payload.

use serde::Serialize;

/// Summary statistics of a series of samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stats {
    /// Number of samples.
    pub n: usize,
    /// Smallest sample.
    pub min: f64,
    /// Median (nearest rank).
    pub p50: f64,
    /// 95th percentile (nearest rank).
    pub p95: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

/// Nearest-rank percentile of sorted samples (`p` in 0..=100).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Stats {
    /// Statistics of `samples`; `None` if there are none (NaNs are ignored).
    pub fn of(samples: &[f64]) -> Option<Stats> {
        let mut s: Vec<f64> = samples.iter().copied().filter(|v| !v.is_nan()).collect();
        if s.is_empty() {
            return None;
        }
        s.sort_by(f64::total_cmp);
        Some(Stats {
            n: s.len(),
            min: s[0],
            p50: percentile(&s, 50.0),
            p95: percentile(&s, 95.0),
            p99: percentile(&s, 99.0),
            max: s[s.len() - 1],
            mean: s.iter().sum::<f64>() / s.len() as f64,
        })
    }
}

/// Unsigned LEB128 padded to exactly 5 bytes (valid for any u32 section size, and keeps the
/// module length independent of the encoding width).
fn leb128_u32_padded(v: u32, out: &mut Vec<u8>) {
    for i in 0..5 {
        let byte = ((v >> (7 * i)) & 0x7f) as u8;
        out.push(if i < 4 { byte | 0x80 } else { byte });
    }
}

/// Name of the custom section that pads generated bench modules.
pub const PAD_SECTION: &str = "wasmbed.bench";

/// Smallest module [`padded_module`] can produce.
pub const MIN_PADDED: usize = 8 + 1 + 5 + 1 + PAD_SECTION.len();

/// A valid, empty WebAssembly module of exactly `size` bytes, padded by one custom section
/// whose bytes are a pseudo-random function of `seed` (different seeds give different CRCs, so
/// no upload is skipped as identical). Returns `None` if `size` is below [`MIN_PADDED`] or
/// above 4 GiB.
pub fn padded_module(size: usize, seed: u32) -> Option<Vec<u8>> {
    let name = PAD_SECTION.as_bytes();
    if size < MIN_PADDED {
        return None;
    }
    let content = u32::try_from(size - 8 - 1 - 5).ok()?;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(b"\0asm\x01\0\0\0");
    out.push(0);
    leb128_u32_padded(content, &mut out);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    let payload = size - out.len();
    // xorshift32; the multiplier spreads small seeds and keeps the state non-zero.
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    out.extend((0..payload).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as u8
    }));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_nearest_rank() {
        let samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let s = Stats::of(&samples).unwrap();
        assert_eq!(
            (s.min, s.p50, s.p95, s.p99, s.max),
            (1.0, 50.0, 95.0, 99.0, 100.0)
        );
        assert_eq!(s.mean, 50.5);
        assert_eq!(s.n, 100);
        let one = Stats::of(&[7.5]).unwrap();
        assert_eq!((one.min, one.p50, one.p99, one.max), (7.5, 7.5, 7.5, 7.5));
        assert!(Stats::of(&[]).is_none());
        assert!(Stats::of(&[f64::NAN]).is_none());
        let three = Stats::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((three.p50, three.p95), (2.0, 3.0));
    }

    fn read_leb(bytes: &[u8]) -> (usize, usize) {
        let (mut v, mut shift) = (0usize, 0);
        for (i, b) in bytes.iter().enumerate() {
            v |= ((b & 0x7f) as usize) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return (v, i + 1);
            }
        }
        panic!("unterminated leb");
    }

    #[test]
    fn padded_modules_are_exact_and_well_formed() {
        for size in [
            MIN_PADDED,
            MIN_PADDED + 1,
            100,
            127 + 11,
            128 + 11,
            4096,
            16_395,
            16_396,
            70_000,
            1 << 21,
        ] {
            let m = padded_module(size, 7).unwrap_or_else(|| panic!("{size}"));
            assert_eq!(m.len(), size);
            assert_eq!(&m[..8], b"\0asm\x01\0\0\0");
            assert_eq!(m[8], 0, "custom section id");
            let (content, n) = read_leb(&m[9..]);
            assert_eq!(9 + n + content, size, "section covers the rest exactly");
            let name_len = m[9 + n] as usize;
            assert_eq!(&m[10 + n..10 + n + name_len], PAD_SECTION.as_bytes());
        }
        assert!(padded_module(MIN_PADDED - 1, 0).is_none());
        assert_eq!(padded_module(500, 3), padded_module(500, 3));
        assert_ne!(padded_module(500, 3), padded_module(500, 4));
    }

    #[test]
    fn padded_module_is_valid_wasm_for_wabt() {
        // Cross-check with a real validator when wabt is installed.
        let Ok(dir) = tempfile::tempdir() else { return };
        let path = dir.path().join("pad.wasm");
        std::fs::write(&path, padded_module(1000, 0).unwrap()).unwrap();
        match std::process::Command::new("wasm-validate")
            .arg(&path)
            .status()
        {
            Ok(status) => assert!(status.success(), "wasm-validate rejected the module"),
            Err(_) => eprintln!("wasm-validate not installed; structural test only"),
        }
    }
}
