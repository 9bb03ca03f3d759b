//! `fanout` (item 6): one gateway, many boards.

use super::*;

/// Item 6: one gateway, N boards in one sim process: status of all, deploy to all, RSS.
pub fn fanout(cfg: &Cfg, rep: &mut Report) -> Result<()> {
    let ns: Vec<usize> = if cfg.quick {
        vec![10, 100]
    } else {
        vec![10, 100, 1000]
    };
    let module = math_ops()?;
    let mut out = Vec::new();
    for &n in &ns {
        let rounds = if cfg.quick {
            5
        } else if n >= 1000 {
            30
        } else {
            50
        };
        let t_up = Instant::now();
        let sim = start_sim(
            &format!("fan-sim-{n}"),
            &SimOpts {
                boards: n,
                ..Default::default()
            },
        )?;
        let devs: Vec<(String, String)> = sim
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| (format!("b{i}"), e.clone()))
            .collect();
        let gw = start_gateway(&format!("fan-gw-{n}"), &devs, &[])?;
        let up_s = t_up.elapsed().as_secs_f64();
        let rss_idle = gw.proc.rss()?;
        let mut conns = (0..n).map(|_| gw.connect()).collect::<Result<Vec<_>>>()?;
        // warm up
        for (i, c) in conns.iter_mut().enumerate() {
            ok(c.request(status_req(&format!("b{i}")), None, T)?)?;
        }
        let cpu0 = gw.proc.cpu_time()?;
        let mut status_all = Vec::new();
        let mut per_req = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            let ids = conns
                .iter_mut()
                .enumerate()
                .map(|(i, c)| c.send(status_req(&format!("b{i}")), None))
                .collect::<Result<Vec<_>>>()?;
            for (c, id) in conns.iter_mut().zip(ids) {
                let r = ok(c.recv(id, T * 3)?)?;
                per_req.push(link::lat(r.latency.total_ms));
            }
            status_all.push(ms(t.elapsed()));
        }
        let cpu_status = ms(gw.proc.cpu_time()? - cpu0) / (rounds * n) as f64;
        let rss_status = gw.proc.rss()?;
        let mut deploy_all = Vec::new();
        let deploy_rounds = if cfg.quick { 1 } else { 3 };
        for _ in 0..deploy_rounds {
            let t = Instant::now();
            let ids = conns
                .iter_mut()
                .enumerate()
                .map(|(i, c)| c.send(deploy_req(&format!("b{i}"), "math", &module), Some(&module)))
                .collect::<Result<Vec<_>>>()?;
            for (c, id) in conns.iter_mut().zip(ids) {
                ok(c.recv(id, T * 6)?)?;
            }
            deploy_all.push(ms(t.elapsed()));
        }
        let rss_peak = gw.proc.rss()?;
        let st = Stats::of(&status_all).unwrap();
        let dp = Stats::of(&deploy_all).unwrap();
        let p = json!({"boards": n, "rounds": rounds, "startup_s": r3(up_s),
            "status_all_ms": st.json(), "status_all_samples": status_all.iter().map(|v| r3(*v)).collect::<Vec<_>>(),
            "status_per_request_gateway_ms": stats_json(&per_req),
            "status_throughput_per_s": r3(n as f64 / (st.p50 / 1000.0)),
            "gateway_cpu_ms_per_status": r3(cpu_status),
            "deploy_all_ms": dp.json(), "deploy_throughput_per_s": r3(n as f64 / (dp.p50 / 1000.0)),
            "module_bytes": module.len(),
            "gateway_rss_bytes": {"idle": rss_idle, "after_status": rss_status, "after_deploy": rss_peak},
            "sim_rss_bytes": sim.proc.rss()?});
        println!("   {p}");
        rep.row(
            &format!("6 fan-out {n} boards: status of all"),
            format!(
                "p50 {:.1} p99 {:.1} ms ({:.0} status/s)",
                st.p50,
                st.p99,
                n as f64 / (st.p50 / 1000.0)
            ),
            if n == 1000 { "p99 < 1000 ms" } else { "" },
            if n == 1000 {
                Some(st.p99 < 1000.0)
            } else {
                None
            },
        );
        rep.row(
            &format!("6 fan-out {n} boards: deploy to all"),
            format!(
                "p50 {:.1} ms ({:.0} deploys/s, {} B module)",
                dp.p50,
                n as f64 / (dp.p50 / 1000.0),
                module.len()
            ),
            "",
            None,
        );
        rep.row(
            &format!("6 fan-out {n} boards: gateway RSS"),
            format!("{:.1} MB peak", rss_peak as f64 / 1e6),
            "< 200 MB",
            Some(rss_peak < 200_000_000),
        );
        out.push(p);
        drop(conns);
    }
    // Throughput grows with boards until the cores are the limit.
    let thr: Vec<f64> = out
        .iter()
        .map(|p| f(&p["status_throughput_per_s"]))
        .collect();
    let grows = thr.windows(2).all(|w| w[1] >= w[0] * 0.9);
    rep.row(
        "6 fan-out status throughput 10/100/1000",
        thr.iter()
            .map(|t| format!("{t:.0}/s"))
            .collect::<Vec<_>>()
            .join(" -> "),
        "grows until CPU-bound",
        None,
    );
    rep.json.insert(
        "fanout".into(),
        json!({"points": out, "throughput_non_decreasing": grows}),
    );
    Ok(())
}
