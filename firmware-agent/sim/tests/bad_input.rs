//! Bad input never crashes or wedges the agent: garbage, noise, truncated or corrupt payloads,
//! hostile wasm, pool exhaustion, unresolved imports, overlong lines, input overflow.

mod common;

use common::{crc32, module, Link, Sim};
use std::time::{Duration, Instant};

/// The agent still answers and the process lives.
fn healthy(sim: &mut Sim, l: &mut Link) {
    let st = l.ask("STATUS", "STATUS_OK");
    assert!(st.starts_with("STATUS_OK modules="), "{st}");
    assert!(sim.alive());
}

#[test]
fn garbage_lines_and_binary_noise() {
    let mut sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    for g in [
        "hello",
        "load module_id=x",
        "STATUSX",
        "\u{1}\u{2}\u{3}",
        "LOAD",
        "START",
        "CHUNK offset=0",
    ] {
        l.send(g);
    }
    assert_eq!(l.line(), "ERROR code=UNKNOWN_COMMAND");
    assert_eq!(l.line(), "ERROR code=UNKNOWN_COMMAND");
    assert_eq!(l.line(), "ERROR code=UNKNOWN_COMMAND");
    // a line starting with 0x01 is a frame (here a broken one, with no upload to go to)
    assert_eq!(l.line(), "CHUNK_ERR code=NO_UPLOAD offset=0");
    assert_eq!(
        l.line(),
        "LOAD_ERR code=BAD_PARAMS msg=\"missing module_id/size/crc32\""
    );
    assert_eq!(
        l.line(),
        "RESULT status=BAD_PARAMS msg=\"missing module_id\""
    );
    assert_eq!(l.line(), "CHUNK_ERR code=NO_UPLOAD offset=0");
    // pseudo-random bytes including NUL, 0xff and many terminators
    let mut x: u32 = 0x1234_5678;
    let noise: Vec<u8> = (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    for part in noise.chunks(500) {
        l.send_raw(part);
        std::thread::sleep(Duration::from_millis(2));
    }
    l.send_raw(b"\n");
    std::thread::sleep(Duration::from_millis(300));
    while l.try_line(Duration::from_millis(200)).is_some() {}
    healthy(&mut sim, &mut l);
}

#[test]
fn overlong_line_is_rejected_not_executed() {
    let mut sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    l.load_ok("m", &module("math_ops"));
    // 256 bytes: a START that would run if truncated at 255
    let long = format!(
        "START module_id=m func=add args=\"a=1,b=2\"{}",
        " ".repeat(256)
    );
    l.send(&long);
    assert_eq!(l.line(), "ERROR code=LINE_TOO_LONG");
    l.quiet("START_OK", Duration::from_millis(300));
    // exactly 255 bytes is accepted
    let ok = format!("STATUS{}", " ".repeat(249));
    assert_eq!(ok.len(), 255);
    l.send(&ok);
    let st = l.expect("STATUS_OK");
    assert_eq!(Link::field(&st, "rx_too_long"), Some("1"), "{st}");
    healthy(&mut sim, &mut l);
}

#[test]
fn input_queue_overflow_is_counted_and_reported() {
    let mut sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    // 100 lines in one write: the reader hands them to the core in one go, the 8-line queue fills
    l.send_raw("X\n".repeat(100).as_bytes());
    let mut unknown = 0u32;
    let mut dropped = 0u32;
    while let Some(line) = l.try_line(Duration::from_millis(500)) {
        if line == "ERROR code=UNKNOWN_COMMAND" {
            unknown += 1;
        } else if let Some(n) = line.strip_prefix("ERROR code=RX_OVERFLOW dropped=") {
            dropped += n.parse::<u32>().unwrap();
        } else {
            panic!("unexpected {line}");
        }
    }
    assert_eq!(unknown + dropped, 100);
    assert!(dropped > 0, "no overflow happened");
    let st = l.ask("STATUS", "STATUS_OK");
    assert_eq!(
        Link::field(&st, "rx_overflow"),
        Some(dropped.to_string().as_str()),
        "{st}"
    );
    healthy(&mut sim, &mut l);
}

#[test]
fn truncated_payload_times_out_and_frees_the_slot() {
    let mut sim = Sim::tcp(&["--slots", "1"]);
    let mut l = sim.hello();
    let m = module("math_ops");
    l.send(&format!(
        "LOAD module_id=m size={} crc32={:08x}",
        m.len(),
        crc32(&m)
    ));
    l.expect("LOAD_READY");
    l.send_raw(&m[..m.len() / 2]);
    let t0 = Instant::now();
    assert_eq!(
        l.expect_within("LOAD_", Duration::from_secs(8)),
        "LOAD_ERR code=TIMEOUT msg=\"binary payload not received\""
    );
    assert!(t0.elapsed() > Duration::from_secs(4), "{:?}", t0.elapsed());
    // the only slot is free again (legacy left it used-but-empty)
    assert!(l
        .ask("STATUS", "STATUS_OK")
        .starts_with("STATUS_OK modules=\"none\""));
    l.load_ok("other", &m);
    healthy(&mut sim, &mut l);
}

#[test]
fn bad_crc_hostile_wasm_and_unresolved_import() {
    let mut sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    let m = module("math_ops");
    l.send(&format!("LOAD module_id=m size={} crc32=deadbeef", m.len()));
    l.expect("LOAD_READY");
    l.send_raw(&m);
    assert_eq!(
        l.expect("LOAD_"),
        format!(
            "LOAD_ERR code=BAD_CRC msg=\"expected=deadbeef got={:08x}\"",
            crc32(&m)
        )
    );
    // random bytes with a valid CRC
    let junk: Vec<u8> = (0..300u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let r = l.load("junk", &junk, "");
    assert!(r.starts_with("LOAD_ERR code=LOAD_FAIL msg=\""), "{r}");
    // a wasm header followed by garbage sections
    let mut bad = b"\0asm\x01\0\0\0".to_vec();
    bad.extend_from_slice(&[0x01, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x60]);
    let r = l.load("bad", &bad, "");
    assert!(r.starts_with("LOAD_ERR code=LOAD_FAIL msg=\""), "{r}");
    // an AOT header of a wrong version without a target descriptor: refused before WAMR sees it
    let mut aot = b"\0aot".to_vec();
    aot.extend_from_slice(&[0x63, 0, 0, 0]);
    aot.extend_from_slice(&[0u8; 64]);
    let r = l.load("aot", &aot, "");
    assert!(r.starts_with("LOAD_ERR code=AOT_TARGET msg=\""), "{r}");
    let imp = common::compile_c(
        "imp",
        "__attribute__((import_module(\"env\"), import_name(\"xyz\"))) void xyz(void);\n\
         __attribute__((export_name(\"f\"))) void f(void) { xyz(); }\n",
    );
    assert_eq!(
        l.load("imp", &imp, ""),
        "LOAD_ERR code=LOAD_FAIL msg=\"unresolved import env.xyz\""
    );
    // nothing of that took a slot
    assert!(l
        .ask("STATUS", "STATUS_OK")
        .starts_with("STATUS_OK modules=\"none\""));
    l.load_ok("m", &m);
    l.load_ok("m2", &m);
    healthy(&mut sim, &mut l);
}

#[test]
fn pool_exhaustion_is_no_mem_and_memory_comes_back() {
    let mut sim = Sim::tcp(&["--pool-size", "300000", "--slots", "8"]);
    let mut l = sim.hello();
    l.send("LOAD module_id=big size=1000000 crc32=00000000");
    assert_eq!(l.line(), "LOAD_ERR code=NO_MEM");
    // every instance takes ~22 KiB of the pool plus its 64 KiB page of linear memory (from the
    // pool, like on a board): it runs out before 8 modules
    let m = module("math_ops");
    let mut loaded = 0;
    let failure = loop {
        let r = l.load(&format!("m{loaded}"), &m, "");
        if r != "LOAD_OK" {
            break r;
        }
        loaded += 1;
        assert!(loaded < 8, "pool never ran out");
    };
    assert!(
        failure == "LOAD_ERR code=NO_MEM"
            || failure == "LOAD_ERR code=NO_EXEC_ENV msg=\"create_exec_env failed\""
            || failure.starts_with("LOAD_ERR code=INSTANTIATE_FAIL msg=\""),
        "{failure}"
    );
    assert!(loaded >= 2, "{loaded}");
    let free_before: u32 = Link::field(&l.ask("STATUS", "STATUS_OK"), "wamr_free")
        .unwrap()
        .parse()
        .unwrap();
    l.answers("UNLOAD module_id=m0", "UNLOAD_OK module_id=m0");
    let free_after: u32 = Link::field(&l.ask("STATUS", "STATUS_OK"), "wamr_free")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        free_after > free_before + 10_000,
        "{free_before} -> {free_after}"
    );
    l.load_ok("again", &m);
    healthy(&mut sim, &mut l);
}

#[test]
fn bad_params() {
    let sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    l.answers(
        "LOAD module_id=x size=0 crc32=0",
        "LOAD_ERR code=BAD_PARAMS msg=\"size=0\"",
    );
    l.answers(
        "LOAD module_id=x size=abc crc32=0",
        "LOAD_ERR code=BAD_PARAMS msg=\"bad size\"",
    );
    l.answers(
        "LOAD module_id=x size=10 crc32=zz",
        "LOAD_ERR code=BAD_PARAMS msg=\"bad crc32\"",
    );
    l.answers(
        &format!("LOAD module_id={} size=10 crc32=0", "a".repeat(40)),
        "LOAD_ERR code=BAD_PARAMS msg=\"bad module_id\"",
    );
    l.answers(
        "UNLOAD",
        "UNLOAD_ERR code=BAD_PARAMS msg=\"missing module_id\"",
    );
    l.answers(
        "UNLOAD module_id=q",
        "UNLOAD_ERR code=NOT_FOUND module_id=q",
    );
}
