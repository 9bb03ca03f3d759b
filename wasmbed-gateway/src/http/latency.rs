//! The latency book the dashboard shows: per operation and device, HDR histograms of the time the
//! gateway spent on each request (total and its compile / transfer / device phases) and the
//! latest samples over time. Every Wasmbed-dialect request is recorded, whether it came over the
//! JSON-lines API (the CLI, `bench`) or over HTTP.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::api::Latency;

/// Samples kept per (operation, device) for the chart over time.
pub const SERIES_LEN: usize = 500;

/// Highest latency a histogram holds exactly (one hour, in microseconds); longer ones saturate.
const MAX_US: u64 = 3_600_000_000;

/// One request as plotted over time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Wall clock (Unix seconds, fractional) when the request ended.
    pub at: f64,
    /// Total time in the gateway (ms).
    pub total_ms: f64,
    /// Compile phase (ms), when there was one.
    pub compile_ms: Option<f64>,
    /// Transfer phase (ms), when there was one.
    pub transfer_ms: Option<f64>,
    /// Device round trips (ms), when there were any.
    pub device_ms: Option<f64>,
}

/// Percentiles of one phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// Requests measured in this phase.
    pub count: u64,
    /// Median (ms).
    pub p50: f64,
    /// 95th percentile (ms).
    pub p95: f64,
    /// 99th percentile (ms).
    pub p99: f64,
    /// Maximum (ms).
    pub max: f64,
}

/// One bucket of a latency distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bucket {
    /// Upper bound of the bucket (ms).
    pub le_ms: f64,
    /// Requests in the bucket.
    pub count: u64,
}

/// What the book knows of one (operation, device).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Operation (`status`, `start`, `deploy`, ...).
    pub op: String,
    /// Device name.
    pub device: String,
    /// Requests that failed (they are in the histograms too).
    pub errors: u64,
    /// Total time in the gateway.
    pub total: Percentiles,
    /// Compile phase, if any request had one.
    pub compile: Option<Percentiles>,
    /// Transfer phase.
    pub transfer: Option<Percentiles>,
    /// Device phase.
    pub device_phase: Option<Percentiles>,
    /// Distribution of the total (log-spaced buckets, empty ones left out).
    pub histogram: Vec<Bucket>,
    /// The latest samples, oldest first.
    pub series: Vec<Sample>,
}

struct Entry {
    total: Histogram<u64>,
    compile: Histogram<u64>,
    transfer: Histogram<u64>,
    device: Histogram<u64>,
    errors: u64,
    series: VecDeque<Sample>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

fn us(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, MAX_US)
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn percentiles(h: &Histogram<u64>) -> Option<Percentiles> {
    let q = |p: f64| h.value_at_quantile(p) as f64 / 1e3;
    (!h.is_empty()).then(|| Percentiles {
        count: h.len(),
        p50: q(0.50),
        p95: q(0.95),
        p99: q(0.99),
        max: h.max() as f64 / 1e3,
    })
}

/// The book; cheap to record into from any task.
#[derive(Default)]
pub struct LatencyBook {
    entries: Mutex<BTreeMap<(String, String), Entry>>,
}

impl LatencyBook {
    /// Records one request of `op` on `device` (`ok` = it succeeded).
    pub fn record(&self, op: &str, device: &str, lat: &Latency, total: Duration, ok: bool) {
        let mut g = self.entries.lock().expect("latency lock");
        let e = g
            .entry((op.to_string(), device.to_string()))
            .or_insert_with(|| Entry {
                total: histogram(),
                compile: histogram(),
                transfer: histogram(),
                device: histogram(),
                errors: 0,
                series: VecDeque::new(),
            });
        e.total.saturating_record(us(total));
        for (h, d) in [
            (&mut e.compile, lat.compile),
            (&mut e.transfer, lat.transfer),
            (&mut e.device, lat.device),
        ] {
            if let Some(d) = d {
                h.saturating_record(us(d));
            }
        }
        if !ok {
            e.errors += 1;
        }
        if e.series.len() == SERIES_LEN {
            e.series.pop_front();
        }
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        e.series.push_back(Sample {
            at,
            total_ms: ms(total),
            compile_ms: lat.compile.map(ms),
            transfer_ms: lat.transfer.map(ms),
            device_ms: lat.device.map(ms),
        });
    }

    /// Everything recorded, by operation then device.
    pub fn summaries(&self) -> Vec<Summary> {
        let g = self.entries.lock().expect("latency lock");
        g.iter()
            .filter_map(|((op, device), e)| {
                let histogram = e
                    .total
                    .iter_log(10, 1.5)
                    .filter(|v| v.count_since_last_iteration() > 0)
                    .map(|v| Bucket {
                        le_ms: v.value_iterated_to() as f64 / 1e3,
                        count: v.count_since_last_iteration(),
                    })
                    .collect();
                Some(Summary {
                    op: op.clone(),
                    device: device.clone(),
                    errors: e.errors,
                    total: percentiles(&e.total)?,
                    compile: percentiles(&e.compile),
                    transfer: percentiles(&e.transfer),
                    device_phase: percentiles(&e.device),
                    histogram,
                    series: e.series.iter().copied().collect(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_phases_and_bounded_series() {
        let book = LatencyBook::default();
        for i in 1..=(SERIES_LEN as u64 + 10) {
            let lat = Latency {
                device: Some(Duration::from_micros(500)),
                ..Default::default()
            };
            book.record(
                "status",
                "sim",
                &lat,
                Duration::from_micros(i * 10),
                i % 2 == 0,
            );
        }
        book.record(
            "build_and_deploy",
            "sim",
            &Latency {
                compile: Some(Duration::from_millis(40)),
                transfer: Some(Duration::from_millis(3)),
                device: Some(Duration::from_millis(4)),
            },
            Duration::from_millis(50),
            true,
        );
        let s = book.summaries();
        assert_eq!(s.len(), 2);
        let b = &s[0];
        assert_eq!(
            (b.op.as_str(), b.device.as_str()),
            ("build_and_deploy", "sim")
        );
        assert!((b.compile.unwrap().p50 - 40.0).abs() < 0.1, "{b:?}");
        assert!((b.transfer.unwrap().p99 - 3.0).abs() < 0.01, "{b:?}");
        let st = &s[1];
        assert_eq!(st.total.count, SERIES_LEN as u64 + 10);
        assert_eq!(st.errors, (SERIES_LEN as u64 + 10).div_ceil(2));
        assert_eq!(st.series.len(), SERIES_LEN);
        assert_eq!(st.series.last().unwrap().total_ms, 5.1);
        // 10 µs .. 5.1 ms evenly: the median is about 2.55 ms.
        assert!((st.total.p50 - 2.55).abs() < 0.02, "{:?}", st.total);
        assert!(st.compile.is_none());
        assert_eq!(st.device_phase.unwrap().p50, 0.5);
        let n: u64 = st.histogram.iter().map(|b| b.count).sum();
        assert_eq!(n, st.total.count);
    }
}
