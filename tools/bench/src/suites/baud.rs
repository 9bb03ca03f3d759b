//! `baud` (issue 14): a 64 KiB module onto a board that starts at 115200 baud, end to end through
//! the gateway over a real PTY (tokio-serial), without and with BAUD switching to 921600, and
//! with compressed uploads (docs/PROTOCOL.md "Compressed uploads") with and without the switch.
//!
//! Two modules of exactly 64 KiB: one whose bytes do not compress (a custom section of
//! xorshift bytes: the gateway sends it as is, so its time is the uncompressed upload's, which
//! does not depend on the bytes), and a real one: Monocypher (firmware-agent/third_party)
//! compiled to wasm with clang -O1 (58 KB of code) plus a custom section of xorshift bytes to
//! 64 KiB, which deflates to about 46 %.

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
    let real = real_module(size)?;
    let mut points = Vec::new();
    let mut p50s = Vec::new();
    let cases = [
        ("115200 fixed", "", false),
        ("BAUD to 921600", "&max_baud=921600", false),
        ("115200 fixed + deflate", "", true),
        ("BAUD to 921600 + deflate", "&max_baud=921600", true),
    ];
    for (n, (label, query, deflate)) in cases.into_iter().enumerate() {
        let sim = start_sim(&format!("baud-sim-{n}"), &opts)?;
        let ep = format!("{}{query}", sim.endpoints[0]);
        let gw = start_gateway(&format!("baud-gw-{n}"), &[("b".into(), ep)], &[])?;
        let mut c = gw.connect()?;
        let mut e2e = Vec::new();
        for i in 0..runs {
            let module = if deflate {
                // another module each run: the gateway would skip one the board holds
                let mut m = real.clone();
                let last = m.len() - 1;
                m[last] = m[last].wrapping_add(i as u8);
                m
            } else {
                padded_module(size, 2000 + i as u32 + n as u32)
            };
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
        let target = label.starts_with("BAUD");
        rep.row(
            &format!("14 64 KiB deploy, board at 115200, {label} (p50 of {runs})"),
            format!("{:.0} ms end to end", v),
            if target { "< 1000 ms" } else { "" },
            target.then_some(*v < 1000.0),
        );
    }
    rep.json.insert("baud".into(), json!({"points": points}));
    Ok(())
}

/// Monocypher as a wasm module (clang -O1, its own memcpy/memset/memmove), padded to `size` with
/// a custom section of xorshift bytes: real code for the deflate figures.
pub(super) fn real_module(size: usize) -> Result<Vec<u8>> {
    let root = repo_root();
    let mono = root.join("firmware-agent/third_party/monocypher");
    let dir = std::env::temp_dir().join(format!("wasmbed-bench-mono-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| err(e.to_string()))?;
    let shim = dir.join("shim.c");
    std::fs::write(
        &shim,
        "#include <stddef.h>\n\
         void *memcpy(void *d, const void *s, size_t n) { unsigned char *a = d; \
         const unsigned char *b = s; while (n--) *a++ = *b++; return d; }\n\
         void *memset(void *d, int c, size_t n) { unsigned char *a = d; \
         while (n--) *a++ = (unsigned char)c; return d; }\n\
         void *memmove(void *d, const void *s, size_t n) { unsigned char *a = d; \
         const unsigned char *b = s; if (a < b) while (n--) *a++ = *b++; \
         else while (n--) a[n] = b[n]; return d; }\n",
    )
    .map_err(|e| err(e.to_string()))?;
    let out = dir.join("mono.wasm");
    let st = Command::new(std::env::var("CLANG").unwrap_or_else(|_| "clang".into()))
        .args(["--target=wasm32-unknown-unknown", "-O1", "-nostdlib"])
        .args(["-Wl,--no-entry", "-Wl,--export-all"])
        .arg(format!("-I{}", mono.display()))
        .arg(format!("-I{}", mono.join("optional").display()))
        .arg(mono.join("monocypher.c"))
        .arg(mono.join("optional/monocypher-ed25519.c"))
        .arg(&shim)
        .arg("-o")
        .arg(&out)
        .status()
        .map_err(|e| err(format!("clang: {e}")))?;
    if !st.success() {
        return Err(err("clang failed on Monocypher (the deflate module)"));
    }
    let read = std::fs::read(&out);
    let _ = std::fs::remove_dir_all(&dir);
    let mut m = read.map_err(|e| err(e.to_string()))?;
    // custom section "pad" up to `size` (3-byte LEB128 section size)
    let body = size
        .checked_sub(m.len() + 1 + 3)
        .ok_or_else(|| err(format!("Monocypher is {} bytes, over {size}", m.len())))?;
    m.push(0);
    m.extend_from_slice(&[
        (body & 0x7f) as u8 | 0x80,
        ((body >> 7) & 0x7f) as u8 | 0x80,
        (body >> 14) as u8,
    ]);
    m.push(3);
    m.extend_from_slice(b"pad");
    let mut x = 0x9e37_79b9u32;
    m.extend((0..body - 4).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as u8
    }));
    debug_assert_eq!(m.len(), size);
    Ok(m)
}
