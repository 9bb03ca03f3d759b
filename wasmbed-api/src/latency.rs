//! The gateway's latency book as its HTTP API serves it (`GET /api/latency`, docs/HOST-API.md
//! "HTTP API"): per operation and device, percentiles of the time the gateway spent on each
//! request and of its compile / transfer / device phases, overall and per time window, the
//! distribution of the total, and the latest requests over time. All times in milliseconds.

use serde::{Deserialize, Serialize};

/// `GET /api/latency`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyReport {
    /// Length of one window (seconds); windows start at multiples of it (Unix time).
    pub window_s: u64,
    /// Windows kept per operation and device, the current one included; older ones are dropped.
    pub windows_kept: usize,
    /// One entry per (operation, device), by operation then device.
    pub latency: Vec<LatencySummary>,
}

/// One request as plotted over time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencySample {
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

/// Percentiles of one phase (nearest rank, from an HDR histogram).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Upper bound of the bucket (ms).
    pub le_ms: f64,
    /// Requests in the bucket.
    pub count: u64,
}

/// The requests of one time window: `[start, start + window_s)`, by when each ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyWindow {
    /// Start of the window (Unix seconds, a multiple of the report's `window_s`).
    pub start: u64,
    /// Requests that failed in the window (counted in the percentiles too).
    pub errors: u64,
    /// Total time in the gateway; `total.count` is the window's requests.
    pub total: Percentiles,
    /// Compile phase, if a request of the window had one.
    pub compile: Option<Percentiles>,
    /// Transfer phase.
    pub transfer: Option<Percentiles>,
    /// Device phase.
    pub device_phase: Option<Percentiles>,
    /// Distribution of the total in the window (the same bucket bounds in every window and in
    /// [`LatencySummary::histogram`]; empty buckets left out).
    pub histogram: Vec<Bucket>,
}

/// What the gateway measured of one (operation, device).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Operation (`status`, `start`, `deploy`, ...).
    pub op: String,
    /// Device name.
    pub device: String,
    /// Requests that failed (they are in the histograms too).
    pub errors: u64,
    /// Total time in the gateway, since the gateway started.
    pub total: Percentiles,
    /// Compile phase, if any request had one.
    pub compile: Option<Percentiles>,
    /// Transfer phase.
    pub transfer: Option<Percentiles>,
    /// Device phase.
    pub device_phase: Option<Percentiles>,
    /// Distribution of the total since the gateway started (log-spaced buckets, empty ones
    /// left out).
    pub histogram: Vec<Bucket>,
    /// The windows that had requests, oldest first, the current one last (at most the report's
    /// `windows_kept`, none older than that many windows).
    pub windows: Vec<LatencyWindow>,
    /// The latest requests, oldest first.
    pub series: Vec<LatencySample>,
}
