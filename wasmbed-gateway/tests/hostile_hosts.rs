//! Hosts that do not play along, against the real gateway binary: one that never reads its
//! replies, a slow `logs --follow` reader, slowloris request lines, too many connections, and
//! token files others can read. Memory is read from /proc and bounded by the figure documented in
//! the gateway README (`HOSTILE_RSS_GROWTH_KIB`).

mod common;

use std::io::{ErrorKind, Write};
use std::net::TcpStream as StdTcpStream;
use std::time::{Duration, Instant};

use common::gwproc::GwProc;
use common::Client;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// README, "Limits": hostile hosts grow the gateway's resident memory by less than this.
const HOSTILE_RSS_GROWTH_KIB: u64 = 48 * 1024;

/// Samples the gateway's RSS every 100 ms while `f` runs (on a thread); returns f's result and
/// the peak.
fn with_peak_rss<T: Send>(gw: &GwProc, f: impl FnOnce() -> T + Send) -> (T, u64) {
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(gw.rss_kib());
                std::thread::sleep(Duration::from_millis(100));
            }
            peak.max(gw.rss_kib())
        });
        let r = f();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (r, sampler.join().unwrap())
    })
}

/// Devices whose list makes `devices` replies a few hundred bytes long (never reachable).
fn some_devices() -> String {
    (0..8)
        .map(|i| format!("[devices.board_{i}]\nendpoint = \"tcp:127.0.0.1:1\"\n"))
        .collect()
}

#[test]
fn a_host_that_never_reads_is_slowed_then_closed_and_memory_stays_bounded() {
    let gw = GwProc::start(
        &format!("[limits]\nwrite_stall_ms = 2000\n{}", some_devices()),
        &[],
    );
    std::thread::sleep(Duration::from_millis(300));
    let base = gw.rss_kib();
    let ((sent, blocked, closed_after), peak) = with_peak_rss(&gw, || {
        let mut s = StdTcpStream::connect(gw.addr).unwrap();
        s.set_write_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let req = b"{\"op\":\"devices\",\"id\":1}\n".repeat(100);
        let t0 = Instant::now();
        let (mut sent, mut blocked) = (0usize, 0u32);
        loop {
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "the gateway never closed a host that does not read"
            );
            match s.write(&req) {
                Ok(n) => sent += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    blocked += 1
                }
                Err(_) => return (sent, blocked, t0.elapsed()),
            }
        }
    });
    eprintln!(
        "non-reader: sent {sent} bytes, blocked {blocked} times, closed after {closed_after:?}; \
         RSS {base} KiB -> peak {peak} KiB"
    );
    assert!(blocked > 0, "the host was never slowed down");
    assert!(
        gw.wait_log("closing connection: host took no reply bytes", 10),
        "the reason is logged: {}",
        gw.log()
    );
    assert!(
        peak < base + HOSTILE_RSS_GROWTH_KIB,
        "RSS grew from {base} to {peak} KiB"
    );
    std::thread::sleep(Duration::from_millis(500));
    let after = gw.rss_kib();
    assert!(after < base + HOSTILE_RSS_GROWTH_KIB, "after: {after} KiB");
    // The gateway still answers.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = Client::connect(gw.addr).await;
        assert_eq!(
            c.call(json!({"op": "devices"})).await.ok()["devices"]
                .as_array()
                .unwrap()
                .len(),
            8
        );
    });
}

/// README, "Limits": upload bodies held at once take at most three quarters of
/// `limits.buffer_budget` (12 MiB of the default 16 MiB); this much more is allowed for the
/// rest (buffers, allocator slack).
const UPLOAD_RSS_SLACK_KIB: u64 = 8 * 1024;

/// Ten hosts each send a 4 MiB upload body at once (all but its last byte, then they wait): only
/// as many bodies as fit in the gateway-wide budget are taken in, the others are refused `BUSY`
/// naming `limits.buffer_budget` after `limits.body_wait_ms`, and the gateway's memory stays
/// within the budget's upload share. Once the held uploads are done, their bytes are given back.
#[test]
fn concurrent_large_uploads_stay_within_the_buffer_budget() {
    const HOSTS: usize = 10;
    const SIZE: usize = 4 * 1024 * 1024;
    let gw = GwProc::start(
        &format!("[limits]\nbody_wait_ms = 1000\n{}", some_devices()),
        &[],
    );
    std::thread::sleep(Duration::from_millis(300));
    let base = gw.rss_kib();
    let body = vec![0xabu8; SIZE];
    let header = |i: usize| {
        let req = json!({"op": "deploy", "id": i, "device": "board_0", "module_id": "m",
                         "size": SIZE, "crc32": format!("{:08x}", crc32fast::hash(&body))});
        format!("{req}\n").into_bytes()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ((refused, mut held), peak) = with_peak_rss(&gw, || {
        rt.block_on(async {
            let mut tasks = Vec::new();
            for i in 0..HOSTS {
                let mut s = TcpStream::connect(gw.addr).await.unwrap();
                let mut bytes = header(i);
                bytes.extend_from_slice(&body[..SIZE - 1]);
                tasks.push(tokio::spawn(async move {
                    s.write_all(&bytes).await.unwrap();
                    // A refused body is answered at once; a held one waits for its last byte.
                    let mut line = Vec::new();
                    let mut r = BufReader::new(&mut s);
                    let got = tokio::time::timeout(
                        Duration::from_secs(6),
                        r.read_until(b'\n', &mut line),
                    )
                    .await;
                    let answer = got
                        .is_ok()
                        .then(|| String::from_utf8_lossy(&line).into_owned());
                    (s, answer)
                }));
            }
            let mut refused = Vec::new();
            let mut held = Vec::new();
            for t in tasks {
                match t.await.unwrap() {
                    (_, Some(answer)) => refused.push(answer),
                    (s, None) => held.push(s),
                }
            }
            (refused, held)
        })
    });
    eprintln!(
        "{} bodies held, {} refused; RSS {base} KiB -> peak {peak} KiB",
        held.len(),
        refused.len()
    );
    assert!(!refused.is_empty(), "every body was taken in");
    for r in &refused {
        assert!(
            r.contains("BUSY") && r.contains("limits.buffer_budget"),
            "{r}"
        );
    }
    assert!(!held.is_empty(), "no body was taken in");
    assert!(held.len() * SIZE <= 12 * 1024 * 1024, "{} held", held.len());
    assert!(
        peak < base + 12 * 1024 + UPLOAD_RSS_SLACK_KIB,
        "RSS grew from {base} to {peak} KiB"
    );
    assert!(gw.wait_log("refusing a 4194304-byte upload body", 5));
    rt.block_on(async {
        // The held bodies complete; their deploys end (the device is not there) and give their
        // bytes back: a new body of the same size is taken in.
        for s in &mut held {
            s.write_all(&body[SIZE - 1..]).await.unwrap();
        }
        for s in held {
            let mut line = String::new();
            tokio::time::timeout(
                Duration::from_secs(30),
                BufReader::new(s).read_line(&mut line),
            )
            .await
            .expect("a held upload was never answered")
            .unwrap();
            assert!(!line.contains("BUSY"), "{line}");
        }
        let mut c = Client::connect(gw.addr).await;
        let a = c
            .call_body(
                json!({"op": "deploy", "device": "board_0", "module_id": "m", "size": SIZE,
                       "crc32": format!("{:08x}", crc32fast::hash(&body))}),
                &body,
                30,
            )
            .await;
        assert_ne!(a.err_code(), "BUSY", "{}", a.reply);
    });
}

/// A v2 device that, once asked INFO and STATUS, prints console lines as fast as it can.
async fn chatty_device() -> (u16, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let (r, mut w) = s.into_split();
        let mut lines = BufReader::new(r).lines();
        assert_eq!(lines.next_line().await.unwrap().unwrap(), "INFO");
        w.write_all(format!("{}\n", common::INFO_V2).as_bytes())
            .await
            .unwrap();
        assert_eq!(lines.next_line().await.unwrap().unwrap(), "STATUS");
        w.write_all(format!("{}\n", common::STATUS_V2_EMPTY).as_bytes())
            .await
            .unwrap();
        // Nothing more is asked in this test; anything else would be a failure.
        tokio::spawn(async move {
            if let Ok(Some(l)) = lines.next_line().await {
                panic!("unexpected command {l}");
            }
        });
        let mut n = 0u64;
        loop {
            let mut batch = String::new();
            for _ in 0..200 {
                n += 1;
                batch.push_str(&format!("console line {n} of a module that logs fast\n"));
            }
            if w.write_all(batch.as_bytes()).await.is_err() {
                return;
            }
            tokio::task::yield_now().await;
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_follower_gets_the_skipped_notice_and_memory_stays_bounded() {
    let (port, device) = chatty_device().await;
    let gw = GwProc::start(
        &format!("[devices.chatty]\nendpoint = \"tcp:127.0.0.1:{port}\"\n"),
        &[],
    );
    let base = gw.rss_kib();
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"{\"op\":\"logs\",\"id\":1,\"device\":\"chatty\",\"follow\":true}\n")
        .await
        .unwrap();
    // Not reading for a while, as a slow terminal would.
    let mut peak = 0;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(gw.rss_kib());
    }
    let mut r = BufReader::new(s).lines();
    let mut notice = None;
    let mut after_notice = Vec::new();
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end && after_notice.len() < 10 {
        let line = tokio::time::timeout(Duration::from_secs(10), r.next_line())
            .await
            .expect("follow events keep coming")
            .unwrap()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["event"] != "log" {
            continue;
        }
        if notice.is_some() {
            after_notice.push(v);
        } else if v["kind"] == "gateway" && v["line"].as_str().unwrap().contains("skipped") {
            notice = Some(v);
        }
        peak = peak.max(gw.rss_kib());
    }
    let notice = notice.expect("a lines-skipped notice");
    assert_eq!(notice["seq"], serde_json::Value::Null);
    eprintln!("slow follower: {notice}; RSS {base} KiB -> peak {peak} KiB");
    assert!(
        notice["line"]
            .as_str()
            .unwrap()
            .ends_with("log lines skipped (host too slow)"),
        "{notice}"
    );
    let seqs: Vec<u64> = after_notice
        .iter()
        .filter_map(|v| v["seq"].as_u64())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(
        peak < base + HOSTILE_RSS_GROWTH_KIB,
        "RSS grew from {base} to {peak} KiB"
    );
    drop(r);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = gw.rss_kib();
    assert!(after < base + HOSTILE_RSS_GROWTH_KIB, "after: {after} KiB");
    drop(gw);
    device.abort();
}

#[tokio::test]
async fn a_trickled_request_line_is_cut_off() {
    let gw = GwProc::start("[limits]\nline_timeout_ms = 1500\n", &[]);
    let t0 = Instant::now();
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let mut reply = Vec::new();
    let trickle = async {
        for b in b"{\"op\":\"devices\",\"id\":1}" {
            if s.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    };
    trickle.await;
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut reply)).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.contains("TIMEOUT") && reply.contains("line_timeout_ms"),
        "{reply}"
    );
    assert!(t0.elapsed() < Duration::from_secs(15));

    // A Wasmbed connection between requests: the next line, once started, has the same bound.
    let mut c = TcpStream::connect(gw.addr).await.unwrap();
    c.write_all(b"{\"op\":\"devices\",\"id\":1}\n{\"op\":")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut out))
        .await
        .expect("closed within 10 s")
        .unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(
        out.lines().count() == 2 && out.contains("line_timeout_ms"),
        "{out}"
    );
    // Its help (the Wasmbed dialect has one) is about the client's request, not a device.
    let last = out.lines().last().unwrap_or_default();
    assert!(
        last.contains("the client sent its request line too slowly")
            && !last.contains("check the device"),
        "{out}"
    );
}

/// A connection that never sends a byte is closed after `limits.first_request_timeout_ms`, with
/// the reason logged; one that sent its first request may then stay idle longer than that.
#[tokio::test]
async fn a_silent_connection_is_closed_after_the_first_request_deadline() {
    let gw = GwProc::start("[limits]\nfirst_request_timeout_ms = 1500\n", &[]);
    let t0 = Instant::now();
    let mut silent = TcpStream::connect(gw.addr).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), silent.read_to_end(&mut reply))
        .await
        .expect("the silent connection was not closed within 20 s")
        .unwrap();
    let waited = t0.elapsed();
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.contains("TIMEOUT") && reply.contains("limits.first_request_timeout_ms"),
        "{reply}"
    );
    assert!(
        waited >= Duration::from_millis(1400),
        "closed after {waited:?}"
    );
    assert!(
        gw.wait_log(
            "closing connection: no complete request within 1.5 s of connecting",
            5
        ),
        "{}",
        gw.log()
    );

    // A first request line started but not finished by the deadline is cut off the same way.
    let mut partial = TcpStream::connect(gw.addr).await.unwrap();
    partial.write_all(b"{\"op\":").await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), partial.read_to_end(&mut reply))
        .await
        .expect("the half-sent request was not cut off within 20 s")
        .unwrap();
    assert!(
        String::from_utf8_lossy(&reply).contains("TIMEOUT"),
        "{}",
        String::from_utf8_lossy(&reply)
    );

    // After its first request a connection is served past that deadline (idle_timeout_ms).
    let mut c = Client::connect(gw.addr).await;
    c.call(json!({"op": "devices"})).await.ok();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    c.call(json!({"op": "devices"})).await.ok();
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_busy() {
    let gw = GwProc::start("[limits]\nmax_connections = 3\n", &[]);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect(gw.addr).await;
        c.call(json!({"op": "devices"})).await.ok();
        held.push(c);
    }
    let mut extra = TcpStream::connect(gw.addr).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), extra.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.contains("BUSY") && out.contains("limits.max_connections"),
        "{out}"
    );
    drop(held.pop());
    // The freed place is served (the gateway notices the close at once).
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(b"{\"op\":\"devices\",\"id\":1}\n")
            .await
            .unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).await.unwrap();
        if line.contains("\"ok\":true") {
            break;
        }
        assert!(Instant::now() < end, "{line}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_token_file_others_can_read_is_refused_naming_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    for mode in [0o644, 0o660, 0o602] {
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmbed-gateway"))
            .args(["--listen", "127.0.0.1:0", "--token-file"])
            .arg(&token)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "mode {mode:o} accepted");
        assert!(
            err.contains(&format!("chmod 600 {}", token.display())),
            "{err}"
        );
    }
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let gw = GwProc::start(&format!("token_file = \"{}\"\n", token.display()), &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = Client::connect(gw.addr).await;
        let a = c
            .call(json!({"op": "devices", "token": "s3cret-tokeX"}))
            .await;
        assert_eq!(a.err_code(), "UNAUTHORIZED");
        let mut c = Client::connect(gw.addr).await;
        let a = c.call(json!({"op": "devices"})).await;
        assert_eq!(a.err_code(), "UNAUTHORIZED");
        let mut c = Client::connect(gw.addr).await;
        c.call(json!({"op": "devices", "token": "s3cret-token"}))
            .await
            .ok();
    });
}

/// A token file owned by someone else is refused even at mode 600: its owner can change it.
/// As root the file is given to `nobody`; as another user a root-owned file stands in (the owner
/// is checked before anything is read).
#[test]
fn a_token_file_owned_by_another_user_is_refused_naming_chown() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: geteuid has no preconditions.
    let token = if unsafe { libc::geteuid() } == 0 {
        let t = dir.path().join("token");
        std::fs::write(&t, "s3cret-token\n").unwrap();
        std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&t, Some(65534), Some(65534)).unwrap();
        t
    } else {
        std::path::PathBuf::from("/etc/passwd")
    };
    assert_ne!(
        std::fs::metadata(&token).unwrap().uid(),
        // SAFETY: as above.
        unsafe { libc::geteuid() }
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wasmbed-gateway"))
        .args(["--listen", "127.0.0.1:0", "--token-file"])
        .arg(&token)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A gateway that accepted the file would serve until stopped.
    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("a token file of another user was accepted: the gateway started");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("is owned by uid") && err.contains("chown "),
        "{err}"
    );
    assert!(err.contains(&format!("{}`", token.display())), "{err}");
}

#[test]
fn a_host_that_never_drains_its_replies_is_reset_not_held_open() {
    use std::io::Read;
    let gw = GwProc::start(
        &format!("[limits]\nwrite_stall_ms = 1500\n{}", some_devices()),
        &[],
    );
    // A receive buffer far smaller than the replies: they sit in the gateway's send buffer,
    // written as far as the gateway's writes can tell, but never taken.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(1024).unwrap();
    sock.connect(&gw.addr.into()).unwrap();
    let mut s: StdTcpStream = sock.into();
    s.write_all(&b"{\"op\":\"devices\",\"id\":1}\n".repeat(6))
        .unwrap();
    assert!(
        gw.wait_log("closing connection: host took none of its last", 20),
        "the gateway never gave up on a host that does not drain: {}",
        gw.log()
    );
    // Reset, not a polite close that would keep the unsent replies queued in the kernel.
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let end = s.read_to_end(&mut buf);
    assert!(
        matches!(&end, Err(e) if e.kind() == ErrorKind::ConnectionReset),
        "{end:?} after {} bytes",
        buf.len()
    );
}

/// An address of this machine that is not loopback (the one a default route would use).
fn non_loopback_address() -> Option<std::net::IpAddr> {
    let u = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    u.connect("192.0.2.1:9").ok()?;
    let ip = u.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn one_address_gets_at_most_its_share_of_connections() {
    use std::os::unix::fs::PermissionsExt;
    let Some(ip) = non_loopback_address() else {
        eprintln!("SKIPPED: this machine has no non-loopback address to connect from");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t0k\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let gw = GwProc::start(
        &format!(
            "token_file = \"{}\"\n[limits]\nmax_connections_per_peer = 2\n",
            token.display()
        ),
        &["--listen", "0.0.0.0:0"],
    );
    let there = std::net::SocketAddr::new(ip, gw.addr.port());
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = Client::connect(there).await;
        c.call(json!({"op": "devices", "token": "t0k"})).await.ok();
        held.push(c);
    }
    let mut extra = TcpStream::connect(there).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), extra.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.contains("BUSY") && out.contains("limits.max_connections_per_peer"),
        "{out}"
    );
    // Other addresses (loopback here) are still served.
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], gw.addr.port()));
    let mut c = Client::connect(local).await;
    c.call(json!({"op": "devices", "token": "t0k"})).await.ok();
    // A freed place is given again.
    drop(held.pop());
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = TcpStream::connect(there).await.unwrap();
        s.write_all(b"{\"op\":\"devices\",\"id\":1,\"token\":\"t0k\"}\n")
            .await
            .unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).await.unwrap();
        if line.contains("\"ok\":true") {
            break;
        }
        assert!(Instant::now() < end, "{line}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
