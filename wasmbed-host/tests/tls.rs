//! TLS 1.3 and mutual TLS between `wasmbed-host` and the real gateway binary
//! (`wasmbed-gateway --tls-cert … --tls-key … [--tls-client-ca …]`), certificates made here with
//! rcgen: accepted and refused cases through the CLI, each refusal with its reason; plaintext and
//! TLS mismatches answered at once; the dashboard over HTTPS.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::real::{sibling_bin, Proc};
use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

/// A CA and certificates it signed, written as PEM files in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
}

struct Ca(CertifiedIssuer<'static, KeyPair>);

impl Pki {
    fn new() -> Pki {
        Pki {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p.display().to_string()
    }

    /// A self-signed CA; its certificate in `NAME.crt`.
    fn ca(&self, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} CA"));
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        self.write(&format!("{name}.crt"), &ca.pem());
        Ca(ca)
    }

    /// A leaf signed by `ca` for `names`: `NAME.crt` and `NAME.key`.
    fn leaf(&self, ca: &Ca, name: &str, names: &[&str], client: bool) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &*ca.0).unwrap();
        (
            self.write(&format!("{name}.crt"), &cert.pem()),
            self.write(&format!("{name}.key"), &key.serialize_pem()),
        )
    }
}

/// The gateway (no devices) with TLS from `pki`'s `server` and `extra` flags; its address is
/// `tls://127.0.0.1:PORT`.
fn tls_gateway(pki: &Pki, extra: &[&str]) -> Proc {
    let (cert, key) = (
        pki.path("server.crt").display().to_string(),
        pki.path("server.key").display().to_string(),
    );
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
    ];
    args.extend_from_slice(extra);
    let gw = Proc::spawn(
        sibling_bin("wasmbed-gateway", "WASMBED_GATEWAY_BIN"),
        &args,
        &[],
    );
    assert!(gw.addr.starts_with("tls://"), "{}", gw.addr);
    gw
}

/// `wasmbed-host --json devices` against `gw` with `flags`; returns (exit code, JSON document).
fn devices(gw: &str, flags: &[&str]) -> (i32, serde_json::Value, std::time::Duration) {
    let mut args = vec!["--gateway", gw, "--json"];
    args.extend_from_slice(flags);
    args.push("devices");
    let t0 = Instant::now();
    let o = run(&args);
    let took = t0.elapsed();
    (o.status.code().unwrap_or(-1), json_doc(&o), took)
}

fn error_of(doc: &serde_json::Value) -> (String, String, String) {
    let e = &doc["error"];
    let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
    (s("code"), s("message"), s("help"))
}

#[test]
fn tls_is_accepted_and_a_wrong_ca_is_refused_with_its_reason() {
    let pki = Pki::new();
    let ca = pki.ca("server-ca");
    pki.leaf(&ca, "server", &["localhost", "127.0.0.1"], false);
    pki.ca("other-ca");
    let gw = tls_gateway(&pki, &[]);
    let ca_file = pki.path("server-ca.crt").display().to_string();

    let (code, doc, _) = devices(&gw.addr, &["--ca", &ca_file]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["ok"], true, "{doc}");
    assert!(doc["result"]["devices"].is_array(), "{doc}");

    // The CA also comes from the environment, as the gateway address does.
    let o = run_env(
        &["--json", "devices"],
        &[("WASMBED_GATEWAY", &gw.addr), ("WASMBED_CA", &ca_file)],
    );
    assert_exit(&o, 0);

    // The name "localhost" is in the certificate too.
    let port = gw.addr.rsplit_once(':').unwrap().1;
    let (code, _, _) = devices(&format!("tls://localhost:{port}"), &["--ca", &ca_file]);
    assert_eq!(code, 0);

    let other = pki.path("other-ca.crt").display().to_string();
    let (code, doc, _) = devices(&gw.addr, &["--ca", &other]);
    assert_eq!(code, 3, "{doc}");
    let (c, message, help) = error_of(&doc);
    assert_eq!(c, "GATEWAY_TLS", "{doc}");
    assert!(message.contains("certificate is not trusted"), "{message}");
    assert!(help.contains("--ca"), "{help}");

    // tls:// without a CA, and a CA without tls://, are usage errors naming the fix.
    let (code, doc, _) = devices(&gw.addr, &[]);
    assert_eq!(code, 2, "{doc}");
    assert!(error_of(&doc).1.contains("--ca FILE"), "{doc}");
    let plain = gw.addr.trim_start_matches("tls://").to_string();
    let (code, doc, _) = devices(&plain, &["--ca", &ca_file]);
    assert_eq!(code, 2, "{doc}");
    assert!(error_of(&doc).1.contains("tls://"), "{doc}");
}

#[test]
fn mutual_tls_needs_a_client_certificate_of_the_client_ca() {
    let pki = Pki::new();
    let server_ca = pki.ca("server-ca");
    pki.leaf(&server_ca, "server", &["127.0.0.1"], false);
    let client_ca = pki.ca("client-ca");
    let (good_cert, good_key) = pki.leaf(&client_ca, "alice", &["alice"], true);
    let rogue_ca = pki.ca("rogue-ca");
    let (bad_cert, bad_key) = pki.leaf(&rogue_ca, "mallory", &["mallory"], true);
    let client_ca_file = pki.path("client-ca.crt").display().to_string();
    let gw = tls_gateway(&pki, &["--tls-client-ca", &client_ca_file]);
    let ca = pki.path("server-ca.crt").display().to_string();

    let (code, doc, took) = devices(&gw.addr, &["--ca", &ca]);
    assert_eq!(code, 3, "{doc}");
    let (c, message, help) = error_of(&doc);
    assert_eq!(c, "GATEWAY_TLS", "{doc}");
    assert!(
        message.contains("requires a client certificate"),
        "{message}"
    );
    assert!(help.contains("--cert"), "{help}");
    assert!(
        took < Duration::from_secs(10),
        "refused at once, not by a timeout: {took:?}"
    );

    let (code, doc, _) = devices(
        &gw.addr,
        &["--ca", &ca, "--cert", &bad_cert, "--key", &bad_key],
    );
    assert_eq!(code, 3, "{doc}");
    let (c, message, _) = error_of(&doc);
    assert_eq!(c, "GATEWAY_TLS", "{doc}");
    assert!(
        message.contains("refused this client certificate"),
        "{message}"
    );

    let (code, doc, _) = devices(
        &gw.addr,
        &["--ca", &ca, "--cert", &good_cert, "--key", &good_key],
    );
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["ok"], true, "{doc}");
    // From the environment too.
    let o = run_env(
        &["--gateway", &gw.addr, "--json", "devices"],
        &[
            ("WASMBED_CA", &ca),
            ("WASMBED_CERT", &good_cert),
            ("WASMBED_KEY", &good_key),
        ],
    );
    assert_exit(&o, 0);
}

#[test]
fn plaintext_and_tls_mismatches_get_a_clear_answer_not_a_hang() {
    let pki = Pki::new();
    let ca = pki.ca("server-ca");
    pki.leaf(&ca, "server", &["127.0.0.1"], false);
    let ca_file = pki.path("server-ca.crt").display().to_string();
    let gw = tls_gateway(&pki, &[]);
    let plain = gw.addr.trim_start_matches("tls://").to_string();

    // A plaintext host (the CLI, or a legacy host.py) on the TLS listener.
    let (code, doc, took) = devices(&plain, &[]);
    assert_eq!(code, 3, "{doc}");
    let (c, message, help) = error_of(&doc);
    assert_eq!(c, "TLS_REQUIRED", "{doc}");
    assert!(message.contains("TLS connections only"), "{message}");
    assert!(help.contains("tls://") && help.contains("--ca"), "{help}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let mut s = TcpStream::connect(&plain).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"{\"device\": \"sim\", \"cmd\": \"status\"}\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(
        out.contains("\"ok\": false") && out.contains("TLS_REQUIRED"),
        "legacy shape: {out}"
    );

    // A TLS host on a plaintext listener.
    let plain_gw = Proc::spawn(
        sibling_bin("wasmbed-gateway", "WASMBED_GATEWAY_BIN"),
        &["--listen", "127.0.0.1:0"],
        &[],
    );
    let (code, doc, took) = devices(&format!("tls://{}", plain_gw.addr), &["--ca", &ca_file]);
    assert_eq!(code, 3, "{doc}");
    let (c, message, help) = error_of(&doc);
    assert_eq!(c, "GATEWAY_TLS", "{doc}");
    assert!(message.contains("did not answer in TLS"), "{message}");
    assert!(help.contains("without tls://"), "{help}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    // The plaintext listener still serves plaintext (legacy dialect included).
    let (code, doc, _) = devices(&plain_gw.addr, &[]);
    assert_eq!(code, 0, "{doc}");
}

#[test]
fn plaintext_loopback_serves_legacy_hosts_beside_tls() {
    let pki = Pki::new();
    let ca = pki.ca("server-ca");
    pki.leaf(&ca, "server", &["127.0.0.1"], false);
    let config = pki.write(
        "gw.toml",
        &format!(
            "[tls]\ncert = {:?}\nkey = {:?}\nplaintext_loopback = true\n",
            pki.path("server.crt"),
            pki.path("server.key")
        ),
    );
    let gw = Proc::spawn(
        sibling_bin("wasmbed-gateway", "WASMBED_GATEWAY_BIN"),
        &["--listen", "127.0.0.1:0", "--config", &config],
        &[],
    );
    let ca_file = pki.path("server-ca.crt").display().to_string();
    assert_eq!(devices(&gw.addr, &["--ca", &ca_file]).0, 0);
    let plain = gw.addr.trim_start_matches("tls://");
    let mut s = TcpStream::connect(plain).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"{\"device\": \"nope\", \"cmd\": \"status\"}\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(
        out.contains("\"ok\": false") && out.contains("nope"),
        "a legacy reply about the device: {out}"
    );
}

#[test]
fn the_gateway_refuses_a_tls_key_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let pki = Pki::new();
    let ca = pki.ca("server-ca");
    let (cert, key) = pki.leaf(&ca, "server", &["127.0.0.1"], false);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = std::process::Command::new(sibling_bin("wasmbed-gateway", "WASMBED_GATEWAY_BIN"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains(&format!("chmod 600 {key}")), "{err}");
    // Off loopback, server-only TLS is no authentication: a token or a client CA is needed.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = std::process::Command::new(sibling_bin("wasmbed-gateway", "WASMBED_GATEWAY_BIN"))
        .args([
            "--listen",
            "0.0.0.0:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("tls.client_ca") && err.contains("token_file"),
        "{err}"
    );
}

/// One HTTPS GET of `path` with rustls; returns the status line, or the TLS error.
fn https_get(addr: &str, ca: &Path, path: &str) -> Result<String, String> {
    let config = wasmbed_host::tls::client_config(ca, None).map_err(|e| e.to_string())?;
    let name = wasmbed_host::tls::server_name(addr).map_err(|e| e.to_string())?;
    let mut conn =
        rustls::ClientConnection::new(Arc::clone(&config), name).map_err(|e| e.to_string())?;
    let mut sock = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    text.lines()
        .next()
        .map(str::to_string)
        .ok_or_else(|| "no answer".to_string())
}

#[test]
fn the_dashboard_is_served_over_https_with_the_same_certificate() {
    let pki = Pki::new();
    let ca = pki.ca("server-ca");
    pki.leaf(&ca, "server", &["127.0.0.1"], false);
    pki.ca("other-ca");
    let gw = tls_gateway(&pki, &["--http", "127.0.0.1:0"]);
    let http = gw.dashboard().expect("dashboard address printed");
    assert!(http.starts_with("https://"), "{http}");
    let addr = http.trim_start_matches("https://").trim_end_matches('/');
    let line = https_get(addr, &pki.path("server-ca.crt"), "/api/devices").unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    let e = https_get(addr, &pki.path("other-ca.crt"), "/api/devices").unwrap_err();
    assert!(
        e.contains("certificate") || e.contains("UnknownIssuer"),
        "{e}"
    );
    // Plain HTTP to it gets no page.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(b"GET /api/devices HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(!String::from_utf8_lossy(&out).contains("200 OK"));
}
