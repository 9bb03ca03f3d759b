//! The `bench` command: repeats one request over one connection and summarises latencies.

use std::time::Instant;

use comfy_table::{presets, Table};
use serde_json::{json, Map, Value};
use wasmbed_api::{OpResult, RunStatus};

use super::{Ctx, Report};
use crate::bench::{padded_module, Stats};
use crate::cli::{BenchArgs, BenchOp, ReplaceArgs};
use crate::error::HostError;
use crate::requests;

/// Samples collected by a bench run.
#[derive(Debug, Default)]
pub struct Samples {
    /// Host-measured end-to-end latency per request, ms.
    pub e2e_ms: Vec<f64>,
    /// Device round trip per request, ms (when the gateway reports it).
    pub device_ms: Vec<f64>,
    /// Time inside the gateway per request, ms.
    pub gateway_ms: Vec<f64>,
    /// Upload throughput per deploy, bytes/s.
    pub upload_bytes_per_s: Vec<f64>,
}

impl Samples {
    fn metrics(&self) -> [(&'static str, &'static str, Option<Stats>); 4] {
        [
            ("e2e_ms", "end-to-end (ms)", Stats::of(&self.e2e_ms)),
            (
                "device_ms",
                "device round trip (ms)",
                Stats::of(&self.device_ms),
            ),
            (
                "gateway_ms",
                "inside gateway (ms)",
                Stats::of(&self.gateway_ms),
            ),
            (
                "upload_bytes_per_s",
                "upload (bytes/s)",
                Stats::of(&self.upload_bytes_per_s),
            ),
        ]
    }

    /// The `stats` JSON object (metrics without samples are omitted).
    pub fn stats_json(&self) -> Value {
        let mut m = Map::new();
        for (key, _, stats) in self.metrics() {
            if let Some(s) = stats {
                m.insert(key.into(), json!(s));
            }
        }
        Value::Object(m)
    }

    /// The human table: one row per metric.
    pub fn table(&self) -> String {
        let mut t = Table::new();
        t.load_preset(presets::UTF8_FULL_CONDENSED)
            .set_header(vec!["METRIC", "N", "MIN", "P50", "P95", "P99", "MAX"]);
        for (_, label, stats) in self.metrics() {
            let Some(s) = stats else { continue };
            let f = |v: f64| {
                if v >= 1000.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.2}")
                }
            };
            t.add_row(vec![
                label.to_string(),
                s.n.to_string(),
                f(s.min),
                f(s.p50),
                f(s.p95),
                f(s.p99),
                f(s.max),
            ]);
        }
        t.to_string()
    }
}

fn op_name(op: BenchOp) -> &'static str {
    match op {
        BenchOp::Status => "status",
        BenchOp::Start => "start",
        BenchOp::Deploy => "deploy",
    }
}

/// The repeated request and its optional body.
type Request = (wasmbed_api::Request, Option<Vec<u8>>);

fn request(device: &str, a: &BenchArgs) -> Result<Request, HostError> {
    Ok(match a.op {
        BenchOp::Status => (requests::status(device), None),
        BenchOp::Start => (
            requests::start(
                device,
                &a.module_id,
                a.call.func.as_deref(),
                a.call.args.as_deref(),
                true,
                a.result_timeout,
            )?,
            None,
        ),
        BenchOp::Deploy => {
            let data = match &a.file {
                Some(path) => std::fs::read(path).map_err(|source| HostError::ReadFile {
                    path: path.display().to_string(),
                    source,
                })?,
                None => padded_module(a.size, 0).ok_or_else(|| {
                    HostError::Usage(format!(
                        "--size {}: the smallest bench module is {} bytes",
                        a.size,
                        crate::bench::MIN_PADDED
                    ))
                })?,
            };
            // Replace the previous iteration's upload and never skip it as identical.
            let replace = ReplaceArgs {
                replace: true,
                force: true,
                ..ReplaceArgs::default()
            };
            let req = requests::upload(device, &a.module_id, &data, None, &replace, None)?;
            (req, Some(data))
        }
    })
}

/// Runs `bench`.
pub(super) fn run(ctx: &Ctx, a: &BenchArgs) -> Result<Report, HostError> {
    let device = ctx.one_device("bench")?;
    let (req, body) = request(&device, a)?;
    let size = body.as_ref().map(Vec::len);
    let default_s = match a.op {
        BenchOp::Status => 5.0,
        BenchOp::Start => a.result_timeout + 5.0,
        BenchOp::Deploy => 20.0 + size.unwrap_or(0) as f64 / 5000.0,
    };
    let timeout = ctx.timeout(default_s);
    let started = Instant::now();
    let mut conn = ctx.connect(timeout)?;
    let mut samples = Samples::default();
    let mut failure = None;
    for i in 0..(a.warmup + a.count) {
        match conn.request(req.clone(), body.as_deref(), timeout, &mut |_| {}) {
            Ok(reply) => {
                if let OpResult::Start(s) = &reply.result {
                    if s.status != Some(RunStatus::Ok) {
                        let status = s
                            .status
                            .as_ref()
                            .map_or_else(|| "UNKNOWN".into(), |s| s.to_string());
                        failure = Some((i, HostError::ModuleStatus { status }));
                        break;
                    }
                }
                if i < a.warmup {
                    continue;
                }
                samples.e2e_ms.push(reply.e2e_ms);
                samples.device_ms.extend(reply.latency.device_ms);
                samples.gateway_ms.extend(reply.latency.total_ms);
                let reported = match &reply.result {
                    OpResult::Deploy(d) => Some(d.bytes_per_s),
                    _ => None,
                };
                let rate = reported.filter(|r| *r > 0.0).or_else(|| {
                    match (size, reply.latency.transfer_ms) {
                        (Some(n), Some(ms)) if ms > 0.0 => Some(n as f64 * 1e3 / ms),
                        _ => None,
                    }
                });
                if a.op == BenchOp::Deploy {
                    samples.upload_bytes_per_s.extend(rate);
                }
            }
            Err(f) => {
                failure = Some((i, f.error));
                break;
            }
        }
    }
    let wall = started.elapsed().as_secs_f64() * 1e3;
    let mut doc = Map::new();
    doc.insert("ok".into(), failure.is_none().into());
    doc.insert("command".into(), "bench".into());
    doc.insert("device".into(), device.clone().into());
    doc.insert("op".into(), op_name(a.op).into());
    doc.insert("count".into(), samples.e2e_ms.len().into());
    doc.insert("warmup".into(), a.warmup.into());
    if let Some(n) = size {
        doc.insert("size".into(), n.into());
    }
    doc.insert(
        "e2e_latency_ms".into(),
        json!((wall * 100.0).round() / 100.0),
    );
    doc.insert("stats".into(), samples.stats_json());
    let mut text = format!(
        "bench {} on {device}: {} measured request(s)\n",
        op_name(a.op),
        samples.e2e_ms.len()
    );
    if !samples.e2e_ms.is_empty() {
        text.push_str(&samples.table());
        text.push('\n');
    }
    let error = failure.map(|(i, e)| {
        doc.insert("failed_at".into(), i.into());
        doc.insert("exit_code".into(), e.exit_code().code().into());
        doc.insert("error".into(), e.to_json());
        e
    });
    Ok(Report {
        doc,
        text,
        e2e_ms: Some(wall),
        error,
        stderr: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_table_and_json() {
        let s = Samples {
            e2e_ms: vec![1.0, 2.0, 3.0, 4.0],
            device_ms: vec![0.5, 0.5, 0.75, 1.0],
            gateway_ms: vec![],
            upload_bytes_per_s: vec![10_000.0, 11_000.0, 12_500.0, 9_000.0],
        };
        insta::assert_snapshot!(s.table());
        let j = s.stats_json();
        assert_eq!(j["e2e_ms"]["p50"], 2.0);
        assert_eq!(j["upload_bytes_per_s"]["min"], 9000.0);
        assert!(j.get("gateway_ms").is_none());
    }
}
