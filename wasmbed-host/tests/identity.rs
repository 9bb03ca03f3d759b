//! Device identity and enrollment end to end (docs/SECURITY.md "Device identity"): the real
//! gateway, real simulated boards with identity files over TCP, and the real CLI. A fake device
//! replays a recorded IDENT answer; it fails on any line it does not expect.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use common::real::{module, sibling_bin, wait_online, Proc};
use common::*;
use serde_json::Value;

/// A simulated board on `addr` (`127.0.0.1:0`: any port) with the identity in `key_file`.
fn sim(addr: &str, key_file: Option<&Path>) -> Proc {
    let mut args = vec!["--listen".to_string(), addr.to_string()];
    if let Some(k) = key_file {
        args.extend(["--identity-file".into(), k.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Proc::spawn(
        sibling_bin("wasmbed-agent-sim", "WASMBED_AGENT_SIM"),
        &args,
        &[],
    )
}

/// A gateway serving `dev` at `endpoint` with its state in `state`.
fn gateway(endpoint: &str, state: &Path, extra: &[&str]) -> Proc {
    let device = format!("dev=tcp:{endpoint}");
    let state = state.display().to_string();
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--device",
        &device,
        "--state-dir",
        &state,
    ];
    args.extend_from_slice(extra);
    let gw = Proc::spawn(
        sibling_bin("wasmbed-gateway", "WASMBED_GATEWAY_BIN"),
        &args,
        &[],
    );
    wait_online(&gw.addr, "dev");
    gw
}

/// `devices --json`: the identity object of `dev`.
fn identity(gw: &str) -> Value {
    let o = run_exit(0, &format!("--gateway {gw} --json devices"), &[]);
    let doc = json_doc(&o);
    doc["result"]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "dev")
        .unwrap()["identity"]
        .clone()
}

/// Polls until `dev`'s identity state is `state` (at most 20 s).
fn wait_state(gw: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let id = identity(gw);
        if id["state"] == state {
            return id;
        }
        assert!(Instant::now() < deadline, "never {state}: {id}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn deploy(gw: &str) -> std::process::Output {
    run(&argv(
        &format!(
            "--gateway {gw} -d dev build-and-deploy --module-id math_ops --mode wasm --source"
        ),
        &[&module("math_ops.c")],
    ))
}

fn add(gw: &str) -> std::process::Output {
    run(&argv(
        &format!("--gateway {gw} -d dev start --module-id math_ops --func add --args 200,26 --wait-result"),
        &[],
    ))
}

#[test]
fn pending_until_approved_then_a_swapped_board_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("gw-state");
    let board_a = sim("127.0.0.1:0", Some(&dir.path().join("a.identity")));
    let endpoint = board_a.addr.clone();
    let gw = gateway(&endpoint, &state, &[]);
    let g = &gw.addr;

    // New key: pending, commands refused with what to do.
    let id = wait_state(g, "pending");
    let fp_a = id["fingerprint"].as_str().unwrap().to_string();
    assert_eq!(fp_a.len(), 32);
    assert_eq!(id["allowed"], false);
    let o = run_exit(0, &format!("--gateway {g} devices"), &[]);
    assert!(
        stdout(&o).contains(&format!("dev identity: pending key {}", &fp_a[..12])),
        "{}",
        stdout(&o)
    );
    let o = deploy(g);
    assert_exit(&o, 4);
    assert!(stderr(&o).contains("DEVICE_PENDING"), "{}", stderr(&o));
    assert!(stderr(&o).contains("devices approve dev"), "{}", stderr(&o));
    // INFO announces the key the gateway verified
    let o = run_exit(0, &format!("--gateway {g} -d dev --json info"), &[]);
    let doc = json_doc(&o).to_string();
    assert!(doc.contains(&format!("identity=ed25519:{fp_a}")), "{doc}");

    // Approved: served, and the pin is persisted privately.
    let o = run_exit(0, &format!("--gateway {g} devices approve dev"), &[]);
    assert!(
        stdout(&o).contains("dev identity: approved"),
        "{}",
        stdout(&o)
    );
    assert_exit(&deploy(g), 0);
    let o = add(g);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("ret=226"), "{}", stdout(&o));
    let pins = state.join("identities.json");
    let text = std::fs::read_to_string(&pins).unwrap();
    assert!(text.contains(&fp_a), "{text}");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&pins).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Another board behind the same endpoint: mismatch, refused.
    drop(board_a);
    let board_b = sim(&endpoint, Some(&dir.path().join("b.identity")));
    let id = wait_state(g, "mismatch");
    let fp_b = id["fingerprint"].as_str().unwrap().to_string();
    assert_ne!(fp_a, fp_b);
    assert_eq!(id["pinned"], fp_a.as_str());
    let o = add(g);
    assert_exit(&o, 4);
    assert!(stderr(&o).contains("IDENTITY_MISMATCH"), "{}", stderr(&o));
    // approving it needs its fingerprint, and the right one
    let o = run(&["--gateway", g, "devices", "approve", "dev"]);
    assert_exit(&o, 4);
    assert!(
        stderr(&o).contains(&format!("--fingerprint {fp_b}")),
        "{}",
        stderr(&o)
    );
    let o = run(&[
        "--gateway",
        g,
        "devices",
        "approve",
        "dev",
        "--fingerprint",
        &fp_a[..12],
    ]);
    assert_exit(&o, 4);
    run_exit(
        0,
        &format!(
            "--gateway {g} devices approve dev --fingerprint {}",
            &fp_b[..12]
        ),
        &[],
    );
    assert_exit(&deploy(g), 0);

    // A restarted gateway keeps the pin: board B is approved at once.
    drop(gw);
    let gw = gateway(&endpoint, &state, &[]);
    wait_state(&gw.addr, "approved");
    assert_exit(&add(&gw.addr), 0);

    // forget: pending again
    let o = run_exit(0, &format!("--gateway {} devices forget dev", gw.addr), &[]);
    assert!(
        stdout(&o).contains("dev identity: pending"),
        "{}",
        stdout(&o)
    );
    assert_exit(&add(&gw.addr), 4);
    drop(board_b);
}

#[test]
fn tofu_trusts_the_first_key_and_anonymous_boards_follow_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let board = sim("127.0.0.1:0", Some(&dir.path().join("k.identity")));
    let gw = gateway(
        &board.addr,
        &dir.path().join("s1"),
        &["--enrollment", "tofu"],
    );
    let id = wait_state(&gw.addr, "approved");
    assert_eq!(id["pinned"], id["fingerprint"]);
    assert_exit(&deploy(&gw.addr), 0);
    drop(gw);
    drop(board);

    // A board without identity (as legacy firmware): served by default ...
    let anon = sim("127.0.0.1:0", None);
    let gw = gateway(&anon.addr, &dir.path().join("s2"), &[]);
    let id = wait_state(&gw.addr, "none");
    assert_eq!(id["allowed"], true);
    assert_exit(&deploy(&gw.addr), 0);
    drop(gw);
    // ... refused when the gateway requires identity
    let gw = gateway(&anon.addr, &dir.path().join("s3"), &["--require-identity"]);
    wait_state(&gw.addr, "none");
    let o = deploy(&gw.addr);
    assert_exit(&o, 4);
    assert!(stderr(&o).contains("requires one"), "{}", stderr(&o));
}

/// RFC 8032 TEST 1 key, and the IDENT_OK it gave for nonce 00..1f
/// (testdata/protocol/v2-ident-ok.txt).
const FP: &str = "0e02a50225b4baaa18a0470ed9bfc7dc";
const RECORDED: &str = "IDENT_OK key=d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a sig=3d43ebda65267c02d115956a912002ec47492326a2834638195de6af70df3eec32c8499c517b66677362aaa8789e669c1e013e31e42b1d6b26230dc67cfbf00d";

/// A fake device: answers exactly the lines in `script` (line prefix -> reply lines) in order,
/// and fails the test on anything else.
fn fake_device(
    script: Vec<(&'static str, Vec<String>)>,
) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut heard = Vec::new();
        for (want, replies) in script {
            let mut line = String::new();
            r.read_line(&mut line)
                .expect("the gateway sends its next command");
            let line = line.trim_end().to_string();
            assert!(
                line.starts_with(want),
                "fake device: expected {want}…, got {line:?}"
            );
            heard.push(line);
            for rep in replies {
                w.write_all(format!("{rep}\n").as_bytes()).unwrap();
            }
        }
        // Nothing else may come: a refused command must never reach the device.
        let mut rest = String::new();
        match r.read_line(&mut rest) {
            Ok(0) => {}
            Ok(_) => panic!("fake device: unexpected line {rest:?}"),
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "{e}"
            ),
        }
        heard
    });
    (addr, h)
}

#[test]
fn a_replayed_ident_answer_is_refused_and_legacy_firmware_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let info = format!(
        "INFO_OK proto=2 board=fake fw=x wamr=2.4.3 aot_arch=none slots=2 max_module=65536 \
         pool_total=65536 pool_free=65536 chunk_max=1024 line_max=255 stop=forced natives=\"\" \
         identity=ed25519:{FP}"
    );
    let (addr, fake) = fake_device(vec![
        ("INFO", vec![info]),
        ("IDENT nonce=", vec![RECORDED.to_string()]),
        (
            "STATUS",
            vec!["STATUS_OK modules=\"none\" low_stack=\"none\"".into()],
        ),
    ]);
    let gw = gateway(&addr, &dir.path().join("s"), &["--enrollment", "tofu"]);
    let id = wait_state(&gw.addr, "failed");
    assert!(id["reason"].as_str().unwrap().contains("replayed"), "{id}");
    assert!(
        id["pinned"].is_null(),
        "TOFU must not pin an unproved key: {id}"
    );
    let o = run(&[
        "--gateway",
        &gw.addr,
        "-d",
        "dev",
        "unload",
        "--module-id",
        "m",
    ]);
    assert_exit(&o, 4);
    assert!(stderr(&o).contains("IDENTITY_MISMATCH"), "{}", stderr(&o));
    let heard = fake
        .join()
        .expect("the fake device saw only what it expected");
    let nonce = heard[1].strip_prefix("IDENT nonce=").unwrap();
    assert_eq!(nonce.len(), 64);
    assert_ne!(
        nonce,
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    );
    drop(gw);

    // Legacy v1 firmware: no INFO, no identity; served (START reaches it).
    let (addr, fake) = fake_device(vec![
        ("INFO", vec!["ERROR code=UNKNOWN_COMMAND".into()]),
        ("STATUS", vec!["STATUS_OK modules=\"none\" low_stack=\"none\" wamr_total=1 wamr_free=1 wamr_used=0 wamr_highmark=0".into()]),
        ("START module_id=m", vec!["RESULT status=NO_MODULE".into()]),
    ]);
    let gw = gateway(&addr, &dir.path().join("s2"), &[]);
    let id = wait_state(&gw.addr, "none");
    assert!(id["reason"].as_str().unwrap().contains("v1"), "{id}");
    let o = run(&[
        "--gateway",
        &gw.addr,
        "-d",
        "dev",
        "start",
        "--module-id",
        "m",
        "--func",
        "f",
    ]);
    assert_exit(&o, 5);
    fake.join()
        .expect("the legacy fake saw only what it expected");
}
