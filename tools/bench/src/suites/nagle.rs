//! `nagle` (item 8): the byte-wise Nagle device.

use super::*;

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
