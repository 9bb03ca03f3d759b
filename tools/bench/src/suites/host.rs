//! `host` (item 2): wall time of one `wasmbed-host` process.

use super::*;

/// Item 2: wall time of one `wasmbed-host status` process (spawn to exit).
pub fn host_wall(cfg: &Cfg, rep: &mut Report) -> Result<()> {
    let n = if cfg.quick { 15 } else { 100 };
    let host = binary("wasmbed-host", "WASMBED_HOST_BIN")?;
    let sim = start_sim("host-sim", &SimOpts::default())?;
    let gw = start_gateway("host-gw", &[("sim".into(), sim.endpoints[0].clone())], &[])?;
    let mut text = Vec::new();
    let mut jsonm = Vec::new();
    let mut reported = Vec::new();
    for i in 0..n + 3 {
        for (json_mode, out) in [(false, &mut text), (true, &mut jsonm)] {
            let mut cmd = Command::new(&host);
            cmd.args(["--gateway", &gw.addr, "--device", "sim", "status"]);
            if json_mode {
                cmd.arg("--json");
            }
            let t = Instant::now();
            let o = cmd.output()?;
            let wall = ms(t.elapsed());
            if !o.status.success() {
                return Err(err(format!(
                    "wasmbed-host status failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                )));
            }
            if i >= 3 {
                out.push(wall);
                if json_mode {
                    let v: Value = serde_json::from_slice(&o.stdout)?;
                    reported.push(f(&v["e2e_latency_ms"]));
                }
            }
        }
    }
    let s = Stats::of(&text).unwrap();
    let sj = Stats::of(&jsonm).unwrap();
    rep.json.insert(
        "host_wall".into(),
        json!({"n": n, "text_ms": s.json(), "json_ms": sj.json(), "host_reported_e2e_ms": stats_json(&reported),
               "text_samples": text.iter().map(|v| r3(*v)).collect::<Vec<_>>()}),
    );
    rep.row(
        "2 wasmbed-host status process wall time",
        format!(
            "p50 {:.2} p95 {:.2} p99 {:.2} ms (--json p50 {:.2})",
            s.p50, s.p95, s.p99, sj.p50
        ),
        "< 10 ms",
        Some(s.p50 < 10.0),
    );
    Ok(())
}
