//! Legacy `load` / `build_and_load` with the raw blob after the header, against a v1 device.

mod common;

use common::*;

#[tokio::test]
async fn legacy_load_and_build_and_load() {
    let dev = FakeDevice::start(v1_loader()).await;
    let gw = gateway(&[format!("renode=tcp:127.0.0.1:{}", dev.port)]).await;
    wait_online(&gw, "renode").await;

    let wasm = std::process::Command::new("wat2wasm")
        .args(["-", "--output=-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"(module (func (export \"add\") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))")?;
            c.wait_with_output()
        })
        .unwrap()
        .stdout;
    assert!(wasm.starts_with(b"\0asm"));
    let crc = format!("{:08x}", crc32fast::hash(&wasm));
    let mut req = format!("{{\"cmd\": \"load\", \"device\": \"renode\", \"module_id\": \"math_ops\", \"blob_size\": {}, \"blob_crc32\": \"{crc}\", \"blob_name\": \"math_ops.wasm\"}}\n", wasm.len()).into_bytes();
    req.extend_from_slice(&wasm);
    let reply = host_raw(gw.addr, &req).await;
    assert_eq!(reply, "{\"ok\": true, \"detail\": \"LOAD_OK\"}\n");
    let load_line = format!("LOAD module_id=math_ops size={} crc32={crc}", wasm.len());
    assert!(dev.heard().contains(&load_line), "{:?}", dev.heard());
    let log = gw.devices[0].log.since(0).0;
    assert!(
        log.iter().any(|e| e.line == "LED ON (thread 0x2000)"),
        "console kept: {log:?}"
    );

    let src = b"__attribute__((export_name(\"add\"))) int add(int a, int b) { return a + b; }\n";
    let crc = format!("{:08x}", crc32fast::hash(src));
    let mut req = format!("{{\"cmd\": \"build_and_load\", \"device\": \"renode\", \"module_id\": \"m2\", \"mode\": \"wasm\", \"source_size\": {}, \"source_crc32\": \"{crc}\", \"source_name\": \"m.c\"}}\n", src.len()).into_bytes();
    req.extend_from_slice(src);
    let reply = host_raw(gw.addr, &req).await;
    assert_eq!(
        reply,
        "{\"step\": \"load\", \"wasm_path\": \"m2.wasm\", \"ok\": true, \"detail\": \"LOAD_OK\"}\n"
    );

    let bad = b"int f( {";
    let crc = format!("{:08x}", crc32fast::hash(bad));
    let mut req = format!("{{\"cmd\": \"build_and_load\", \"device\": \"renode\", \"module_id\": \"m3\", \"mode\": \"wasm\", \"source_size\": {}, \"source_crc32\": \"{crc}\", \"source_name\": \"m.c\"}}\n", bad.len()).into_bytes();
    req.extend_from_slice(bad);
    let reply = host_raw(gw.addr, &req).await;
    assert!(reply.starts_with("{\"ok\": false, \"step\": \"compile_wasm\", \"error\": \"errore compilazione C->WASM\", \"stderr\": \""), "{reply}");
    assert!(!dev.heard().iter().any(|l| l.contains("m3")));
}
