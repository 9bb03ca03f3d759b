//! `latency` (item 1): gateway vs direct round trips.

use super::*;

/// Item 1: `status` and `start --wait-result` through the gateway vs the same commands sent
/// directly on the same link, alternating in rounds (the sim takes one client at a time).
pub fn latency(cfg: &Cfg, rep: &mut Report) -> Result<()> {
    let (rounds, n) = if cfg.quick { (2, 100) } else { (5, 400) };
    let sim = start_sim("lat-sim", &SimOpts::default())?;
    let devs = vec![("sim".to_string(), sim.endpoints[0].clone())];
    {
        let gw = start_gateway("lat-gw0", &devs, &[])?;
        ok(gw.connect()?.deploy("sim", "math", &math_ops()?, T)?)?;
    }
    let mut d_status = Vec::new();
    let mut d_start = Vec::new();
    // [0]: the default single-threaded gateway, [1]: --threads 2 (the A/B of the runtime)
    let mut g_status = [GwSamples::default(), GwSamples::default()];
    let mut g_start = [GwSamples::default(), GwSamples::default()];
    for round in 0..rounds {
        {
            let mut d = DevConn::connect(sim.ports[0])?;
            for i in 0..n + 20 {
                let t = Instant::now();
                let l = d.status()?;
                if !l.starts_with("STATUS_OK") {
                    return Err(err(format!("direct STATUS: {l}")));
                }
                if i >= 20 {
                    d_status.push(ms(t.elapsed()));
                }
            }
            for i in 0..n + 20 {
                let t = Instant::now();
                let l = d.start_wait("math", "add", &[i, 26])?;
                if !l.contains(&format!("ret_i32={}", i + 26)) {
                    return Err(err(format!("direct START: {l}")));
                }
                if i >= 20 {
                    d_start.push(ms(t.elapsed()));
                }
            }
        }
        for (k, threads) in ["1", "2"].iter().enumerate() {
            let gw = start_gateway(
                &format!("lat-gw{}-t{threads}", round + 1),
                &devs,
                &["--threads", threads],
            )?;
            let mut c = gw.connect()?;
            for i in 0..n + 20 {
                let t = Instant::now();
                let r = ok(c.request(status_req("sim"), None, T)?)?;
                if i >= 20 {
                    g_status[k].push(ms(t.elapsed()), &r);
                }
            }
            for i in 0..n + 20 {
                let t = Instant::now();
                let r =
                    ok(c.request(start_req("sim", "math", "add", vec![i, 26], None), None, T)?)?;
                if link::ret(&r) != Some(i + 26) {
                    return Err(err(format!("gateway start: {}", link::show(&r))));
                }
                if i >= 20 {
                    g_start[k].push(ms(t.elapsed()), &r);
                }
            }
        }
    }
    let [g_status, g_status2] = g_status;
    let [g_start, g_start2] = g_start;
    let ov2_status = p50(&g_status2.e2e) - p50(&d_status);
    let ov2_start = p50(&g_start2.e2e) - p50(&d_start);
    let ov_status = p50(&g_status.e2e) - p50(&d_status);
    let ov_start = p50(&g_start.e2e) - p50(&d_start);
    rep.json.insert(
        "latency".into(),
        json!({"rounds": rounds, "per_round": n, "link": "TCP loopback, instant sim",
               "direct_status_ms": stats_json(&d_status), "direct_status_samples": d_status.iter().map(|v| r3(*v)).collect::<Vec<_>>(),
               "direct_start_ms": stats_json(&d_start), "direct_start_samples": d_start.iter().map(|v| r3(*v)).collect::<Vec<_>>(),
               "gateway_status": g_status.json(), "gateway_start": g_start.json(),
               "gateway_threads2_status": g_status2.json(), "gateway_threads2_start": g_start2.json(),
               "overhead_p50_status_ms_threads2": r3(ov2_status), "overhead_p50_start_ms_threads2": r3(ov2_start),
               "overhead_p50_status_ms": r3(ov_status), "overhead_p50_start_ms": r3(ov_start),
               "inside_gateway_p50_status_ms": r3(p50(&g_status.inside)), "inside_gateway_p50_start_ms": r3(p50(&g_start.inside))}),
    );
    let st = |v: &[f64]| {
        Stats::of(v).map_or("-".into(), |s| {
            format!("p50 {:.3} p95 {:.3} p99 {:.3} ms", s.p50, s.p95, s.p99)
        })
    };
    rep.row("1 status direct", st(&d_status), "", None);
    rep.row("1 status via gateway", st(&g_status.e2e), "", None);
    rep.row("1 start --wait-result direct", st(&d_start), "", None);
    rep.row(
        "1 start --wait-result via gateway",
        st(&g_start.e2e),
        "",
        None,
    );
    rep.row(
        "1 gateway overhead p50 (status)",
        format!(
            "{:.3} ms (inside gateway {:.3} ms)",
            ov_status,
            p50(&g_status.inside)
        ),
        "< 0.1 ms",
        Some(ov_status < 0.1),
    );
    rep.row(
        "1 same with --threads 2 (status / start)",
        format!("{ov2_status:.3} / {ov2_start:.3} ms"),
        "",
        None,
    );
    rep.row(
        "1 gateway overhead p50 (start)",
        format!(
            "{:.3} ms (inside gateway {:.3} ms)",
            ov_start,
            p50(&g_start.inside)
        ),
        "< 0.1 ms",
        Some(ov_start < 0.1),
    );
    Ok(())
}
