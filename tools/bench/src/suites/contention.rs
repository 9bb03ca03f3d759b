//! `contention` (item 5): several hosts on one device.

use super::*;

/// How a contention answer is checked.
type Check = Box<dyn Fn(&ReplyLine) -> bool>;

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
                        let (r, check): (ReplyLine, Check) = match i % 3 {
                            0 => (
                                c.request(status_req("sim"), None, T * 3)?,
                                Box::new(|r: &ReplyLine| {
                                    matches!(&r.outcome, Ok(OpResult::Status(s))
                                        if s.line.starts_with("STATUS_OK") && s.line.contains("math:"))
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
                                    Box::new(move |r: &ReplyLine| {
                                        link::ret(r) == Some(a + b)
                                            || link::refused_with(r) == Some(&RunStatus::Busy)
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
                                    Box::new(move |r: &ReplyLine| {
                                        link::deployed(r).is_some_and(|d| {
                                            d.crc32 == crc && d.size == size as u64 && !d.skipped
                                        })
                                    }),
                                )
                            }
                        };
                        let done = ms(epoch.elapsed());
                        let good = check(&r);
                        if link::refused_with(&r) == Some(&RunStatus::Busy) {
                            busy += 1;
                        }
                        if !good {
                            wrong.push(format!(
                                "host {h} request {i} (kind {}): {}",
                                i % 3,
                                link::show(&r)
                            ));
                        }
                        recs.push(Rec {
                            sent,
                            done,
                            device_ms: link::lat(r.latency.device_ms),
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
