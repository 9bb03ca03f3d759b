//! The simulated board's identity key: created 0600 on first start, the same key after a
//! restart, another file is another board, INFO announces it, IDENT proves it (verified with
//! the gateway's own rules, `wasmbed_agent_proto::identity`).

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use common::Sim;
use wasmbed_agent_proto::identity::{self, Announced, Nonce};
use wasmbed_agent_proto::{parse_agent_line, AgentLine};

/// INFO's announcement and a verified IDENT answer for `nonce`; returns the fingerprint.
fn prove(sim: &Sim, nonce: Nonce) -> String {
    let mut l = sim.hello();
    let info = match parse_agent_line(&l.ask("INFO", "INFO_OK")) {
        AgentLine::InfoOk(i) => i,
        other => panic!("INFO answered {other:?}"),
    };
    let Announced::Key(fp) = identity::announced(&info) else {
        panic!("INFO announces no key: {:?}", info.identity)
    };
    let ok = match parse_agent_line(&l.ask(&format!("IDENT nonce={nonce}"), "IDENT_")) {
        AgentLine::IdentOk(ok) => ok,
        other => panic!("IDENT answered {other:?}"),
    };
    let v = identity::verify(&fp, &nonce, &ok).expect("the board proves its key");
    assert_eq!(v.fingerprint, fp);
    fp
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn identity_file_is_created_private_and_kept_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("board.identity");
    let path = file.to_str().unwrap();
    let first = prove(&Sim::tcp(&["--identity-file", path]), Nonce([1; 32]));
    assert_eq!(mode(&file), 0o600);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.trim_end().len(), 64, "{text:?}");
    // restarted: same key, a fresh nonce still verifies
    let again = prove(&Sim::tcp(&["--identity-file", path]), Nonce([2; 32]));
    assert_eq!(first, again);
    // another file is another board
    let other = dir.path().join("other.identity");
    let swapped = prove(
        &Sim::tcp(&["--identity-file", other.to_str().unwrap()]),
        Nonce([3; 32]),
    );
    assert_ne!(first, swapped);
}

#[test]
fn state_dir_keeps_one_key_per_board_name() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let s = state.to_str().unwrap();
    let a = prove(&Sim::tcp(&["--state-dir", s]), Nonce([4; 32]));
    assert_eq!(mode(&state), 0o700);
    assert!(state.join("sim.identity").is_file());
    let b = prove(
        &Sim::tcp(&["--state-dir", s, "--board", "b2"]),
        Nonce([5; 32]),
    );
    assert_ne!(a, b);
    assert_eq!(a, prove(&Sim::tcp(&["--state-dir", s]), Nonce([6; 32])));
}

#[test]
fn no_identity_without_a_file_and_bad_files_are_refused() {
    let sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    let info = l.ask("INFO", "INFO_OK");
    assert!(info.ends_with(" identity=none"), "{info}");
    l.answers(
        &format!("IDENT nonce={}", Nonce([0; 32])),
        "IDENT_ERR code=NO_IDENTITY msg=\"no identity key provisioned\"",
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shared.identity");
    std::fs::write(&file, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmbed-agent-sim"))
        .args(["--listen", "127.0.0.1:0", "--identity-file"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 600"), "{err}");

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&file, "not hex\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmbed-agent-sim"))
        .args(["--listen", "127.0.0.1:0", "--identity-file"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("64 hex digits"));
}

#[test]
fn ident_refuses_a_bad_nonce() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("k");
    let sim = Sim::tcp(&["--identity-file", f.to_str().unwrap()]);
    let mut l = sim.hello();
    let bad = "IDENT_ERR code=BAD_PARAMS msg=\"nonce must be 64 hex digits\"";
    l.answers("IDENT", bad);
    l.answers("IDENT nonce=00", bad);
    l.answers(&format!("IDENT nonce={}", "zz".repeat(32)), bad);
}
