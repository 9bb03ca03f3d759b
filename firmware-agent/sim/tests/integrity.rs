//! Issue 11 parts 1 and 5 on the simulated board over real TCP: upload payload never runs as
//! commands (stalls, damaged frames, lost marks and terminators), and a new connection never
//! continues the payload of the old one.

mod common;

use common::{compile_c, crc32, module, Link, Sim};
use std::time::Duration;
use wasmbed_agent_proto::frame::chunk_frame;

/// A real module whose data section spells commands that would unload `victim`.
fn evil_module() -> Vec<u8> {
    let m = compile_c(
        "evil",
        r#"
        __attribute__((used)) const char spell[] =
            "\nUNLOAD module_id=victim\nUNLOAD module_id=victim\rSTATUS\n";
        __attribute__((export_name("app_main"))) int app_main(void) { return spell[1]; }
        "#,
    );
    let spell = b"\nUNLOAD module_id=victim\n";
    assert!(m.windows(spell.len()).any(|w| w == spell), "data section");
    m
}

fn victim_loaded(l: &mut Link) -> bool {
    l.ask("STATUS", "STATUS_OK").contains("victim:LOADED")
}

fn framed_load(l: &mut Link, id: &str, m: &[u8], extra: &str) -> String {
    l.ask(
        &format!(
            "LOAD module_id={id} size={} crc32={:08x} chunked=1 framed=1{extra}",
            m.len(),
            crc32(m)
        ),
        "LOAD_",
    )
}

#[test]
fn a_stalled_frame_never_runs_its_payload_as_commands() {
    let sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    l.load_ok("victim", &module("math_ops"));
    let m = evil_module();
    let ready = framed_load(&mut l, "evil", &m, "");
    assert!(ready.ends_with(" offset=0 framed=1"), "{ready}");
    let f = chunk_frame(0, &m);
    // the issue's proxy: the first 8 payload bytes, then 2.5 s of nothing
    l.send_raw(&f[..8]);
    l.quiet("", Duration::from_millis(2500));
    l.send_raw(&f[8..]);
    assert_eq!(l.line(), format!("CHUNK_OK offset={}", m.len()));
    assert_eq!(l.line(), "LOAD_OK");
    assert!(victim_loaded(&mut l));
    assert!(l
        .ask("START module_id=evil", "START_OK")
        .starts_with("START_OK"));
    assert_eq!(
        l.expect("RESULT"),
        "RESULT status=OK module_id=evil func=app_main ret_i32=85"
    );
}

#[test]
fn damaged_frames_are_refused_and_never_executed() {
    let sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    l.load_ok("victim", &module("math_ops"));
    let m = evil_module();
    framed_load(&mut l, "evil", &m, "");
    let f = chunk_frame(0, &m);
    // data crafted so that the encoded frame spells a command verbatim near its end
    let crafted: Vec<u8> = b"UNLOAD module_id=victim "
        .iter()
        .map(|b| b ^ b'\n')
        .collect();
    let cf = chunk_frame(0, &crafted);
    let spell = cf
        .windows(6)
        .position(|w| w == b"UNLOAD")
        .expect("the spell is verbatim in the frame");
    let mut x: u32 = 0x9e37_79b9;
    let mut rnd = |n: usize| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as usize % n
    };
    let mut cases: Vec<Vec<u8>> = vec![
        f[1..].to_vec(),                                      // the mark is lost
        [&f[..f.len() - 1], b"STATUS\n".as_slice()].concat(), // the terminator is lost
        cf[spell..].to_vec(), // everything up to the spell is lost (or the board reset there)
    ];
    for _ in 0..30 {
        let mut g = f.clone();
        let i = 1 + rnd(g.len() - 2);
        match rnd(3) {
            0 => g[i] ^= 1 << rnd(8),
            1 => {
                g.remove(i);
            }
            _ => g.insert(i, g[i]),
        }
        cases.push(g);
    }
    for g in cases {
        l.send_raw(&g);
        l.send_raw(b"\n"); // a lone newline ends whatever is left, as the gateway does
        while let Some(r) = l.try_line(Duration::from_millis(150)) {
            assert!(
                r.starts_with("CHUNK_ERR code=BAD_") || r == format!("CHUNK_OK offset={}", m.len()),
                "{r}"
            );
            if r.starts_with("CHUNK_OK") {
                // a damage that left the frame intact (a flip into the same byte cannot happen,
                // a duplicated COBS byte can decode to the same data only if the CRC holds)
                panic!("damaged frame accepted");
            }
        }
    }
    assert!(victim_loaded(&mut l));
    let st = l.ask("STATUS", "STATUS_OK");
    assert!(!st.contains(" rx_junk=0 "), "{st}");
    // the intact frame still completes the upload
    l.send_raw(&f);
    assert_eq!(l.line(), format!("CHUNK_OK offset={}", m.len()));
    assert_eq!(l.line(), "LOAD_OK");
}

#[test]
fn a_new_connection_starts_with_a_command_not_payload() {
    let sim = Sim::tcp(&[]);
    let m = module("math_ops");
    let n = m.len();
    // raw CHUNK (firmware without framing), framed chunk and v1 LOAD, each dropped midway
    for how in ["chunk", "frame", "v1"] {
        let mut l = sim.hello();
        match how {
            "chunk" => {
                l.ask(
                    &format!(
                        "LOAD module_id=m size={n} crc32={:08x} chunked=1",
                        crc32(&m)
                    ),
                    "LOAD_READY",
                );
                l.send(&format!("CHUNK offset=0 size={n} crc32={:08x}", crc32(&m)));
                l.send_raw(&m[..10]);
            }
            "frame" => {
                framed_load(&mut l, "m", &m, "");
                l.send_raw(&chunk_frame(0, &m)[..20]);
            }
            _ => {
                l.ask(
                    &format!("LOAD module_id=m size={n} crc32={:08x}", crc32(&m)),
                    "LOAD_READY",
                );
                l.send_raw(&m[..10]);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        drop(l);
        std::thread::sleep(Duration::from_millis(100));
        let mut l = sim.hello();
        l.send("STATUS");
        let first = l.try_line(Duration::from_millis(1000));
        assert!(
            first.as_deref().is_some_and(|s| s.starts_with("STATUS_OK")),
            "{how}: first answer on the new connection: {first:?}"
        );
        l.quiet("", Duration::from_millis(300));
    }
}

/// Issue 11 part 2: whatever a module prints reaches the link as a LOG line of that module,
/// escaped, so it can never read as a reply; output is bounded in size (truncated=1) and rate
/// (dropped=<n>), and protocol lines keep flowing.
#[test]
fn module_output_is_framed_bounded_and_never_a_reply() {
    let sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    let m = compile_c(
        "printer",
        r#"
        #include "wasmbed.h"
        static char big[400];
        WB_EXPORT("forge") void forge(void) {
            uart_print("RESULT status=OK module_id=victim func=slow ret_i32=999");
        }
        WB_EXPORT("forge_log") void forge_log(void) {
            static const char s[] = "x\nLOAD_OK\nSTART_OK \"q\"";
            wb_log(s, sizeof(s) - 1);
        }
        WB_EXPORT("long_print") void long_print(void) {
            for (int i = 0; i < 399; i++) big[i] = 'a' + i % 26;
            uart_print(big);
        }
        WB_EXPORT("flood") int flood(void) {
            for (int i = 0; i < 100; i++) wb_log("f", 1);
            delay_ms(1100);
            wb_log("after", 5);
            return 7;
        }
        "#,
    );
    l.load_ok("p", &m);
    l.send("START module_id=p func=forge");
    assert_eq!(l.line(), "START_OK");
    assert_eq!(
        l.line(),
        r#"LOG module_id=p msg="RESULT status=OK module_id=victim func=slow ret_i32=999""#
    );
    assert_eq!(
        l.expect_within("RESULT", Duration::from_secs(3)),
        "RESULT status=OK module_id=p func=forge"
    );
    l.send("START module_id=p func=forge_log");
    assert_eq!(l.line(), "START_OK");
    assert_eq!(
        l.line(),
        r#"LOG module_id=p msg="x\x0aLOAD_OK\x0aSTART_OK \"q\"""#
    );
    assert_eq!(l.line(), "RESULT status=OK module_id=p func=forge_log");
    l.send("START module_id=p func=long_print");
    assert_eq!(l.line(), "START_OK");
    let long = l.line();
    assert!(long.starts_with("LOG module_id=p msg=\"abcdef"), "{long}");
    assert!(long.ends_with("\" truncated=1"), "{long}");
    l.expect_within("RESULT", Duration::from_secs(3));
    // the rate bound: 20 lines a second, the rest counted; STATUS answers in between
    l.send("START module_id=p func=flood");
    assert_eq!(l.line(), "START_OK");
    for _ in 0..20 {
        assert_eq!(l.line(), r#"LOG module_id=p msg="f""#);
    }
    assert!(l.ask("STATUS", "STATUS_OK").contains("p:RUNNING"));
    assert_eq!(l.line(), r#"LOG module_id=p msg="after" dropped=80"#);
    assert_eq!(
        l.line(),
        "RESULT status=OK module_id=p func=flood ret_i32=7"
    );
}
