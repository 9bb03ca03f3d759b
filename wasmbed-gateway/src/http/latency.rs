//! The latency book the dashboard shows: per operation and device, HDR histograms of the time the
//! gateway spent on each request (total and its compile / transfer / device phases), since the
//! gateway started and per time window (a minute by default, the last hour kept), and the latest
//! samples over time. Every Wasmbed-dialect request is recorded, whether it came over the
//! JSON-lines API (the CLI, `bench`) or over HTTP.
//!
//! Memory is bounded per (operation, device): the histograms since start and of the current
//! window (auto-resizing HDR histograms, as large as the longest latency recorded needs), the
//! closed windows as their percentiles and buckets only (at most `windows - 1` of them), and
//! [`SERIES_LEN`] samples.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use wasmbed_api::latency::{
    Bucket, LatencyReport, LatencySample, LatencySummary, LatencyWindow, Percentiles,
};

use crate::api::Latency;

/// Samples kept per (operation, device) for the chart over time.
pub const SERIES_LEN: usize = 500;

/// Default window length (`limits.latency_window_s`).
pub const WINDOW_S: u64 = 60;

/// Default windows kept, the current one included (`limits.latency_windows`).
pub const WINDOWS: usize = 60;

/// Highest latency a histogram holds exactly (one hour, in microseconds); longer ones saturate.
const MAX_US: u64 = 3_600_000_000;

/// Significant digits of every histogram (0.1 %).
const SIGFIG: u8 = 3;

fn us(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, MAX_US)
}

/// Records `d` into an auto-resizing histogram (growing it as needed; `saturating_record` would
/// not grow it).
fn put(h: &mut Histogram<u64>, d: Duration) {
    let v = us(d);
    if h.record(v).is_err() {
        h.saturating_record(v);
    }
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

/// Log-spaced buckets (10 µs, ×1.5 each), the same bounds for every histogram; empty ones left
/// out.
fn buckets(h: &Histogram<u64>) -> Vec<Bucket> {
    h.iter_log(10, 1.5)
        .filter(|v| v.count_since_last_iteration() > 0)
        .map(|v| Bucket {
            le_ms: v.value_iterated_to() as f64 / 1e3,
            count: v.count_since_last_iteration(),
        })
        .collect()
}

/// The histograms of a set of requests: total and phases, and how many failed.
struct Phases {
    total: Histogram<u64>,
    compile: Histogram<u64>,
    transfer: Histogram<u64>,
    device: Histogram<u64>,
    errors: u64,
}

impl Phases {
    fn new() -> Self {
        // Auto-resizing: a histogram grows to the largest value recorded (at most MAX_US), so
        // one of millisecond requests stays a few kilobytes.
        let h = || Histogram::new(SIGFIG).expect("valid histogram precision");
        Self {
            total: h(),
            compile: h(),
            transfer: h(),
            device: h(),
            errors: 0,
        }
    }

    fn record(&mut self, lat: &Latency, total: Duration, ok: bool) {
        put(&mut self.total, total);
        for (h, d) in [
            (&mut self.compile, lat.compile),
            (&mut self.transfer, lat.transfer),
            (&mut self.device, lat.device),
        ] {
            if let Some(d) = d {
                put(h, d);
            }
        }
        if !ok {
            self.errors += 1;
        }
    }

    fn window(&self, start: u64) -> Option<LatencyWindow> {
        Some(LatencyWindow {
            start,
            errors: self.errors,
            total: percentiles(&self.total)?,
            compile: percentiles(&self.compile),
            transfer: percentiles(&self.transfer),
            device_phase: percentiles(&self.device),
            histogram: buckets(&self.total),
        })
    }
}

struct Entry {
    /// Since the gateway started.
    all: Phases,
    /// The current window: its start and histograms.
    open: (u64, Phases),
    /// Earlier windows with requests, summarized when they closed, oldest first.
    closed: VecDeque<LatencyWindow>,
    series: VecDeque<LatencySample>,
}

/// The book; cheap to record into from any task.
pub struct LatencyBook {
    window_s: u64,
    keep: usize,
    entries: Mutex<BTreeMap<(String, String), Entry>>,
}

impl Default for LatencyBook {
    fn default() -> Self {
        Self::new(WINDOW_S, WINDOWS)
    }
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl LatencyBook {
    /// A book with windows of `window_s` seconds (at least 1), keeping `windows` of them (at
    /// least 1: the current one).
    pub fn new(window_s: u64, windows: usize) -> Self {
        Self {
            window_s: window_s.max(1),
            keep: windows.max(1),
            entries: Mutex::default(),
        }
    }

    /// The start of the window holding Unix time `at`.
    fn start_of(&self, at: f64) -> u64 {
        let s = at.max(0.0) as u64;
        s - s % self.window_s
    }

    /// Drops the closed windows that are `keep` windows or more older than the one of `at`.
    fn prune(&self, e: &mut Entry, at: f64) {
        let oldest = self
            .start_of(at)
            .saturating_sub((self.keep as u64 - 1).saturating_mul(self.window_s));
        while e.closed.front().is_some_and(|w| w.start < oldest) || e.closed.len() >= self.keep {
            e.closed.pop_front();
        }
    }

    /// Records one request of `op` on `device` (`ok` = it succeeded), ended now.
    pub fn record(&self, op: &str, device: &str, lat: &Latency, total: Duration, ok: bool) {
        self.record_at(op, device, lat, total, ok, now_unix());
    }

    /// Records one request that ended at Unix time `at` (seconds).
    fn record_at(&self, op: &str, device: &str, lat: &Latency, total: Duration, ok: bool, at: f64) {
        let start = self.start_of(at);
        let mut g = self.entries.lock().expect("latency lock");
        let e = g
            .entry((op.to_string(), device.to_string()))
            .or_insert_with(|| Entry {
                all: Phases::new(),
                open: (start, Phases::new()),
                closed: VecDeque::new(),
                series: VecDeque::new(),
            });
        // (A clock set back records into the current window.)
        if start > e.open.0 {
            let (was, phases) = std::mem::replace(&mut e.open, (start, Phases::new()));
            e.closed.extend(phases.window(was));
        }
        self.prune(e, at);
        e.all.record(lat, total, ok);
        e.open.1.record(lat, total, ok);
        if e.series.len() == SERIES_LEN {
            e.series.pop_front();
        }
        e.series.push_back(LatencySample {
            at,
            total_ms: ms(total),
            compile_ms: lat.compile.map(ms),
            transfer_ms: lat.transfer.map(ms),
            device_ms: lat.device.map(ms),
        });
    }

    /// Everything recorded, by operation then device.
    pub fn summaries(&self) -> Vec<LatencySummary> {
        self.summaries_at(now_unix())
    }

    /// The book as `GET /api/latency` serves it.
    pub fn report(&self) -> LatencyReport {
        LatencyReport {
            window_s: self.window_s,
            windows_kept: self.keep,
            latency: self.summaries(),
        }
    }

    fn summaries_at(&self, now: f64) -> Vec<LatencySummary> {
        let oldest = self
            .start_of(now)
            .saturating_sub((self.keep as u64 - 1).saturating_mul(self.window_s));
        let mut g = self.entries.lock().expect("latency lock");
        g.iter_mut()
            .filter_map(|((op, device), e)| {
                self.prune(e, now);
                let open = (e.open.0 >= oldest)
                    .then(|| e.open.1.window(e.open.0))
                    .flatten();
                Some(LatencySummary {
                    op: op.clone(),
                    device: device.clone(),
                    errors: e.all.errors,
                    total: percentiles(&e.all.total)?,
                    compile: percentiles(&e.all.compile),
                    transfer: percentiles(&e.all.transfer),
                    device_phase: percentiles(&e.all.device),
                    histogram: buckets(&e.all.total),
                    windows: e.closed.iter().cloned().chain(open).collect(),
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
        // Recorded within a second or so: one or two windows, together every request.
        let n: u64 = st.windows.iter().map(|w| w.total.count).sum();
        assert_eq!(n, st.total.count);
    }

    #[test]
    fn huge_window_settings_do_not_overflow() {
        let book = LatencyBook::new(u64::MAX / 2, usize::MAX);
        ok(&book, 1, None, true, 1_000_000.0);
        ok(&book, 2, None, true, 1_000_001.0);
        let s = &book.summaries_at(1_000_002.0)[0];
        assert_eq!(s.total.count, 2);
        assert_eq!(s.windows.iter().map(|w| w.total.count).sum::<u64>(), 2);
    }

    fn ok(book: &LatencyBook, total_ms: u64, device_ms: Option<u64>, good: bool, at: f64) {
        let lat = Latency {
            device: device_ms.map(Duration::from_millis),
            ..Default::default()
        };
        book.record_at(
            "start",
            "sim",
            &lat,
            Duration::from_millis(total_ms),
            good,
            at,
        );
    }

    #[test]
    fn windows_split_by_time_with_their_own_percentiles_and_a_bounded_history() {
        // 10 s windows, 3 kept.
        let book = LatencyBook::new(10, 3);
        let t0 = 1_000_000.0; // a multiple of 10
        for i in 0..10 {
            ok(&book, 1 + i, Some(1), true, t0 + 0.5 * i as f64); // [t0, t0+10)
        }
        for _ in 0..3 {
            ok(&book, 100, None, false, t0 + 12.0); // [t0+10, t0+20)
        }
        // Nothing in [t0+20, t0+30): no window for it.
        ok(&book, 7, Some(2), true, t0 + 35.0);

        // Three windows kept counting from the current one: [t0+10, t0+40); the empty one
        // is not listed, the first one is dropped.
        let s = &book.summaries_at(t0 + 36.0)[0];
        let starts: Vec<u64> = s.windows.iter().map(|w| w.start).collect();
        assert_eq!(starts, vec![t0 as u64 + 10, t0 as u64 + 30], "{s:?}");
        // Everything is still in the overall figures.
        assert_eq!(s.total.count, 14);
        assert_eq!(s.errors, 3);
        // A window later, the one of t0+10 is too old as well.
        let s = &book.summaries_at(t0 + 41.0)[0];
        let starts: Vec<u64> = s.windows.iter().map(|w| w.start).collect();
        assert_eq!(starts, vec![t0 as u64 + 30], "{s:?}");

        let book = LatencyBook::new(10, 3);
        for i in 0..10 {
            ok(&book, 1 + i, Some(1), true, t0 + 0.5 * i as f64);
        }
        for _ in 0..3 {
            ok(&book, 100, None, false, t0 + 12.0);
        }
        let s = &book.summaries_at(t0 + 15.0)[0];
        assert_eq!(s.windows.len(), 2, "{s:?}");
        let (a, b) = (&s.windows[0], &s.windows[1]);
        assert_eq!((a.start, a.total.count, a.errors), (t0 as u64, 10, 0));
        assert_eq!((b.start, b.total.count, b.errors), (t0 as u64 + 10, 3, 3));
        assert!((a.total.p50 - 5.0).abs() < 0.01, "{a:?}");
        assert!((a.total.p99 - 10.0).abs() < 0.01, "{a:?}");
        assert_eq!(a.device_phase.unwrap().count, 10);
        assert!(b.device_phase.is_none());
        assert!((b.total.p50 - 100.0).abs() < 0.1, "{b:?}");
        for w in [a, b] {
            let n: u64 = w.histogram.iter().map(|b| b.count).sum();
            assert_eq!(n, w.total.count);
        }
        // The same bucket bounds in a window and overall.
        let all: Vec<f64> = s.histogram.iter().map(|b| b.le_ms).collect();
        assert!(a.histogram.iter().all(|b| all.contains(&b.le_ms)), "{s:?}");
        assert!(b.histogram.iter().all(|b| all.contains(&b.le_ms)), "{s:?}");

        // Much later: the current window has moved on, the old ones are dropped even though
        // nothing new came; the overall figures stay.
        let s = &book.summaries_at(t0 + 1000.0)[0];
        assert!(s.windows.is_empty(), "{s:?}");
        assert_eq!(s.total.count, 13);

        // However long it runs, at most `keep` windows.
        let book = LatencyBook::new(1, 3);
        for i in 0..100 {
            ok(&book, 1, None, true, t0 + i as f64);
        }
        let s = &book.summaries_at(t0 + 99.5)[0];
        let starts: Vec<u64> = s.windows.iter().map(|w| w.start).collect();
        assert_eq!(starts, vec![t0 as u64 + 97, t0 as u64 + 98, t0 as u64 + 99]);
        assert_eq!(
            book.entries.lock().unwrap()[&("start".to_string(), "sim".to_string())]
                .closed
                .len(),
            2
        );
    }
}
