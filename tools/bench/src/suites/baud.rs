//! `baud` (issue 14): a 64 KiB module onto a board that starts at 115200 baud, end to end through
//! the gateway over a real PTY (tokio-serial), without and with BAUD switching to 921600.

use super::*;

/// 64 KiB deploys through the gateway to a PTY-linked board at 115200: the endpoint as is (the
/// link keeps its speed) and with `&max_baud=921600` (the gateway switches up for the upload,
/// proves the speed with a round trip and switches back).
pub fn baud(cfg: &Cfg, rep: &mut Report) -> Result<()> {
    let runs = if cfg.quick { 1 } else { 3 };
    let size = 64 * 1024;
    let opts = SimOpts {
        baud: Some(115_200),
        pty: true,
        ..Default::default()
    };
    let mut points = Vec::new();
    let mut p50s = Vec::new();
    for (label, query) in [("115200 fixed", ""), ("BAUD to 921600", "&max_baud=921600")] {
        let sim = start_sim(&format!("baud-sim-{}", query.len()), &opts)?;
        let ep = format!("{}{query}", sim.endpoints[0]);
        let gw = start_gateway(
            &format!("baud-gw-{}", query.len()),
            &[("b".into(), ep)],
            &[],
        )?;
        let mut c = gw.connect()?;
        let mut e2e = Vec::new();
        for i in 0..runs {
            let module = padded_module(size, 2000 + i as u32 + query.len() as u32);
            let t = Instant::now();
            let r = c.deploy("b", "big", &module, Duration::from_secs(60))?;
            let took = t.elapsed();
            if r.outcome.is_err() {
                return Err(err(format!("deploy ({label}) failed: {}", link::show(&r))));
            }
            e2e.push(ms(took));
            let p = json!({"link": label, "kib": 64, "ms": r3(ms(took)),
                           "transfer_ms": r.latency.transfer_ms});
            println!("   {p}");
            points.push(p);
        }
        p50s.push((label, p50(&e2e)));
    }
    for (label, v) in &p50s {
        let switching = label.starts_with("BAUD");
        rep.row(
            &format!("14 64 KiB deploy, board at 115200, {label} (p50 of {runs})"),
            format!("{:.0} ms end to end", v),
            if switching { "< 1000 ms" } else { "" },
            switching.then_some(*v < 1000.0),
        );
    }
    rep.json.insert("baud".into(), json!({"points": points}));
    Ok(())
}
