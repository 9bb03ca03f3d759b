//! The measurements of issue 7, items 1–8. Each suite starts its own processes (dropped, so
//! killed, when it returns), adds raw figures to the report's JSON and rows to its table.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::link::{
    self, deploy_req, ok, start_gateway, start_req, start_sim, status_req, unload_req, DevConn,
    GwConn, SimOpts,
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
    fn push(&mut self, e2e: f64, reply: &Value) {
        self.e2e.push(e2e);
        let lat = &reply["latency"];
        let dev = f(&lat["device_ms"]);
        let tot = f(&lat["total_ms"]);
        self.device.push(dev);
        self.inside.push(tot - dev);
    }

    fn json(&self) -> Value {
        json!({"e2e_ms": stats_json(&self.e2e), "device_ms": stats_json(&self.device),
               "gateway_minus_device_ms": stats_json(&self.inside), "e2e_samples": self.e2e.iter().map(|v| r3(*v)).collect::<Vec<_>>()})
    }
}

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
                if r["result"]["ret"] != json!(i + 26) {
                    return Err(err(format!("gateway start: {r}")));
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
            let p = if r["ok"] == true {
                json!({"baud": baud, "kib": kib, "mode": "chunked", "path": "gateway", "ok": true,
                       "ms": r3(ms(e2e)), "efficiency": r3(size as f64 / e2e.as_secs_f64() / rate),
                       "device_ms": r["latency"]["device_ms"], "transfer_ms": r["latency"]["transfer_ms"],
                       "gateway_bytes_per_s": r["result"]["bytes_per_s"], "chunked": r["result"]["chunked"]})
            } else {
                json!({"baud": baud, "kib": kib, "mode": "chunked", "path": "gateway", "ok": false, "error": r["error"]})
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

/// How a contention answer is checked.
type Check = Box<dyn Fn(&Value) -> bool>;

/// One contention request's record.
struct Rec {
    sent: f64,
    done: f64,
    device_ms: f64,
    ok: bool,
}

/// Item 5: K hosts hammering one device with mixed status / start / deploy, over TCP and PTY.
pub fn contention(cfg: &Cfg, rep: &mut Report) -> Result<()> {
    let (k, m) = if cfg.quick { (4, 15) } else { (8, 60) };
    let mut out = serde_json::Map::new();
    for linkname in ["tcp", "pty"] {
        let sim = start_sim(
            &format!("cont-sim-{linkname}"),
            &SimOpts {
                pty: linkname == "pty",
                ..Default::default()
            },
        )?;
        let gw = start_gateway(
            &format!("cont-gw-{linkname}"),
            &[("sim".into(), sim.endpoints[0].clone())],
            &[],
        )?;
        ok(gw.connect()?.deploy("sim", "math", &math_ops()?, T)?)?;
        let epoch = Instant::now();
        let addr = gw.addr.clone();
        let handles: Vec<_> = (0..k)
            .map(|h| {
                let addr = addr.clone();
                std::thread::spawn(move || -> Result<(Vec<Rec>, Vec<String>, usize)> {
                    let mut c = GwConn::connect(&addr)?;
                    let mut recs = Vec::new();
                    let mut wrong = Vec::new();
                    let mut busy = 0usize;
                    for i in 0..m {
                        let sent = ms(epoch.elapsed());
                        let (r, check): (Value, Check) = match i % 3 {
                            0 => (
                                c.request(status_req("sim"), None, T * 3)?,
                                Box::new(|r: &Value| {
                                    r["ok"] == true
                                        && r["result"]["line"].as_str().is_some_and(|l| {
                                            l.starts_with("STATUS_OK") && l.contains("math:")
                                        })
                                }),
                            ),
                            1 => {
                                let (a, b) = (h as i32 * 1000, i as i32);
                                (
                                    c.request(
                                        start_req("sim", "math", "add", vec![a, b], None),
                                        None,
                                        T * 3,
                                    )?,
                                    Box::new(move |r: &Value| {
                                        (r["ok"] == true && r["result"]["ret"] == json!(a + b))
                                            || r["error"]["detail"]["status"] == "BUSY"
                                    }),
                                )
                            }
                            _ => {
                                let module = padded_module(512 + 64 * h, (h * 1000 + i) as u32);
                                let crc = format!("{:08x}", crc32fast::hash(&module));
                                let size = module.len();
                                let req = deploy_req("sim", "shared", &module);
                                let id = c.send(req, Some(&module))?;
                                (
                                    c.recv(id, T * 3)?,
                                    Box::new(move |r: &Value| {
                                        r["ok"] == true
                                            && r["result"]["crc32"] == json!(crc)
                                            && r["result"]["size"] == json!(size)
                                            && r["result"]["skipped"] == false
                                    }),
                                )
                            }
                        };
                        let done = ms(epoch.elapsed());
                        let good = check(&r);
                        if r["error"]["detail"]["status"] == "BUSY" {
                            busy += 1;
                        }
                        if !good {
                            wrong.push(format!("host {h} request {i} (kind {}): {r}", i % 3));
                        }
                        recs.push(Rec {
                            sent,
                            done,
                            device_ms: f(&r["latency"]["device_ms"]),
                            ok: good,
                        });
                    }
                    Ok((recs, wrong, busy))
                })
            })
            .collect();
        let mut recs = Vec::new();
        let mut wrong = Vec::new();
        let mut lost = 0usize;
        let mut busy = 0usize;
        for h in handles {
            match h.join().map_err(|_| err("host thread panicked"))? {
                Ok((r, w, b)) => {
                    recs.extend(r);
                    wrong.extend(w);
                    busy += b;
                }
                Err(e) => {
                    lost += 1;
                    wrong.push(format!("host failed: {e}"));
                }
            }
        }
        // Latency bound: e2e <= own device time + device time of every request finished while
        // it waited + slack (0.5 ms per such request + 2 ms).
        let mut worst_excess: f64 = f64::NEG_INFINITY;
        let mut violations = 0usize;
        let mut e2e = Vec::new();
        for (i, r) in recs.iter().enumerate() {
            let e = r.done - r.sent;
            e2e.push(e);
            let mut queued = 0.0;
            let mut count = 0;
            for (j, o) in recs.iter().enumerate() {
                if i != j && o.done > r.sent && o.done < r.done {
                    queued += o.device_ms.max(0.0);
                    count += 1;
                }
            }
            let bound = r.device_ms + queued + 2.0 + 0.5 * count as f64;
            worst_excess = worst_excess.max(e - (r.device_ms + queued));
            if e > bound {
                violations += 1;
            }
        }
        let bad = recs.iter().filter(|r| !r.ok).count();
        let s = Stats::of(&e2e).unwrap();
        rep.row(
            &format!("5 contention {linkname}: {k} hosts x {m} mixed"),
            format!(
                "{} answers, {} wrong/stale, {} lost ({} honest BUSY); e2e p50 {:.2} p99 {:.2} ms",
                recs.len(),
                bad,
                lost,
                busy,
                s.p50,
                s.p99
            ),
            "0 wrong/stale/lost",
            Some(bad == 0 && lost == 0 && wrong.is_empty()),
        );
        rep.row(
            &format!("5 contention {linkname}: latency bound"),
            format!(
                "{violations} of {} over own + queued service time (+2 ms); max excess {:.2} ms",
                recs.len(),
                worst_excess
            ),
            "0 over",
            Some(violations == 0),
        );
        out.insert(
            linkname.into(),
            json!({"hosts": k, "requests_per_host": m, "answers": recs.len(), "wrong": bad, "lost": lost, "busy": busy,
                   "wrong_examples": wrong.iter().take(5).collect::<Vec<_>>(), "e2e_ms": s.json(),
                   "bound_violations": violations, "max_excess_ms": r3(worst_excess)}),
        );
    }
    rep.json.insert("contention".into(), Value::Object(out));
    Ok(())
}

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
                per_req.push(f(&r["latency"]["total_ms"]));
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

/// Per-iteration device time of `func(n)`: (t(n2) - t(n1)) / (n2 - n1) from the gateway's
/// device round trip, n2 chosen so a run takes ~`target_ms`; median of 3.
fn per_iter(
    c: &mut GwConn,
    dev: &str,
    module: &str,
    func: &str,
    expect: Option<i64>,
    target_ms: f64,
) -> Result<(f64, i64)> {
    let mut run = |n: i64| -> Result<(f64, i64)> {
        let r = ok(c.request(
            start_req(dev, module, func, vec![n as i32], Some(120_000)),
            None,
            Duration::from_secs(130),
        )?)?;
        let ret = r["result"]["ret"].as_i64().unwrap_or(i64::MIN);
        if let Some(e) = expect {
            if ret != e {
                return Err(err(format!(
                    "{module}.{func}({n}) returned {ret}, expected {e}"
                )));
            }
        }
        Ok((f(&r["latency"]["device_ms"]), ret))
    };
    // Grow n by 4x until a run takes target_ms more than n = 1 (bounded: 12 steps, ~60 s).
    let (t1, _) = run(1)?;
    let mut n2: i64 = 4;
    for _ in 0..12 {
        let (t, _) = run(n2)?;
        if t - t1 >= target_ms || n2 >= 50_000_000 {
            break;
        }
        let grow = if t - t1 > 1.0 {
            (target_ms / (t - t1) * 1.2).clamp(1.5, 4.0)
        } else {
            4.0
        };
        n2 = ((n2 as f64) * grow) as i64;
    }
    let mut v = Vec::new();
    let mut ret = 0;
    for _ in 0..3 {
        let (a, _) = run(1)?;
        let (b, r) = run(n2)?;
        ret = r;
        v.push((b - a) / (n2 - 1) as f64);
    }
    Ok((p50(&v), ret))
}

/// Item 7: fft_bench and a call-heavy loop: interpreter vs AOT on the sim and the QEMU board,
/// and native C on the host.
pub fn exec(cfg: &Cfg, rep: &mut Report) -> Result<()> {
    let root = repo_root();
    let dir = crate::util::log_dir().join("modules");
    let x86: &[&str] = &["--target=x86_64"];
    let m4: &[&str] = &[
        "--target=thumbv7em",
        "--cpu=cortex-m4",
        "--target-abi=eabihf",
    ];
    let (fft_wasm, fft_aot) = link::build_module(
        &root.join("modules/fft_bench.c"),
        &dir,
        &[("x86_64", x86), ("m4", m4)],
    )?;
    let (calls_wasm, calls_aot) = link::build_module(
        &root.join("tools/bench/modules/calls.c"),
        &dir,
        &[("x86_64", x86), ("m4", m4)],
    )?;
    let target_ms = if cfg.quick { 40.0 } else { 300.0 };
    // native
    let native = dir.join("native_bench");
    let st = Command::new(std::env::var("CLANG").unwrap_or_else(|_| "clang".into()))
        .args(["-O2", "-Wall", "-Wextra"])
        .arg(format!("-I{}", root.join("modules").display()))
        .arg(format!("-I{}", root.join("tools/bench/modules").display()))
        .arg(root.join("tools/bench/native/native_main.c"))
        .arg("-o")
        .arg(&native)
        .status()?;
    if !st.success() {
        return Err(err("native build failed"));
    }
    let mut nat_fft = Vec::new();
    let mut nat_calls = Vec::new();
    let mut calls_expect = 0i64;
    for _ in 0..5 {
        let o = Command::new(&native).args(["2000", "20000000"]).output()?;
        let s = String::from_utf8_lossy(&o.stdout).to_string();
        let get =
            |k: &str| link::field(&format!(" {s}"), k).and_then(|v| v.trim().parse::<f64>().ok());
        nat_fft.push(get("fft_ns_per_iter").ok_or_else(|| err(format!("native: {s}")))? / 1e6);
        nat_calls.push(get("calls_ns_per_call").unwrap_or(f64::NAN) / 1e6);
        calls_expect = get("calls_checksum").unwrap_or(0.0) as i64;
    }
    let _ = calls_expect; // calls(n) differs per n: checked against the interpreter below instead
    let native_fft = p50(&nat_fft);
    let native_calls = p50(&nat_calls);
    let mut rows = vec![
        json!({"board": "host", "runtime": "native C (clang -O2)", "fft_ms": r3(native_fft), "call_ns": r3(native_calls * 1e6)}),
    ];

    let mut boards: Vec<(&str, String, Option<crate::util::Proc>, usize)> = Vec::new();
    let sim = start_sim("exec-sim", &SimOpts::default())?;
    boards.push(("sim (x86_64 POSIX)", sim.endpoints[0].clone(), None, 0));
    let qemu_dir = crate::util::log_dir();
    if !cfg.no_qemu {
        match start_qemu(&qemu_dir) {
            Ok((p, port)) => boards.push((
                "QEMU mps2-an386 (Cortex-M4F, TCG)",
                format!("tcp:127.0.0.1:{port}"),
                Some(p),
                1,
            )),
            Err(e) => {
                eprintln!("   QEMU board skipped: {e}");
                rep.json
                    .insert("exec_qemu_skipped".into(), json!(e.to_string()));
            }
        }
    }
    for (label, ep, _proc, aot_idx) in &boards {
        let gw = start_gateway(
            &format!("exec-gw-{aot_idx}"),
            &[("b".into(), ep.clone())],
            &[],
        )?;
        let mut c = gw.connect()?;
        let t = Duration::from_secs(120);
        let mut res = BTreeMap::new();
        for (kind, fft, calls) in [
            ("interpreter", &fft_wasm, &calls_wasm),
            ("AOT", &fft_aot[*aot_idx], &calls_aot[*aot_idx]),
        ] {
            ok(c.deploy("b", "fft", fft, t)?)?;
            let (fft_ms, sum) = per_iter(&mut c, "b", "fft", "fft_bench", Some(1536), target_ms)?;
            ok(c.request(unload_req("b", "fft"), None, T)?)?;
            ok(c.deploy("b", "calls", calls, t)?)?;
            let (call_ms, _) = per_iter(&mut c, "b", "calls", "calls", None, target_ms)?;
            ok(c.request(unload_req("b", "calls"), None, T)?)?;
            println!(
                "   {label} {kind}: fft {fft_ms:.4} ms/iter (checksum {sum}), call {:.2} ns",
                call_ms * 1e6
            );
            res.insert(kind, (fft_ms, call_ms));
            rows.push(json!({"board": label, "runtime": format!("WAMR {kind}"), "fft_ms": r3(fft_ms), "call_ns": r3(call_ms * 1e6),
                             "fft_vs_native": r3(fft_ms / native_fft), "call_vs_native": r3(call_ms / native_calls)}));
        }
        let (fi, ci) = res["interpreter"];
        let (fa, ca) = res["AOT"];
        rep.row(
            &format!("7 {label}: fft_bench per FFT"),
            format!(
                "interp {:.3} ms, AOT {:.3} ms (interp/AOT {:.1}x; vs host native {:.0}x / {:.1}x)",
                fi,
                fa,
                fi / fa,
                fi / native_fft,
                fa / native_fft
            ),
            "report",
            None,
        );
        rep.row(
            &format!("7 {label}: call-heavy loop per call"),
            format!(
                "interp {:.1} ns, AOT {:.1} ns (interp/AOT {:.1}x; vs host native {:.0}x / {:.1}x)",
                ci * 1e6,
                ca * 1e6,
                ci / ca,
                ci / native_calls,
                ca / native_calls
            ),
            "report",
            None,
        );
    }
    rep.row(
        "7 host native C (clang -O2)",
        format!(
            "fft {:.4} ms per FFT, {:.2} ns per call",
            native_fft,
            native_calls * 1e6
        ),
        "",
        None,
    );
    rep.json.insert("exec".into(), json!({"rows": rows, "target_run_ms": target_ms,
        "note": "per-iteration device time = (t(n) - t(1)) / (n - 1) from the gateway's device round trip; QEMU TCG time is emulated time on this host, not MCU time"}));
    Ok(())
}

/// Starts the QEMU board (a copy of target/baremetal/build/agent.elf) with qemu-run.sh.
fn start_qemu(dir: &std::path::Path) -> Result<(crate::util::Proc, u16)> {
    let root = repo_root();
    let elf = std::env::var("WASMBED_QEMU_ELF")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| root.join("target/baremetal/build/agent.elf"));
    if !elf.exists() {
        return Err(err(format!(
            "{} missing: run firmware-agent/ports/baremetal/build.sh",
            elf.display()
        )));
    }
    let copy = dir.join("agent.elf");
    std::fs::copy(&elf, &copy)?;
    let portfile = dir.join("qemu.port");
    let _ = std::fs::remove_file(&portfile);
    let mut cmd = Command::new(root.join("firmware-agent/ports/baremetal/qemu-run.sh"));
    cmd.arg(&copy).arg(&portfile).arg("900");
    let p = crate::util::Proc::spawn("qemu", cmd)?;
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(s) = std::fs::read_to_string(&portfile) {
            if let Ok(port) = s.trim().parse::<u16>() {
                return Ok((p, port));
            }
        }
        if Instant::now() > until {
            return Err(err("QEMU did not write its port within 20 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Item 8: the byte-wise Nagle device: 1 KiB uploads and status through the gateway, against
/// the normal device.
pub fn nagle(cfg: &Cfg, rep: &mut Report) -> Result<()> {
    let n = if cfg.quick { 10 } else { 50 };
    let mut out = serde_json::Map::new();
    for bytewise in [false, true] {
        let name = if bytewise { "bytewise_nagle" } else { "normal" };
        let sim = start_sim(
            &format!("nagle-sim-{name}"),
            &SimOpts {
                bytewise,
                ..Default::default()
            },
        )?;
        let gw = start_gateway(
            &format!("nagle-gw-{name}"),
            &[("sim".into(), sim.endpoints[0].clone())],
            &[],
        )?;
        let mut c = gw.connect()?;
        let mut up = Vec::new();
        let mut st = Vec::new();
        for i in 0..n + 2 {
            let m = padded_module(1024, i as u32);
            let t = Instant::now();
            ok(c.deploy("sim", "n", &m, T)?)?;
            let e = ms(t.elapsed());
            let t = Instant::now();
            ok(c.request(status_req("sim"), None, T)?)?;
            let s = ms(t.elapsed());
            if i >= 2 {
                up.push(e);
                st.push(s);
            }
        }
        let u = Stats::of(&up).unwrap();
        let s = Stats::of(&st).unwrap();
        rep.row(
            &format!("8 {name} device: 1 KiB upload via gateway"),
            format!(
                "p50 {:.2} p99 {:.2} ms (status p50 {:.2} ms)",
                u.p50, u.p99, s.p50
            ),
            if bytewise { "p50 not tens of ms" } else { "" },
            if bytewise { Some(u.p50 < 5.0) } else { None },
        );
        out.insert(name.into(), json!({"upload_1k_ms": u.json(), "status_ms": s.json(), "upload_samples": up.iter().map(|v| r3(*v)).collect::<Vec<_>>()}));
    }
    rep.json.insert("nagle".into(), Value::Object(out));
    Ok(())
}
