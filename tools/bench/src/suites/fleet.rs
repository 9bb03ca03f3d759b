//! `fleet` (item 11): real `nats-server` processes (JetStream), 4 separate gateway processes in a
//! fleet, each linked to its share of the simulated boards (one `wasmbed-agent-sim --boards K`
//! per gateway), at several board counts. Per count: the time for one `wasmbed-host apply` to
//! converge on every board, `status` through the fleet vs a gateway forwarding vs the owning
//! gateway directly (hdrhistogram), NATS messages per second (the servers' `/varz`) while the
//! gateways join, during the apply and in steady state, and the RSS of every gateway and NATS
//! server (procfs).

use std::collections::BTreeMap;
use std::path::Path;

use hdrhistogram::Histogram;
use wasmbed_gateway::fleet::harness::{NatsCluster, NatsServer};
use wasmbed_gateway::fleet::FleetClient;

use crate::util::Proc;

use super::*;

/// Gateways in the fleet.
const GATEWAYS: usize = 4;
/// The application every run applies.
const APP: &str = "scale";

/// Item 11: the fleet at each of `cfg.fleet_boards` boards.
pub fn fleet(cfg: &Cfg, rep: &mut Report) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let dir = crate::util::log_dir().join("fleet");
    std::fs::create_dir_all(&dir)?;
    let (wasm, _) = link::build_module(&repo_root().join("modules/toggle_forever.c"), &dir, &[])?;
    let wasm_path = dir.join("toggle_forever.wasm");
    std::fs::write(&wasm_path, &wasm)?;
    let mut runs = Vec::new();
    let mut failed = Vec::new();
    for &n in &cfg.fleet_boards {
        println!("   {n} boards, {} NATS server(s)", cfg.fleet_nats);
        match one_size(cfg, &rt, &dir, n) {
            Ok(run) => {
                rows(rep, &run);
                if let Some(e) = run.get("error").and_then(Value::as_str) {
                    failed.push(format!("{n} boards: {e}"));
                }
                runs.push(run);
            }
            Err(e) => {
                failed.push(format!("{n} boards: {e}"));
                runs.push(json!({"boards": n, "error": e.to_string()}));
            }
        }
    }
    rep.json.insert(
        "fleet".into(),
        json!({"gateways": GATEWAYS, "nats_servers": cfg.fleet_nats,
               "app": "toggle_forever.wasm app_main, restartPolicy Always, every board by label",
               "runs": runs}),
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(err(failed.join("; ")))
    }
}

/// The processes of one run, dropped (killed) in field order: gateways (they let go of their
/// claims), boards, NATS.
struct Fleet {
    gateways: Vec<(String, Proc, String)>,
    sims: Vec<link::Sim>,
    nats: Vec<NatsServer>,
    /// Board names and the index of their gateway.
    boards: Vec<(String, usize)>,
    urls: String,
}

fn one_size(cfg: &Cfg, rt: &tokio::runtime::Runtime, dir: &Path, n: usize) -> Result<Value> {
    let t_start = Instant::now();
    let nats = if cfg.fleet_nats <= 1 {
        vec![NatsServer::start()?]
    } else {
        NatsCluster::start(cfg.fleet_nats)?.servers
    };
    let urls = nats
        .iter()
        .map(NatsServer::url)
        .collect::<Vec<_>>()
        .join(",");
    let mut fl = Fleet {
        gateways: Vec::new(),
        sims: Vec::new(),
        nats,
        boards: Vec::new(),
        urls,
    };
    // Boards: gateway g gets boards g*K.. (one simulator process each).
    for g in 0..GATEWAYS {
        let k = n / GATEWAYS + usize::from(g < n % GATEWAYS);
        if k == 0 {
            continue;
        }
        let sim = start_sim(
            &format!("fleet-sim-{n}-{g}"),
            &SimOpts {
                boards: k,
                ..Default::default()
            },
        )?;
        fl.sims.push(sim);
    }
    let varz0 = rt.block_on(varz(&fl.nats))?;
    let t_join = Instant::now();
    for (g, sim) in fl.sims.iter().enumerate() {
        let id = format!("gw-{g}");
        let mut toml = format!(
            "listen = \"127.0.0.1:0\"\n[fleet]\nurl = \"{}\"\ngateway_id = \"{id}\"\nreplicas = {}\n",
            fl.urls,
            fl.nats.len()
        );
        for ep in &sim.endpoints {
            let name = format!("b{:04}", fl.boards.len());
            toml.push_str(&format!(
                "[devices.{name}]\nendpoint = \"{ep}\"\n[fleet.labels.{name}]\nscale = \"yes\"\n"
            ));
            fl.boards.push((name, g));
        }
        let path = dir.join(format!("gw-{n}-{g}.toml"));
        std::fs::write(&path, toml)?;
        let mut cmd = Command::new(binary("wasmbed-gateway", "WASMBED_GATEWAY_BIN")?);
        cmd.arg("--config").arg(&path).env("RUST_LOG", "warn");
        let name = format!("fleet-gw-{n}-{g}");
        let proc = Proc::spawn(&name, cmd)?;
        let l = proc.wait_line("listening on ", Duration::from_secs(30))?;
        let addr = l["listening on ".len()..].to_string();
        fl.gateways.push((id, proc, addr));
    }
    let client = rt.block_on(FleetClient::connect(&fl.urls, &Default::default()))?;
    let online_within = Duration::from_secs(60 + n as u64 / 4);
    rt.block_on(wait_online(&client, n, online_within))?;
    let online_s = t_join.elapsed().as_secs_f64();
    let varz1 = rt.block_on(varz(&fl.nats))?;

    // One apply, until `rollout status` says converged.
    let app = dir.join(format!("{APP}.json"));
    std::fs::write(
        &app,
        json!({"apiVersion": "wasmbed.dev/v1alpha1", "kind": "Application",
            "metadata": {"name": APP},
            "spec": {"module": {"path": "toggle_forever.wasm"}, "function": "app_main",
                     "restartPolicy": "Always", "selector": {"matchLabels": {"scale": "yes"}}}})
        .to_string(),
    )?;
    let host = binary("wasmbed-host", "WASMBED_HOST_BIN")?;
    let t_apply = Instant::now();
    let o = Command::new(&host)
        .args(["--fleet", &fl.urls, "apply", "-f"])
        .arg(&app)
        .output()?;
    if !o.status.success() {
        return Err(err(format!(
            "wasmbed-host apply failed: {}",
            String::from_utf8_lossy(&o.stderr)
        )));
    }
    let rollout_timeout = 60 + n as u64 / 2;
    let o = Command::new(&host)
        .args(["--fleet", &fl.urls, "--json", "--timeout"])
        .arg(rollout_timeout.to_string())
        .args(["rollout", "status", APP])
        .output()?;
    let converge_s = t_apply.elapsed().as_secs_f64();
    let varz2 = rt.block_on(varz(&fl.nats))?;
    let failed_passes_converged = failed_passes(&fl);
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    let status = &doc["application"]["status"];
    let ready = status["ready"].as_u64().unwrap_or(0) as usize;
    let mut error = None;
    if !o.status.success() || ready != n {
        error = Some(format!(
            "not converged on all {n} boards within {rollout_timeout} s: {ready} ready ({}); {}",
            summarize(status),
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    std::fs::write(dir.join(format!("rollout-{n}.json")), &o.stdout)?;

    // Steady state: the application runs, nobody asks anything.
    let steady = Duration::from_secs(if cfg.quick { 2 } else { 15 });
    std::thread::sleep(steady);
    let varz3 = rt.block_on(varz(&fl.nats))?;

    // status: through the fleet (NATS request to the owner), through a gateway that does not
    // own the device (it forwards over NATS), and on the owning gateway's own API.
    let samples = if cfg.quick { 20 } else { 300 };
    let mut h_fleet = hist();
    let mut h_fwd = hist();
    let mut h_direct = hist();
    let mut conns = fl
        .gateways
        .iter()
        .map(|(_, _, a)| GwConn::connect(a))
        .collect::<Result<Vec<_>>>()?;
    // A gateway closes a connection whose first request is 10 s late
    // (`limits.first_request_timeout_ms`); the samples below reach the last gateway's boards
    // only after a while at 1000 boards: one request on every connection at once.
    for (g, c) in conns.iter_mut().enumerate() {
        if let Some((dev, _)) = fl.boards.iter().find(|(_, o)| *o == g) {
            ok(c.request(status_req(dev), None, T)?)?;
        }
    }
    for i in 0..samples + 10 {
        let (dev, owner) = &fl.boards[(i * 7) % n];
        let req = json!({"op": "status", "device": dev, "id": i});
        let t = Instant::now();
        let r = rt.block_on(client.request(&req, b"", |_| {}))?;
        let fleet_us = t.elapsed().as_micros() as u64;
        if r.reply["ok"] != true {
            return Err(err(format!("status of {dev} via the fleet: {}", r.reply)));
        }
        let other = (owner + 1) % fl.gateways.len();
        let t = Instant::now();
        ok(conns[other].request(status_req(dev), None, T)?)?;
        let fwd_us = t.elapsed().as_micros() as u64;
        let t = Instant::now();
        ok(conns[*owner].request(status_req(dev), None, T)?)?;
        let direct_us = t.elapsed().as_micros() as u64;
        if i >= 10 {
            h_fleet.record(fleet_us.max(1))?;
            h_fwd.record(fwd_us.max(1))?;
            h_direct.record(direct_us.max(1))?;
        }
    }
    let varz4 = rt.block_on(varz(&fl.nats))?;
    let failed_passes_end = failed_passes(&fl);
    let t_after = t_apply.elapsed().as_secs_f64() - converge_s;

    let mem_of = |label: &str, pid: Option<u32>| -> Value {
        let (rss, peak) = pid.map_or((0, 0), mem);
        json!({"name": label, "rss_mib": r3(mib(rss)), "peak_rss_mib": r3(mib(peak))})
    };
    let gw_mem: Vec<Value> = fl
        .gateways
        .iter()
        .map(|(id, p, _)| mem_of(id, Some(p.pid())))
        .collect();
    let nats_mem: Vec<Value> = fl.nats.iter().map(|s| mem_of(&s.name, s.pid())).collect();
    let sim_mem: Vec<Value> = fl
        .sims
        .iter()
        .map(|s| mem_of(&s.proc.name, Some(s.proc.pid())))
        .collect();
    let run = json!({
        "boards": n,
        "gateways": fl.gateways.len(),
        "nats_servers": fl.nats.len(),
        "setup_s": r3(t_join.duration_since(t_start).as_secs_f64()),
        "join_to_all_online_s": r3(online_s),
        "apply_to_converged_s": r3(converge_s),
        "converged": error.is_none(),
        "ready": ready,
        "status_ms": {"fleet": hist_json(&h_fleet), "via_other_gateway": hist_json(&h_fwd),
                      "direct": hist_json(&h_direct)},
        "nats_msgs_per_s": {
            "join": rates(&varz0, &varz1),
            "apply": rates(&varz1, &varz2),
            "steady": rates(&varz2, &varz3),
            "status_phase": rates(&varz3, &varz4),
        },
        "steady_window_s": steady.as_secs(),
        "failed_reconcile_passes": {
            "per_gateway_until_converged": failed_passes_converged,
            "per_gateway_after_converged": failed_passes_end.iter().zip(&failed_passes_converged)
                .map(|(e, c)| e.saturating_sub(*c)).collect::<Vec<_>>(),
            "after_converged_window_s": r3(t_after),
        },
        "memory": {"gateways": gw_mem, "nats": nats_mem, "sims": sim_mem},
        "loadavg": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
        "error": error,
    });
    drop(conns);
    drop(client);
    drop(fl);
    Ok(run)
}

fn rows(rep: &mut Report, run: &Value) {
    let n = &run["boards"];
    let what = |s: &str| format!("11 fleet {n} boards: {s}");
    rep.row(
        &what("apply -> converged"),
        if run["converged"] == true {
            format!(
                "{:.1} s (all boards online {:.1} s after the gateways started)",
                f(&run["apply_to_converged_s"]),
                f(&run["join_to_all_online_s"])
            )
        } else {
            format!("NOT CONVERGED: {}", run["error"].as_str().unwrap_or(""))
        },
        "",
        None,
    );
    let s = &run["status_ms"];
    let pp = |k: &str| format!("{:.2}/{:.2}", f(&s[k]["p50"]), f(&s[k]["p99"]));
    rep.row(
        &what("status p50/p99 ms"),
        format!(
            "fleet {}  via other gw {}  direct {}",
            pp("fleet"),
            pp("via_other_gateway"),
            pp("direct")
        ),
        "",
        None,
    );
    let m = &run["nats_msgs_per_s"];
    let io = |k: &str| format!("{:.0}/{:.0}", f(&m[k]["in"]), f(&m[k]["out"]));
    rep.row(
        &what("NATS msgs/s in/out"),
        format!(
            "join {}  apply {}  steady {}",
            io("join"),
            io("apply"),
            io("steady")
        ),
        "",
        None,
    );
    let fp = &run["failed_reconcile_passes"];
    let per = |k: &str| {
        fp[k]
            .as_array()
            .map(|a| a.iter().map(Value::to_string).collect::<Vec<_>>().join("/"))
            .unwrap_or_default()
    };
    rep.row(
        &what("failed reconcile passes per gateway"),
        format!(
            "until converged {}  in the {:.0} s after {}",
            per("per_gateway_until_converged"),
            f(&fp["after_converged_window_s"]),
            per("per_gateway_after_converged")
        ),
        "",
        None,
    );
    let mem = &run["memory"];
    let list = |k: &str| {
        mem[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| format!("{:.0}", f(&v["rss_mib"])))
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .unwrap_or_default()
    };
    rep.row(
        &what("RSS MiB"),
        format!(
            "gateways {}  nats {}  sims {}",
            list("gateways"),
            list("nats"),
            list("sims")
        ),
        "",
        None,
    );
}

/// Per gateway, how many reconcile passes failed so far: the `fleet: reconcile:` warnings in
/// its log (a pass that timed out reading the fleet says `no answer within`).
fn failed_passes(fl: &Fleet) -> Vec<usize> {
    fl.gateways
        .iter()
        .map(|(_, p, _)| {
            let log = crate::util::log_dir().join(format!("{}.log", p.name));
            std::fs::read_to_string(log)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("fleet: reconcile:"))
                .count()
        })
        .collect()
}

/// Polls the Device records until `n` devices are online.
async fn wait_online(client: &FleetClient, n: usize, within: Duration) -> Result<()> {
    let until = Instant::now() + within;
    loop {
        let online = match client.devices().await {
            Ok(d) => d.iter().filter(|d| d["status"]["online"] == true).count(),
            Err(_) => 0,
        };
        if online >= n {
            return Ok(());
        }
        if Instant::now() > until {
            return Err(err(format!(
                "only {online} of {n} boards online in the fleet after {within:?} (gateway logs: {})",
                crate::util::log_dir().display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One reading of every server's `/varz`: time and summed message counters.
struct Varz {
    at: Instant,
    in_msgs: u64,
    out_msgs: u64,
}

async fn varz(servers: &[NatsServer]) -> Result<Varz> {
    let mut v = Varz {
        at: Instant::now(),
        in_msgs: 0,
        out_msgs: 0,
    };
    for s in servers {
        let url = format!("http://127.0.0.1:{}/varz", s.monitor_port);
        let doc: Value = reqwest::get(&url).await?.json().await?;
        v.in_msgs += doc["in_msgs"].as_u64().unwrap_or(0);
        v.out_msgs += doc["out_msgs"].as_u64().unwrap_or(0);
    }
    Ok(v)
}

/// Messages per second between two readings (summed over the servers: in a cluster a message
/// routed between servers counts on both).
fn rates(a: &Varz, b: &Varz) -> Value {
    let s = b.at.duration_since(a.at).as_secs_f64().max(1e-3);
    json!({"in": r3((b.in_msgs - a.in_msgs) as f64 / s), "out": r3((b.out_msgs - a.out_msgs) as f64 / s),
           "window_s": r3(s)})
}

/// Microsecond histogram, 1 µs .. 10 min, 3 significant digits.
fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

fn hist_json(h: &Histogram<u64>) -> Value {
    let q = |q: f64| r3(h.value_at_quantile(q) as f64 / 1000.0);
    json!({"n": h.len(), "min": r3(h.min() as f64 / 1000.0), "p50": q(0.5), "p90": q(0.9),
           "p99": q(0.99), "max": r3(h.max() as f64 / 1000.0), "mean": r3(h.mean() / 1000.0)})
}

/// Resident set size and its peak (VmHWM) of a process, in bytes (0 when unreadable).
fn mem(pid: u32) -> (u64, u64) {
    procfs::process::Process::new(pid as i32)
        .and_then(|p| p.status())
        .map_or((0, 0), |s| {
            (s.vmrss.unwrap_or(0) * 1024, s.vmhwm.unwrap_or(0) * 1024)
        })
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// Phases of the devices that are not ready, and the first errors, for a run that did not
/// converge.
fn summarize(status: &Value) -> String {
    let mut phases: BTreeMap<String, usize> = BTreeMap::new();
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for d in status["devices"].as_array().into_iter().flatten() {
        *phases
            .entry(d["phase"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
        if let Some(e) = d["error"].as_str() {
            *errors.entry(e.chars().take(160).collect()).or_default() += 1;
        }
    }
    format!(
        "phases {phases:?}, desired {}, errors {:?}",
        status["desired"],
        errors.into_iter().take(3).collect::<Vec<_>>()
    )
}
