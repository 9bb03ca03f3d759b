//! A HELLO during the handshake starts it over (docs/PROTOCOL.md "Handshake restart"): an STM32
//! image switches its receiver on as it says HELLO, so a gateway that connects at boot sees its
//! INFO lost or cut. The identity must be right the first time, not after the next `info`. The
//! fake device speaks over real TCP, proves a real Ed25519 key, and fails on any byte it did not
//! expect.

mod common;

use std::time::Duration;

use common::{Conn, ScriptedTcp};
use ed25519_dalek::{Signer, SigningKey};
use tokio::net::TcpStream;
use wasmbed_agent_proto::identity::{self, challenge_message, decode_hex, Nonce};
use wasmbed_api::IdentityState;
use wasmbed_gateway::config::Config;
use wasmbed_gateway::device::DeviceHandle;
use wasmbed_gateway::identity::Enrollment;

/// RFC 8032 TEST 1's secret key: the board's identity seed.
const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const FP: &str = "0e02a50225b4baaa18a0470ed9bfc7dc";
const HELLO: &str =
    "HELLO device_id=nucleo-f446re rtos=baremetal runtime=WAMR fw_version=0.2.0 proto=2";
const STATUS: &str = "STATUS_OK modules=\"none\" low_stack=\"none\"";

fn key() -> SigningKey {
    SigningKey::from_bytes(&decode_hex::<32>(SEED).unwrap())
}

fn info_ok() -> String {
    format!(
        "INFO_OK proto=2 board=nucleo-f446re fw=0.2.0 wamr=2.4.3 aot_arch=thumbv7em \
         aot_cpu=cortex-m4 aot_abi=eabihf slots=1 max_module=65536 pool_total=96256 \
         pool_free=96256 chunk_max=1024 line_max=255 stop=forced natives=\"log:(ii)\" \
         identity=ed25519:{FP}"
    )
}

/// A gateway (trust on first use, so a proved key is `approved` at once) with one device.
async fn gateway(dev: &ScriptedTcp) -> (tempfile::TempDir, wasmbed_gateway::run::Running) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        state_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    cfg.identity.enrollment = Enrollment::Tofu;
    cfg.apply_device_flag(&dev.flag("board")).unwrap();
    (dir, common::gateway_cfg(cfg).await)
}

/// Reads the gateway's IDENT and answers it as the board holding [`SEED`].
async fn prove(c: &mut Conn<TcpStream>) {
    let line = c.expect("IDENT nonce=").await;
    let nonce = decode_hex::<32>(line.strip_prefix("IDENT nonce=").unwrap()).unwrap();
    let k = key();
    let sig = k.sign(&challenge_message(&Nonce(nonce)));
    c.say(&format!(
        "IDENT_OK key={} sig={}",
        identity::hex(k.verifying_key().as_bytes()),
        identity::hex(&sig.to_bytes())
    ))
    .await;
}

/// Polls (5 s) until the device's identity is `state`.
async fn wait_identity(dev: &DeviceHandle, state: IdentityState) -> wasmbed_api::DeviceIdentity {
    for _ in 0..250 {
        let view = dev.identity_view();
        if view.state == state {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("identity never {state:?}: {:?}", dev.identity_view());
}

fn gateway_log(dev: &DeviceHandle) -> Vec<String> {
    dev.log.since(0).0.into_iter().map(|e| e.line).collect()
}

#[tokio::test]
async fn a_hello_and_a_cut_info_answer_restart_the_handshake_and_the_identity_is_right() {
    assert_eq!(identity::fingerprint(key().verifying_key().as_bytes()), FP);
    let dev = ScriptedTcp::bind().await;
    let (_dir, gw) = gateway(&dev).await;
    let board = &gw.devices[0];
    let mut c = dev.accept().await;

    // The gateway's first INFO reaches a board whose receiver is still off: it only says HELLO.
    c.expect("INFO").await;
    c.say(HELLO).await;
    // Asked again: the board answers with a cut line (unparseable), then reboots: its HELLO
    // comes right after the cut, on the same line.
    assert_eq!(c.line().await, "INFO", "a HELLO restarts the handshake");
    c.send(format!("INFO_OK pro{HELLO}\n").as_bytes()).await;
    // Third time: it had got the end of a command ("FO") as its receiver came on, and answers
    // that first. Not a v1 answer: its HELLO said proto=2.
    assert_eq!(
        c.line().await,
        "INFO",
        "a HELLO after a cut line restarts it"
    );
    c.say("ERROR code=UNKNOWN_COMMAND").await;
    c.say(&info_ok()).await;
    prove(&mut c).await;
    c.expect("STATUS").await;
    c.say(STATUS).await;

    let id = wait_identity(board, IdentityState::Approved).await;
    assert_eq!(id.fingerprint.as_deref(), Some(FP), "{id:?}");
    assert!(id.allowed, "{id:?}");
    let s = board.snapshot();
    assert_eq!(s.proto, Some(2), "not taken for v1 firmware");
    assert!(s.online, "{:?}", s.offline_reason);
    let log = gateway_log(board);
    for n in 1..=2 {
        assert!(
            log.iter()
                .any(|l| l.contains(&format!("asking INFO again (restart {n} of 3)"))),
            "{log:#?}"
        );
    }
    assert!(
        log.iter().any(|l| l == "INFO_OK pro"),
        "the cut start is logged: {log:#?}"
    );
    c.quiet_for(300).await;
    drop(c);
    drop(gw);
}

#[tokio::test]
async fn a_board_that_answers_right_after_its_hello_is_asked_once() {
    // The simulated board says HELLO on every connection and then answers the INFO it got.
    let dev = ScriptedTcp::bind().await;
    let (_dir, gw) = gateway(&dev).await;
    let board = &gw.devices[0];
    let mut c = dev.accept().await;
    c.expect("INFO").await;
    c.say(HELLO).await;
    c.say(&info_ok()).await;
    prove(&mut c).await;
    c.expect("STATUS").await;
    c.say(STATUS).await;
    wait_identity(board, IdentityState::Approved).await;
    c.quiet_for(500).await;
    assert!(
        !gateway_log(board)
            .iter()
            .any(|l| l.contains("asking INFO again")),
        "{:#?}",
        gateway_log(board)
    );
    drop(c);
    drop(gw);
}

#[tokio::test]
async fn a_reboot_during_the_identity_challenge_is_asked_again_not_recorded_as_failed() {
    let dev = ScriptedTcp::bind().await;
    let (_dir, gw) = gateway(&dev).await;
    let board = &gw.devices[0];
    let mut c = dev.accept().await;

    c.expect("INFO").await;
    c.say(&info_ok()).await;
    // The board resets before it answers the challenge.
    let first = c.expect("IDENT nonce=").await;
    c.say(HELLO).await;
    c.expect("INFO").await;
    c.say(&info_ok()).await;
    // a fresh nonce, answered by the rebooted board
    let line = c.expect("IDENT nonce=").await;
    assert_ne!(line, first, "every challenge has its own nonce");
    let nonce = decode_hex::<32>(line.strip_prefix("IDENT nonce=").unwrap()).unwrap();
    let sig = key().sign(&challenge_message(&Nonce(nonce)));
    c.say(&format!(
        "IDENT_OK key={} sig={}",
        identity::hex(key().verifying_key().as_bytes()),
        identity::hex(&sig.to_bytes())
    ))
    .await;
    c.expect("STATUS").await;
    c.say(STATUS).await;
    let id = wait_identity(board, IdentityState::Approved).await;
    assert_eq!(id.fingerprint.as_deref(), Some(FP));
    c.quiet_for(300).await;
    drop(c);
    drop(gw);
}

#[tokio::test]
async fn a_board_that_keeps_rebooting_is_given_up_on_with_what_to_do_then_served_after_its_next_hello(
) {
    let dev = ScriptedTcp::bind().await;
    let (_dir, gw) = gateway(&dev).await;
    let board = &gw.devices[0];
    let mut c = dev.accept().await;

    // Every INFO meets a HELLO: the first ask and 3 restarts, then the gateway stops asking.
    for _ in 0..4 {
        c.expect("INFO").await;
        c.say(HELLO).await;
    }
    let mut reason = String::new();
    for _ in 0..250 {
        reason = board.snapshot().offline_reason.unwrap_or_default();
        if reason.contains("during its handshake") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        reason.contains("said HELLO 4 times during its handshake")
            && reason.contains("wasmbed-host info"),
        "{reason}"
    );
    assert!(!board.snapshot().online);
    assert_eq!(board.identity_view().state, IdentityState::Unknown);
    c.quiet_for(300).await;

    // It settles and says HELLO once more: a new handshake, and it is served.
    c.say(HELLO).await;
    c.expect("INFO").await;
    c.say(&info_ok()).await;
    prove(&mut c).await;
    c.expect("STATUS").await;
    c.say(STATUS).await;
    wait_identity(board, IdentityState::Approved).await;
    c.quiet_for(300).await;
    drop(c);
    drop(gw);
}

#[tokio::test]
async fn info_on_a_board_that_keeps_rebooting_fails_with_the_restarts_not_the_last_boots_answer() {
    let dev = ScriptedTcp::bind().await;
    let (_dir, gw) = gateway(&dev).await;
    let board = gw.devices[0].clone();
    let mut c = dev.accept().await;

    // Served once: what it said then is recorded.
    c.expect("INFO").await;
    c.say(&info_ok()).await;
    prove(&mut c).await;
    c.expect("STATUS").await;
    c.say(STATUS).await;
    wait_identity(&board, IdentityState::Approved).await;
    c.quiet_for(300).await;

    // It starts rebooting over and over: the handshake gives up.
    c.say(HELLO).await;
    for _ in 0..4 {
        c.expect("INFO").await;
        c.say(HELLO).await;
    }
    c.quiet_for(1000).await;

    // `info` asks again, and it is still rebooting: the answer is the restarts, not the INFO
    // of the boot before them.
    let asked = tokio::spawn(async move { board.info().await });
    for _ in 0..4 {
        c.expect("INFO").await;
        c.say(HELLO).await;
    }
    let out = tokio::time::timeout(Duration::from_secs(10), asked)
        .await
        .expect("info answered")
        .unwrap();
    let err = out
        .result
        .expect_err("a board that keeps rebooting has no INFO");
    assert!(
        err.to_string()
            .contains("said HELLO 4 times during its handshake"),
        "{err}"
    );
    c.quiet_for(300).await;
    drop(c);
    drop(gw);
}

#[tokio::test]
async fn a_hello_in_the_same_read_as_the_handshakes_last_answer_starts_a_new_handshake() {
    let dev = ScriptedTcp::bind().await;
    let (_dir, gw) = gateway(&dev).await;
    let board = gw.devices[0].clone();
    let mut c = dev.accept().await;

    c.expect("INFO").await;
    c.say(&info_ok()).await;
    prove(&mut c).await;
    c.expect("STATUS").await;
    // It rebooted right after its answer: both lines in one write, then it waits for commands.
    c.say(&format!("{STATUS}\n{HELLO}")).await;
    c.expect("INFO").await;
    c.say(&info_ok()).await;
    prove(&mut c).await;
    c.expect("STATUS").await;
    c.say(STATUS).await;
    wait_identity(&board, IdentityState::Approved).await;
    c.quiet_for(300).await;
    drop(c);
    drop(gw);
}
