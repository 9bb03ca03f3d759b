//! The measurements of docs/benchmarks.md (issue 7 items 1–8, item 11 the fleet), one file per suite. Each suite starts its own
//! processes (dropped, so killed, when it returns), adds raw figures to the report's JSON and rows
//! to its table. This file holds what they share.

mod baud;
mod contention;
mod cpu;
mod exec;
mod fanout;
mod fleet;
mod host;
mod instant;
mod latency;
mod nagle;
mod upload;

pub use baud::baud;
pub use contention::contention;
pub use cpu::cpu;
pub use exec::exec;
pub use fanout::fanout;
pub use fleet::fleet;
pub use host::host_wall;
pub use instant::instant;
pub use latency::latency;
pub use nagle::nagle;
pub use upload::upload;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wasmbed_api::{OpResult, ReplyLine, RunStatus};

use crate::link::{
    self, deploy_req, ok, start_gateway, start_gateway_bin, start_req, start_sim, status_req,
    unload_req, DevConn, GwConn, SimOpts,
};
use crate::util::{
    binary, err, ms, padded_module, r3, repo_root, stats_json, Result, Stats, StatsJson,
};
use crate::{Cfg, Report};

const T: Duration = Duration::from_secs(10);

fn math_ops() -> Result<Vec<u8>> {
    let root = repo_root();
    let dir = crate::util::log_dir().join("modules");
    Ok(link::build_module(&root.join("modules/math_ops.c"), &dir, &[])?.0)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn p50(v: &[f64]) -> f64 {
    Stats::of(v).map_or(f64::NAN, |s| s.p50)
}

/// Gateway samples of one op: host-side end-to-end, the gateway's device round trip and its
/// total time inside.
#[derive(Default)]
struct GwSamples {
    e2e: Vec<f64>,
    device: Vec<f64>,
    inside: Vec<f64>,
}

impl GwSamples {
    fn push(&mut self, e2e: f64, reply: &wasmbed_api::ReplyLine) {
        self.e2e.push(e2e);
        let dev = link::lat(reply.latency.device_ms);
        let tot = link::lat(reply.latency.total_ms);
        self.device.push(dev);
        self.inside.push(tot - dev);
    }

    fn json(&self) -> Value {
        json!({"e2e_ms": stats_json(&self.e2e), "device_ms": stats_json(&self.device),
               "gateway_minus_device_ms": stats_json(&self.inside), "e2e_samples": self.e2e.iter().map(|v| r3(*v)).collect::<Vec<_>>()})
    }
}
