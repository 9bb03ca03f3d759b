//! HELLO, INFO, STATUS, START/RESULT semantics of the simulated board over TCP.

mod common;

use common::{module, Link, Sim};
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

#[test]
fn hello_and_info() {
    let sim = Sim::tcp(&["--board", "simtest", "--slots", "3"]);
    let mut l = sim.connect();
    assert_eq!(
        l.line(),
        "HELLO device_id=simtest rtos=posix runtime=WAMR fw_version=2.0.0 proto=2"
    );
    let info = l.ask("INFO", "INFO_OK");
    for f in [
        "proto=2",
        "board=simtest",
        "wamr=2.4.3",
        "aot_arch=x86_64",
        "aot_version=6",
        "slots=3",
        "line_max=255",
        "stop=forced",
        "chunk_max=16384",
        "natives=\"gpio_toggle:(),led_toggle:(i),uart_print:(i),should_stop:()i,delay_ms:(i),log:(ii)\"",
    ] {
        assert!(info.contains(f), "{f} missing in {info}");
    }
    // No --baud: the link has no line speed, so INFO reports none.
    assert!(!info.contains(" baud="), "{info}");
    let total: u32 = Link::field(&info, "pool_total").unwrap().parse().unwrap();
    assert!(total > 2_000_000 && total <= 2_097_152, "{info}");
}

#[test]
fn math_ops_results() {
    let sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    l.load_ok("math_ops", &module("math_ops"));
    assert_eq!(
        l.run(r#"START module_id=math_ops func=add args="a=200,b=26""#, T),
        "RESULT status=OK module_id=math_ops func=add ret_i32=226"
    );
    assert_eq!(
        l.run(r#"START module_id=math_ops func=sum_to_n args="n=100""#, T),
        "RESULT status=OK module_id=math_ops func=sum_to_n ret_i32=5050"
    );
    assert_eq!(
        l.run(r#"START module_id=math_ops func=sum_to_n args="n=-4""#, T),
        "RESULT status=OK module_id=math_ops func=sum_to_n ret_i32=0"
    );
    // ret_i32 is unsigned decimal
    assert_eq!(
        l.run(r#"START module_id=math_ops func=add args="a=-5,b=2""#, T),
        "RESULT status=OK module_id=math_ops func=add ret_i32=4294967293"
    );
    // func defaults to app_main (the sum)
    assert_eq!(
        l.run(r#"START module_id=math_ops args="n=10""#, T),
        "RESULT status=OK module_id=math_ops func=app_main ret_i32=55"
    );
    // too few args: WAMR's exception
    let r = l.run("START module_id=math_ops func=add", T);
    assert!(r.starts_with("RESULT status=EXCEPTION module_id=math_ops func=add msg=\"Exception: invalid argument count"), "{r}");
    // immediate failures: no START_OK
    l.answers(
        "START func=add",
        "RESULT status=BAD_PARAMS msg=\"missing module_id\"",
    );
    l.answers("START module_id=nope func=add", "RESULT status=NO_MODULE");
    l.answers(
        "START module_id=math_ops func=mul",
        "RESULT status=NO_FUNC name=mul",
    );
    let st = l.ask("STATUS", "STATUS_OK");
    assert!(
        st.starts_with(&format!(
            "STATUS_OK modules=\"math_ops:LOADED:wasm={}:stack_free=",
            module("math_ops").len()
        )),
        "{st}"
    );
    assert!(
        st.contains(&format!(
            ":crc32={:08x}\"",
            common::crc32(&module("math_ops"))
        )),
        "{st}"
    );
}

#[test]
fn no_entrypoint_without_app_main() {
    let sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    l.load_ok("t", &module("toggle_n"));
    l.answers(
        "START module_id=t",
        "RESULT status=NO_ENTRYPOINT msg=\"expected app_main\"",
    );
    l.answers(
        r#"START module_id=t args="n=1""#,
        "RESULT status=NO_ENTRYPOINT msg=\"args require app_main\"",
    );
}

#[test]
fn fft_checksum() {
    let sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    l.load_ok("fft", &module("fft_bench"));
    l.run("START module_id=fft func=fft_init", T);
    assert_eq!(
        l.run(
            r#"START module_id=fft func=fft_bench args="iters=5""#,
            Duration::from_secs(30)
        ),
        "RESULT status=OK module_id=fft func=fft_bench ret_i32=1536"
    );
    assert_eq!(
        l.run(r#"START module_id=fft func=fft_bench args="iters=0""#, T),
        "RESULT status=OK module_id=fft func=fft_bench ret_i32=4294967295"
    );
}

#[test]
fn traps_and_deep_recursion() {
    let sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    l.load_ok("trap", &module("trap"));
    assert_eq!(
        l.run("START module_id=trap func=trap", T),
        "RESULT status=EXCEPTION module_id=trap func=trap msg=\"Exception: unreachable\""
    );
    let r = l.run(
        r#"START module_id=trap func=deep args="d=100000000""#,
        Duration::from_secs(20),
    );
    assert!(
        r.starts_with("RESULT status=EXCEPTION module_id=trap func=deep msg=\"Exception: "),
        "{r}"
    );
    assert!(r.contains("stack overflow"), "{r}");
    // exceptions are cleared: a bounded recursion now succeeds (returns 1 + 2 + ... + d)
    assert_eq!(
        l.run(r#"START module_id=trap func=deep args="d=10""#, T),
        "RESULT status=OK module_id=trap func=deep ret_i32=55"
    );
}

#[test]
fn log_and_uart_print() {
    let sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    l.load_ok("lh", &module("log_hello"));
    l.send("START module_id=lh func=log_hello");
    assert_eq!(l.line(), "START_OK");
    assert_eq!(
        l.line(),
        r#"LOG module_id=lh msg="hello from wasm \"quoted\"""#
    );
    assert_eq!(
        l.line(),
        "RESULT status=OK module_id=lh func=log_hello ret_i32=24"
    );
    l.send("START module_id=lh func=print_hello");
    assert_eq!(l.line(), "START_OK");
    assert_eq!(l.line(), r#"LOG module_id=lh msg="[wasm] uart hello""#);
    assert_eq!(
        l.expect_within("RESULT", Duration::from_secs(3)),
        "RESULT status=OK module_id=lh func=print_hello"
    );
    assert_eq!(
        l.run("START module_id=lh func=log_bad_ptr", T),
        "RESULT status=EXCEPTION module_id=lh func=log_bad_ptr msg=\"Exception: out of bounds memory access\""
    );
}

#[test]
fn every_module_loads() {
    let sim = Sim::tcp(&["--slots", "8"]);
    let mut l = sim.hello();
    let names = [
        "math_ops",
        "toggle_forever",
        "toggle_n",
        "busy_loop",
        "trap",
        "fft_bench",
        "log_hello",
    ];
    for n in names {
        l.load_ok(n, &module(n));
    }
    let st = l.ask("STATUS", "STATUS_OK");
    for n in names {
        assert!(
            st.contains(&format!("{n}:LOADED:wasm={}:", module(n).len())),
            "{n} in {st}"
        );
    }
}

#[test]
fn stdio_link_and_exit_on_eof() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmbed-agent-sim"))
        .args(["--board", "stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"INFO\n").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let hello = rx.recv_timeout(T).unwrap();
    assert!(
        hello.starts_with("HELLO device_id=stdio rtos=posix"),
        "{hello}"
    );
    assert!(rx
        .recv_timeout(T)
        .unwrap()
        .starts_with("INFO_OK proto=2 board=stdio"));
    drop(stdin); // EOF: the board exits cleanly
    let deadline = std::time::Instant::now() + T;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "sim did not exit on EOF"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}
