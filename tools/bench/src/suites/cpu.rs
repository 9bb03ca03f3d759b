//! `cpu` (item 3): gateway CPU time per request.

use super::*;

/// Item 3: gateway CPU time per request over 1000 requests (one connection, and one connection
/// per request like the CLI).
pub fn cpu(cfg: &Cfg, rep: &mut Report) -> Result<()> {
    let n = if cfg.quick { 300 } else { 1000 };
    let sim = start_sim("cpu-sim", &SimOpts::default())?;
    let mut res = serde_json::Map::new();
    // Both runtimes in one run, alternating twice, so the ratio is taken under the same load.
    for pass in 0..2 {
        for threads in ["1", "2"] {
            let gw = start_gateway(
                &format!("cpu-gw-t{threads}-{pass}"),
                &[("sim".into(), sim.endpoints[0].clone())],
                &["--threads", threads],
            )?;
            let mut c = gw.connect()?;
            for _ in 0..50 {
                ok(c.request(status_req("sim"), None, T)?)?;
            }
            for mode in ["persistent", "connect_per_request"] {
                let sim_cpu0 = sim.proc.cpu_time()?;
                let cpu0 = gw.proc.cpu_time()?;
                let t0 = Instant::now();
                for _ in 0..n {
                    if mode == "persistent" {
                        ok(c.request(status_req("sim"), None, T)?)?;
                    } else {
                        let mut c1 = gw.connect()?;
                        ok(c1.request(status_req("sim"), None, T)?)?;
                    }
                }
                let wall = t0.elapsed();
                let cpu = gw.proc.cpu_time()? - cpu0;
                let sim_cpu = sim.proc.cpu_time()? - sim_cpu0;
                let per_req = ms(cpu) / n as f64;
                let key = format!("threads{threads}_{mode}");
                let entry = res
                    .entry(key.clone())
                    .or_insert_with(|| json!({"passes": []}));
                entry["passes"].as_array_mut().unwrap().push(
                    json!({"requests": n, "gateway_cpu_ms": r3(ms(cpu)), "gateway_cpu_ms_per_request": r3(per_req),
                           "sim_cpu_ms_per_request": r3(ms(sim_cpu) / n as f64), "wall_ms": r3(ms(wall)),
                           "requests_per_s": r3(n as f64 / wall.as_secs_f64()), "gateway_rss_bytes": gw.proc.rss()?}),
                );
                if pass == 1 {
                    let per: Vec<f64> = entry["passes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| f(&p["gateway_cpu_ms_per_request"]))
                        .collect();
                    let best = per.iter().cloned().fold(f64::INFINITY, f64::min);
                    rep.row(
                        &format!("3 gateway CPU per status (--threads {threads}, {mode})"),
                        format!(
                            "{best:.4} ms (best of 2 x {n}; other {:.4})",
                            per.iter().cloned().fold(0.0, f64::max)
                        ),
                        if threads == "1" { "< 0.1 ms" } else { "" },
                        if threads == "1" {
                            Some(best < 0.1)
                        } else {
                            None
                        },
                    );
                }
            }
        }
    }
    rep.json.insert("cpu".into(), Value::Object(res));
    Ok(())
}
