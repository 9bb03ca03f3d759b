//! `instant` (issue 14): a 64 KiB module onto the instant simulated board over TCP, the legacy
//! gateway's way against ours, side by side in one run.
//!
//! - **legacy**: what the legacy Python gateway (GW-3 `load`) sends: `LOAD module_id= size=
//!   crc32=`, `LOAD_READY`, the whole payload in one write, timed to `LOAD_OK` (on an open
//!   connection: the legacy gateway also opens one per request, which is not counted here).
//! - **framed**: the same board, the harness speaking our v2 upload directly on the link
//!   (`wasmbed-agent-proto`'s `LoadSession`, the gateway's code: framed chunks of the size the
//!   agent offers, each acknowledged), no gateway: what the framing and the acknowledgements
//!   cost by themselves.
//! - **gateway**: `wasmbed-host deploy` through our gateway (no `--force`, no `--replace`: the
//!   request the CLI sends), host-side from the request line to the reply; with the gateway's own
//!   phases (`total_ms`: request read to reply sent; `device_ms`: its device round trips;
//!   `transfer_ms`: LOAD to LOAD_OK).
//! - **baseline** (only with `WASMBED_GATEWAY_BASELINE=<binary>`): the same through another
//!   gateway build, for an A/B of a gateway change in the same run.
//!
//! The simulated board takes one client at a time, so the paths alternate in rounds (a fresh
//! gateway each round, as in `latency`). Every upload is a module the board does not hold (a new
//! CRC), so nothing is skipped. Two 64 KiB modules: an empty one padded by a custom section, and
//! real code (Monocypher, see `baud`), which costs the validator and WAMR's loader more.

use std::path::PathBuf;

use super::*;

/// One gateway build's samples.
#[derive(Default)]
struct GwSamples64 {
    e2e: Vec<f64>,
    total: Vec<f64>,
    device: Vec<f64>,
    transfer: Vec<f64>,
}

impl GwSamples64 {
    fn json(&self) -> Value {
        let other: Vec<f64> = diff(&self.device, &self.transfer);
        json!({"e2e_ms": stats_json(&self.e2e), "total_ms": stats_json(&self.total),
               "device_ms": stats_json(&self.device), "transfer_ms": stats_json(&self.transfer),
               "other_device_ms": stats_json(&other),
               "inside_ms": stats_json(&diff(&self.total, &self.device)),
               "host_hop_ms": stats_json(&diff(&self.e2e, &self.total))})
    }

    /// The gateway's phases as one line (p50s).
    fn phases(&self) -> String {
        format!(
            "LOAD..LOAD_OK {:.3}, other device round trips {:.3}, inside {:.3}, host hop {:.3} ms",
            p50(&self.transfer),
            p50(&diff(&self.device, &self.transfer)),
            p50(&diff(&self.total, &self.device)),
            p50(&diff(&self.e2e, &self.total))
        )
    }
}

fn diff(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

/// One module kind's samples.
#[derive(Default)]
struct Samples {
    legacy: Vec<f64>,
    framed: Vec<f64>,
    /// [0]: this build's gateway, [1]: the baseline build's.
    gw: [GwSamples64; 2],
}

/// The `n`-th variant of `base` (its last two bytes changed: a new CRC, same size and
/// validity, as long as they are padding).
fn variant(base: &[u8], n: u32) -> Vec<u8> {
    let mut m = base.to_vec();
    let last = m.len() - 1;
    m[last] = m[last].wrapping_add(n as u8);
    m[last - 1] = m[last - 1].wrapping_add((n >> 8) as u8);
    m
}

/// Issue 14, instant link: 64 KiB, legacy single raw write vs `deploy` through the gateway.
pub fn instant(cfg: &Cfg, rep: &mut Report) -> Result<()> {
    let (rounds, n) = if cfg.quick { (2, 5) } else { (6, 40) };
    let size = 64 * 1024;
    let sim = start_sim("inst-sim", &SimOpts::default())?;
    let devs = vec![("sim".to_string(), sim.endpoints[0].clone())];
    let kinds = [
        ("padded", padded_module(size, 7)),
        ("code", baud::real_module(size)?),
    ];
    let mut gateways = vec![binary("wasmbed-gateway", "WASMBED_GATEWAY_BIN")?];
    if let Some(b) = std::env::var_os("WASMBED_GATEWAY_BASELINE") {
        gateways.push(PathBuf::from(b));
    }
    let mut samples: Vec<Samples> = kinds.iter().map(|_| Samples::default()).collect();
    let timeout = Duration::from_secs(10);
    let mut seq = 0u32;
    for round in 0..rounds {
        {
            let mut d = DevConn::connect(sim.ports[0])?;
            for (k, (name, base)) in kinds.iter().enumerate() {
                for i in 0..n + 2 {
                    seq += 1;
                    let t = d
                        .load_legacy("up", &variant(base, seq), timeout)?
                        .map_err(|l| err(format!("legacy LOAD of {name}: {l}")))?;
                    seq += 1;
                    let f = d
                        .load_chunked("up", &variant(base, seq), timeout)?
                        .map_err(|l| err(format!("framed LOAD of {name}: {l}")))?;
                    if i >= 2 {
                        samples[k].legacy.push(ms(t));
                        samples[k].framed.push(ms(f));
                    }
                }
            }
        }
        for (g, bin) in gateways.iter().enumerate() {
            let gw = start_gateway_bin(bin, &format!("inst-gw{round}-{g}"), &devs, &[])?;
            let mut c = gw.connect()?;
            ok(c.request(status_req("sim"), None, T)?)?;
            for (k, (name, base)) in kinds.iter().enumerate() {
                for i in 0..n + 2 {
                    seq += 1;
                    let m = variant(base, seq);
                    let mut req = deploy_req("sim", "up", &m);
                    if let wasmbed_api::Request::Deploy(d) = &mut req {
                        // what `wasmbed-host deploy FILE` sends
                        d.force = false;
                        d.replace = false;
                    }
                    let t = Instant::now();
                    let r = c.request(req, Some(&m), timeout)?;
                    let e2e = ms(t.elapsed());
                    if link::deployed(&r).is_none_or(|d| d.skipped) {
                        return Err(err(format!(
                            "deploy of {name} did not upload: {}",
                            link::show(&r)
                        )));
                    }
                    if i >= 2 {
                        let s = &mut samples[k].gw[g];
                        s.e2e.push(e2e);
                        s.total.push(link::lat(r.latency.total_ms));
                        s.device.push(link::lat(r.latency.device_ms));
                        s.transfer.push(link::lat(r.latency.transfer_ms));
                    }
                }
            }
        }
    }
    let mut out = serde_json::Map::new();
    let st = |v: &[f64]| {
        Stats::of(v).map_or("-".into(), |s| {
            format!("p50 {:.3} p95 {:.3} ms", s.p50, s.p95)
        })
    };
    for ((name, base), s) in kinds.iter().zip(&samples) {
        let legacy = p50(&s.legacy);
        let ratio = p50(&s.gw[0].e2e) / legacy;
        let what = |w: &str| format!("14 instant 64 KiB ({name}) {w}");
        rep.row(&what("legacy raw LOAD, one write"), st(&s.legacy), "", None);
        rep.row(&what("framed chunks, direct"), st(&s.framed), "", None);
        rep.row(
            &what("deploy via gateway"),
            format!("{}; {}", st(&s.gw[0].e2e), s.gw[0].phases()),
            "",
            None,
        );
        let mut raw = json!({"bytes": base.len(), "legacy_ms": stats_json(&s.legacy),
                             "framed_direct_ms": stats_json(&s.framed),
                             "gateway": s.gw[0].json(), "ratio_p50": r3(ratio)});
        if gateways.len() > 1 {
            let b = &s.gw[1];
            rep.row(
                &what("deploy via baseline gateway"),
                format!("{}; {}", st(&b.e2e), b.phases()),
                "",
                None,
            );
            raw["baseline_gateway"] = b.json();
            raw["baseline_ratio_p50"] = json!(r3(p50(&b.e2e) / legacy));
        }
        rep.row(
            &what("gateway / legacy p50"),
            format!("{ratio:.2}"),
            "well under 1.0",
            Some(ratio < 0.9),
        );
        out.insert((*name).into(), raw);
    }
    out.insert("rounds".into(), json!(rounds));
    out.insert("per_round".into(), json!(n));
    if let Some(b) = gateways.get(1) {
        out.insert(
            "baseline_gateway_bin".into(),
            json!(b.display().to_string()),
        );
    }
    rep.json.insert("instant".into(), Value::Object(out));
    Ok(())
}
