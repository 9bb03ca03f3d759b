//! `upload` (item 4): upload efficiency, direct and through the gateway.

use super::*;

/// Item 4: upload efficiency, raw v1 LOAD and chunked LOAD directly on the link, and chunked
/// through the gateway, at 115200 and 921600 baud pacing.
pub fn upload(cfg: &Cfg, rep: &mut Report) -> Result<()> {
    let (bauds, sizes): (Vec<u32>, Vec<usize>) = if cfg.quick {
        (vec![921_600], vec![1, 16])
    } else {
        (vec![115_200, 921_600], vec![1, 16, 64, 256])
    };
    let mut points = Vec::new();
    for &baud in &bauds {
        let rate = baud as f64 / 10.0;
        let opts = SimOpts {
            baud: Some(baud),
            ..Default::default()
        };
        let mut sim = start_sim(&format!("up-sim-{baud}"), &opts)?;
        for &kib in &sizes {
            let size = kib * 1024;
            let module = padded_module(size, kib as u32);
            let timeout = Duration::from_secs_f64(10.0 + 2.0 * size as f64 / rate);
            for mode in ["raw", "chunked"] {
                let mut d = DevConn::connect(sim.ports[0])?;
                let r = if mode == "raw" {
                    d.load_raw("up", &module, timeout)?
                } else {
                    d.load_chunked("up", &module, timeout)?
                };
                let p = match r {
                    Ok(t) => {
                        let eff = size as f64 / t.as_secs_f64() / rate;
                        json!({"baud": baud, "kib": kib, "mode": mode, "path": "direct", "ok": true,
                               "ms": r3(ms(t)), "efficiency": r3(eff)})
                    }
                    Err(line) => {
                        // The paced sim would chew on the rest of the payload for seconds
                        // (parsing it as text): start a fresh one instead.
                        drop(d);
                        sim = start_sim(&format!("up-sim-{baud}-{kib}-{mode}"), &opts)?;
                        json!({"baud": baud, "kib": kib, "mode": mode, "path": "direct", "ok": false, "error": line})
                    }
                };
                println!("   {p}");
                points.push(p);
            }
        }
        // Chunked through the gateway (the path users take).
        let gw = start_gateway(
            &format!("up-gw-{baud}"),
            &[("sim".into(), sim.endpoints[0].clone())],
            &[],
        )?;
        let mut c = gw.connect()?;
        for &kib in &sizes {
            let size = kib * 1024;
            let module = padded_module(size, 1000 + kib as u32);
            let timeout = Duration::from_secs_f64(20.0 + 2.0 * size as f64 / rate);
            let t = Instant::now();
            let r = c.deploy("sim", "up", &module, timeout)?;
            let e2e = t.elapsed();
            let p = match (link::deployed(&r), &r.outcome) {
                (Some(d), _) => {
                    json!({"baud": baud, "kib": kib, "mode": "chunked", "path": "gateway", "ok": true,
                       "ms": r3(ms(e2e)), "efficiency": r3(size as f64 / e2e.as_secs_f64() / rate),
                       "device_ms": r.latency.device_ms, "transfer_ms": r.latency.transfer_ms,
                       "gateway_bytes_per_s": d.bytes_per_s, "chunked": d.chunked})
                }
                (None, Err(e)) => {
                    json!({"baud": baud, "kib": kib, "mode": "chunked", "path": "gateway", "ok": false, "error": e})
                }
                (None, Ok(_)) => return Err(err(format!("deploy answered: {}", link::show(&r)))),
            };
            println!("   {p}");
            points.push(p);
        }
    }
    // Summary rows: chunked ≥ 97 % from 16 KiB up; every size succeeds.
    let mut all_ok = true;
    let mut min_eff: f64 = 1.0;
    for p in &points {
        if p["mode"] == "chunked" {
            all_ok &= p["ok"] == true;
            if p["kib"].as_u64().unwrap_or(0) >= 16 {
                min_eff = min_eff.min(p["efficiency"].as_f64().unwrap_or(0.0));
            }
        }
    }
    for p in &points {
        let eff = p["efficiency"].as_f64();
        rep.row(
            &format!(
                "4 upload {} KiB @{} {} {}",
                p["kib"],
                p["baud"],
                p["mode"].as_str().unwrap_or(""),
                p["path"].as_str().unwrap_or("")
            ),
            match eff {
                Some(e) => format!("{:.1} % of line rate ({} ms)", e * 100.0, p["ms"]),
                None => format!("FAILED: {}", p["error"]),
            },
            if p["mode"] == "chunked" && p["kib"].as_u64().unwrap_or(0) >= 16 {
                ">= 97 %"
            } else {
                ""
            },
            if p["mode"] == "chunked" && p["kib"].as_u64().unwrap_or(0) >= 16 {
                Some(eff.is_some_and(|e| e >= 0.97))
            } else {
                None
            },
        );
    }
    rep.row(
        "4 every chunked size succeeds",
        format!(
            "{all_ok}; min efficiency from 16 KiB: {:.1} %",
            min_eff * 100.0
        ),
        "all succeed",
        Some(all_ok),
    );
    rep.json.insert("upload".into(), json!({"points": points}));
    Ok(())
}
