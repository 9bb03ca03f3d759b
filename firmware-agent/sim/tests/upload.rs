//! v2 extensions: chunked LOAD with a bad chunk CRC, resume, UNLOAD; links: PTY, reconnects, baud.

mod common;

use common::{crc32, module, Link, Sim};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(5);

fn chunk(l: &mut Link, data: &[u8], off: usize, len: usize, crc: u32) -> String {
    l.send(&format!("CHUNK offset={off} size={len} crc32={crc:08x}"));
    l.send_raw(&data[off..off + len]);
    l.expect("CHUNK_")
}

#[test]
fn chunked_load_with_bad_crc_and_resume() {
    let sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    let fft = module("fft_bench");
    let n = fft.len();
    let head = format!(
        "LOAD module_id=fft size={n} crc32={:08x} chunked=1",
        crc32(&fft)
    );
    assert_eq!(
        l.ask(&head, "LOAD_"),
        format!(
            "LOAD_READY module_id=fft size={n} crc32={:08x} chunk=16384 offset=0",
            crc32(&fft)
        )
    );
    let c = 700;
    assert_eq!(
        chunk(&mut l, &fft, 0, c, crc32(&fft[..c])),
        format!("CHUNK_OK offset={c}")
    );
    // corrupted chunk: discarded, resend from the acked offset
    assert_eq!(
        chunk(&mut l, &fft, c, c, crc32(&fft[c..2 * c]) ^ 1),
        format!("CHUNK_ERR code=BAD_CRC offset={c}")
    );
    // wrong offset
    assert_eq!(
        chunk(&mut l, &fft, 0, c, crc32(&fft[..c])),
        format!("CHUNK_ERR code=BAD_OFFSET offset={c}")
    );
    assert_eq!(
        chunk(&mut l, &fft, c, c, crc32(&fft[c..2 * c])),
        format!("CHUNK_OK offset={}", 2 * c)
    );
    // a chunk larger than chunk= is consumed and refused
    l.send(&format!("CHUNK offset={} size=17000 crc32=00000000", 2 * c));
    l.send_raw(&[b'\n'; 17000]);
    assert_eq!(
        l.expect("CHUNK_"),
        format!("CHUNK_ERR code=BAD_OFFSET offset={}", 2 * c)
    );
    // another LOAD meanwhile does not lose the partial upload
    l.load_ok("math", &module("math_ops"));
    assert!(l
        .ask("STATUS", "STATUS_OK")
        .starts_with("STATUS_OK modules=\"math:LOADED"));
    // the link "drops": STATUS still works meanwhile, then the upload resumes
    assert!(!l.ask("STATUS", "STATUS_OK").contains("fft:"));
    assert_eq!(
        l.ask(&format!("{head} resume=1"), "LOAD_"),
        format!(
            "LOAD_READY module_id=fft size={n} crc32={:08x} chunk=16384 offset={}",
            crc32(&fft),
            2 * c
        )
    );
    let rest = n - 2 * c;
    assert_eq!(
        chunk(&mut l, &fft, 2 * c, rest, crc32(&fft[2 * c..])),
        format!("CHUNK_OK offset={n}")
    );
    assert_eq!(l.line(), "LOAD_OK");
    assert_eq!(
        l.run(r#"START module_id=fft func=fft_bench args="i=1""#, T),
        "RESULT status=OK module_id=fft func=fft_bench ret_i32=1536"
    );
    let st = l.ask("STATUS", "STATUS_OK");
    assert!(
        st.contains(&format!("fft:LOADED:wasm={n}:"))
            && st.contains(&format!("crc32={:08x}", crc32(&fft))),
        "{st}"
    );
}

#[test]
fn chunk_payload_timeout_keeps_the_upload() {
    let sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    let m = module("math_ops");
    let n = m.len();
    l.ask(
        &format!(
            "LOAD module_id=m size={n} crc32={:08x} chunked=1",
            crc32(&m)
        ),
        "LOAD_READY",
    );
    l.send(&format!("CHUNK offset=0 size={n} crc32={:08x}", crc32(&m)));
    l.send_raw(&m[..10]);
    assert_eq!(
        l.expect_within("CHUNK_", Duration::from_secs(4)),
        "CHUNK_ERR code=TIMEOUT offset=0"
    );
    assert_eq!(
        chunk(&mut l, &m, 0, n, crc32(&m)),
        format!("CHUNK_OK offset={n}")
    );
    assert_eq!(l.line(), "LOAD_OK");
}

#[test]
fn unload_running_module_reports_forced_stop() {
    let sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    l.load_ok("busy", &module("busy_loop"));
    l.send("START module_id=busy");
    assert_eq!(l.line(), "START_OK");
    l.send("UNLOAD module_id=busy");
    assert_eq!(
        l.line(),
        "RESULT status=STOPPED forced=1 module_id=busy func=app_main"
    );
    assert_eq!(l.line(), "UNLOAD_OK module_id=busy");
    assert!(l
        .ask("STATUS", "STATUS_OK")
        .starts_with("STATUS_OK modules=\"none\""));
    l.answers("START module_id=busy", "RESULT status=NO_MODULE");
}

#[test]
fn pty_link() {
    let sim = Sim::pty(&[]);
    assert!(sim.endpoint.starts_with("/dev/pts/"), "{}", sim.endpoint);
    let mut l = sim.open_pty();
    assert!(l.expect("HELLO").contains("proto=2"));
    l.load_ok("math", &module("math_ops"));
    assert_eq!(
        l.run(r#"START module_id=math func=add args="a=200,b=26""#, T),
        "RESULT status=OK module_id=math func=add ret_i32=226"
    );
}

#[test]
fn reconnect_gets_hello_and_keeps_modules() {
    let sim = Sim::tcp(&[]);
    {
        let mut l = sim.hello();
        l.load_ok("math", &module("math_ops"));
        l.send_raw(b"STAT"); // a partial line dies with the connection
    }
    std::thread::sleep(Duration::from_millis(100));
    let mut l = sim.connect();
    assert!(l.expect("HELLO").starts_with("HELLO device_id=sim"));
    l.send("US");
    assert_eq!(l.line(), "ERROR code=UNKNOWN_COMMAND");
    assert!(l.ask("STATUS", "STATUS_OK").contains("math:LOADED"));
}

#[test]
fn baud_pacing_slows_uploads() {
    let sim = Sim::tcp(&["--baud", "19200"]);
    let mut l = sim.hello();
    // The paced link's speed is reported in INFO (optional v2 field, after line_max).
    let info = l.ask("INFO", "INFO_OK");
    assert!(info.contains(" line_max=255 baud=19200 "), "{info}");
    let fft = module("fft_bench"); // ~2.3 KB: ~1.2 s at 1920 bytes/s
    let t0 = Instant::now();
    l.load_ok("fft", &fft);
    let took = t0.elapsed();
    let expected = Duration::from_secs_f64(fft.len() as f64 * 10.0 / 19200.0);
    assert!(took >= expected, "{took:?} < {expected:?}");
    assert!(took < expected * 3, "{took:?}");
}

#[test]
fn sigterm_exits_cleanly_even_with_a_running_job() {
    let mut sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    l.load_ok("busy", &module("busy_loop"));
    l.send("START module_id=busy");
    assert_eq!(l.line(), "START_OK");
    assert_eq!(sim.terminate(), Some(0));
}

#[test]
fn a_peer_that_stops_reading_does_not_wedge_the_board() {
    use std::io::Write;
    let sim = Sim::pty(&[]);
    // a writer that never reads: ~500 KB of STATUS_OK replies pile up in a ~4 KB tty buffer
    let mut raw = std::fs::OpenOptions::new()
        .write(true)
        .open(&sim.endpoint)
        .unwrap();
    for _ in 0..50 {
        raw.write_all("STATUS\n".repeat(50).as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    // a reader appears: after draining the backlog the board answers promptly (no deadlock,
    // no crash; output written while nobody read was dropped after a 1 s stall)
    let mut l = sim.open_pty();
    while l.try_line(Duration::from_millis(500)).is_some() {}
    let t0 = Instant::now();
    l.send("INFO");
    assert!(l.expect("INFO_OK").starts_with("INFO_OK proto=2"));
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    drop(raw);
}
