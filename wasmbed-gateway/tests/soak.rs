//! Soak: the real gateway binary with the real simulated board, one host that never reads its
//! replies, one slowloris host, and four normal hosts asking `devices`, `info` and `status` in a
//! loop. The normal hosts' answers must stay correct and the gateway's resident memory flat.
//!
//! Short by default (`SOAK_DEFAULT_SECS`); `WASMBED_SOAK_SECS=600` runs the 10-minute version.

mod common;

use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::gwproc::GwProc;
use common::Client;
use serde_json::json;

const SOAK_DEFAULT_SECS: u64 = 20;
/// README, "Limits": the soak's RSS may end at most this much above where it was after warm-up.
const SOAK_RSS_DRIFT_KIB: u64 = 16 * 1024;

fn soak_secs() -> u64 {
    std::env::var("WASMBED_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SOAK_DEFAULT_SECS)
}

/// Reconnects and sends requests without ever reading, until `stop`.
fn non_reader(addr: SocketAddr, stop: Arc<AtomicBool>, closes: Arc<AtomicU64>) {
    let req = b"{\"op\":\"devices\",\"id\":1}\n".repeat(50);
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = StdTcpStream::connect(addr) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        s.set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        while !stop.load(Ordering::Relaxed) {
            match s.write(&req) {
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => {
                    closes.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
    }
}

/// Opens connections that trickle a request a byte every 300 ms, until `stop`.
fn slowloris(addr: SocketAddr, stop: Arc<AtomicBool>, cut: Arc<AtomicU64>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = StdTcpStream::connect(addr) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        for b in b"{\"op\":\"devices\",\"id\":1}".iter().cycle() {
            if stop.load(Ordering::Relaxed) || s.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        cut.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn normal_hosts_stay_served_and_memory_flat_beside_hostile_ones() {
    let secs = soak_secs();
    let gw = GwProc::start_env(
        "sim = true\n[limits]\nwrite_stall_ms = 2000\nline_timeout_ms = 2000\n",
        &[],
        &[("WASMBED_AGENT_SIM", &common::sim_bin())],
    );
    let addr = gw.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let closes = Arc::new(AtomicU64::new(0));
    let cut = Arc::new(AtomicU64::new(0));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // The board is up before the clock starts.
        let mut c = Client::connect(addr).await;
        let end = Instant::now() + Duration::from_secs(20);
        while c.call(json!({"op": "devices"})).await.ok()["devices"][0]["online"] != true {
            assert!(Instant::now() < end, "sim never came online");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let hostile = [
        {
            let (s, c) = (stop.clone(), closes.clone());
            std::thread::spawn(move || non_reader(addr, s, c))
        },
        {
            let (s, c) = (stop.clone(), cut.clone());
            std::thread::spawn(move || slowloris(addr, s, c))
        },
    ];
    let answers = Arc::new(AtomicU64::new(0));
    let normal: Vec<_> = (0..4)
        .map(|i| {
            let (stop, answers) = (stop.clone(), answers.clone());
            rt.spawn(async move {
                let mut c = Client::connect(addr).await;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let op = ["devices", "info", "status"][(n as usize + i) % 3];
                    let a = c.call(json!({"op": op, "device": "sim"})).await;
                    let r = a.ok();
                    match op {
                        "devices" => assert_eq!(r["devices"][0]["name"], "sim", "{r}"),
                        "info" => assert_eq!(r["proto"], 2, "{r}"),
                        _ => assert!(r["line"].as_str().unwrap().starts_with("STATUS_OK"), "{r}"),
                    }
                    n += 1;
                    answers.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                n
            })
        })
        .collect();
    // Warm-up, then RSS samples.
    std::thread::sleep(Duration::from_secs(secs.min(60) / 4));
    let start_rss = gw.rss_kib();
    let t0 = Instant::now();
    let mut peak = start_rss;
    let mut last_report = Instant::now();
    while t0.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(250));
        peak = peak.max(gw.rss_kib());
        if last_report.elapsed() > Duration::from_secs(60) {
            eprintln!(
                "soak {:?}: rss {} KiB, answers {}, non-reader closed {}, slowloris cut {}",
                t0.elapsed(),
                gw.rss_kib(),
                answers.load(Ordering::Relaxed),
                closes.load(Ordering::Relaxed),
                cut.load(Ordering::Relaxed)
            );
            last_report = Instant::now();
        }
    }
    let end_rss = gw.rss_kib();
    stop.store(true, Ordering::Relaxed);
    let counts: Vec<u64> = rt.block_on(async {
        let mut v = Vec::new();
        for h in normal {
            v.push(h.await.expect("a normal host failed"));
        }
        v
    });
    for h in hostile {
        h.join().unwrap();
    }
    eprintln!(
        "soak {secs} s: answers per normal host {counts:?}; non-reader closed {} times, \
         slowloris cut {} times; RSS {start_rss} KiB after warm-up, peak {peak}, end {end_rss}",
        closes.load(Ordering::Relaxed),
        cut.load(Ordering::Relaxed)
    );
    assert!(counts.iter().all(|n| *n > 0), "{counts:?}");
    assert!(
        closes.load(Ordering::Relaxed) > 0,
        "the non-reader was never closed"
    );
    assert!(
        cut.load(Ordering::Relaxed) > 0,
        "the slowloris host was never cut off"
    );
    assert!(
        end_rss < start_rss + SOAK_RSS_DRIFT_KIB && peak < start_rss + 2 * SOAK_RSS_DRIFT_KIB,
        "RSS not flat: {start_rss} -> peak {peak}, end {end_rss} KiB"
    );
}
