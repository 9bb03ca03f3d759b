//! Signed modules end to end (docs/SECURITY.md "Signed modules"): `wasmbed-host keys`, the real
//! gateway signing with its `[signing] key_file`, pre-signed uploads (`deploy --signature`), and
//! the simulated board (real C agent, real WAMR) that requires signatures by trusted keys.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::real::{module, sibling_bin, wait_online, Proc};
use common::*;

fn keys_generate(path: &Path) -> String {
    let o = run_exit(0, "--json keys generate", &[path.to_str().unwrap()]);
    let doc = json_doc(&o);
    let public = doc["public_key"].as_str().unwrap().to_string();
    assert_eq!(public.len(), 64, "{doc}");
    assert_eq!(doc["key_id"].as_str().unwrap().len(), 16, "{doc}");
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    public
}

/// The modules of `modules/` compiled to .wasm with real clang.
fn wasm(dir: &Path, name: &str) -> String {
    let out = dir.join("mods");
    if !out.join(format!("{name}.wasm")).exists() {
        let st = Command::new(format!(
            "{}/../modules/build.sh",
            env!("CARGO_MANIFEST_DIR")
        ))
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
        assert!(st.success());
    }
    out.join(format!("{name}.wasm"))
        .to_string_lossy()
        .into_owned()
}

fn gateway(dir: &Path, device_addr: &str, key: Option<&Path>) -> Proc {
    let cfg = dir.join("gateway.toml");
    let signing = key
        .map(|k| format!("[signing]\nkey_file = \"{}\"\n", k.display()))
        .unwrap_or_default();
    std::fs::write(&cfg, signing).unwrap();
    let gw = Proc::spawn(
        sibling_bin("wasmbed-gateway", "WASMBED_GATEWAY_BIN"),
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--device",
            &format!("board=tcp:{device_addr}"),
        ],
        &[],
    );
    wait_online(&gw.addr, "board");
    gw
}

#[test]
fn gateway_signs_and_host_presigned_uploads_verify_on_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let gw_key = dir.path().join("gateway.key");
    let rel_key = dir.path().join("release.key");
    let gw_pub = keys_generate(&gw_key);
    let rel_pub = keys_generate(&rel_key);
    // show prints the same public key; generate never overwrites
    let o = run_exit(0, "keys show", &[gw_key.to_str().unwrap()]);
    assert!(stdout(&o).contains(&gw_pub), "{}", stdout(&o));
    let o = run(&["keys", "generate", gw_key.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("exists"), "{}", stderr(&o));

    let board = Proc::spawn(
        sibling_bin("wasmbed-agent-sim", "WASMBED_AGENT_SIM"),
        &[
            "--listen",
            "127.0.0.1:0",
            "--trusted-key",
            &gw_pub,
            "--trusted-key",
            &rel_pub,
        ],
        &[],
    );

    // a gateway without a signing key: the device refuses what it uploads, and says why
    {
        let gw = gateway(dir.path(), &board.addr, None);
        let o = run(&argv(
            &format!(
                "--gateway {} -d board build-and-deploy --module-id m --source",
                gw.addr
            ),
            &[&module("math_ops.c")],
        ));
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains("BAD_SIGNATURE") && stderr(&o).contains("unsigned module"),
            "{}",
            stderr(&o)
        );
    }

    let gw = gateway(dir.path(), &board.addr, Some(&gw_key));
    let g = &gw.addr;
    // the gateway signs what it builds, with the version asked for
    run_exit(
        0,
        &format!(
            "--gateway {g} -d board build-and-deploy --module-id m --module-version 3 --source"
        ),
        &[&module("math_ops.c")],
    );
    let o = run_exit(
        0,
        &format!(
            "--gateway {g} -d board start --module-id m --func add --args 200,26 --wait-result"
        ),
        &[],
    );
    assert!(stdout(&o).contains("ret=226"), "{}", stdout(&o));
    // and refuses to go back to an older version
    let o = run(&argv(
        &format!(
            "--gateway {g} -d board deploy --module-id m --module-version 2 --force --replace --file"
        ),
        &[&wasm(dir.path(), "math_ops")],
    ));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("ROLLBACK"), "{}", stderr(&o));

    // a module signed elsewhere (release key), uploaded as-is
    let sig = dir.path().join("rel.sig");
    let math = wasm(dir.path(), "math_ops");
    run_exit(
        0,
        "keys sign --key",
        &[
            rel_key.to_str().unwrap(),
            "--module-id",
            "rel",
            "--module-version",
            "1",
            "-o",
            sig.to_str().unwrap(),
            &math,
        ],
    );
    run_exit(
        0,
        &format!("--gateway {g} -d board deploy --module-id rel --signature"),
        &[sig.to_str().unwrap(), "--file", &math],
    );
    // the same signature on other bytes, or for another module id, is refused
    let o = run(&argv(
        &format!("--gateway {g} -d board deploy --module-id rel --replace --signature"),
        &[sig.to_str().unwrap(), "--file", &wasm(dir.path(), "trap")],
    ));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("BAD_SIGNATURE"), "{}", stderr(&o));
    let o = run(&argv(
        &format!("--gateway {g} -d board deploy --module-id other --signature"),
        &[sig.to_str().unwrap(), "--file", &math],
    ));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("BAD_SIGNATURE"), "{}", stderr(&o));
    // a signature is for the exact bytes: no stripping on the way
    let o = run(&argv(
        &format!("--gateway {g} -d board deploy --module-id rel --strip --signature"),
        &[sig.to_str().unwrap(), "--file", &math],
    ));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("exact bytes"), "{}", stderr(&o));
    // nothing refused is loaded (the refused replace freed rel's slot, as any LOAD does);
    // the signed module goes back in
    let o = run_exit(0, &format!("--gateway {g} -d board status"), &[]);
    assert!(stdout(&o).contains("no modules loaded"), "{}", stdout(&o));
    run_exit(
        0,
        &format!("--gateway {g} -d board deploy --module-id rel --signature"),
        &[sig.to_str().unwrap(), "--file", &math],
    );
    let o = run_exit(0, &format!("--gateway {g} -d board status"), &[]);
    assert!(stdout(&o).contains("rel:"), "{}", stdout(&o));
}
