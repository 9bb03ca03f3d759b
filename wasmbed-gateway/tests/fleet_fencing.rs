//! Fencing: two gateway processes configured with the same TCP board, both linked to it
//! through a bridge that takes several links at once (like ser2net with `max-connections`),
//! against a real nats-server and the real simulated board. Requests hammer both gateways and
//! the fleet while the claim is moved (an operator deleting it, the owner frozen past the TTL
//! with SIGSTOP). Checked at the board itself: the commands it receives never interleave
//! between the two links more often than the claim changed hands; and through the fleet: every
//! reply carries a fencing token that never goes back and names the claim's holder.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::gwproc::GwProc;
use common::*;
use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use wasmbed_gateway::fleet::harness::NatsServer;
use wasmbed_gateway::fleet::{Claim, FleetClient, BUCKET_CLAIMS};
use wasmbed_gateway::sim::SimLink;

const TTL_MS: u64 = 6000;

/// Lines the board received: (when, link index, line).
type Heard = Arc<Mutex<Vec<(Instant, usize, String)>>>;

/// A bridge to `upstream` that accepts any number of links: every link's bytes go to the board
/// (each line logged with the link's index), the board's bytes go to every link.
async fn multi_link_bridge(upstream: std::net::SocketAddr) -> (std::net::SocketAddr, Heard) {
    let board = TcpStream::connect(upstream).await.expect("board reachable");
    let (board_r, mut board_w) = board.into_split();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heard: Heard = Arc::default();
    let (to_board, mut to_board_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(256);
    let (from_board, _) = tokio::sync::broadcast::channel::<Vec<u8>>(1024);
    tokio::spawn(async move {
        while let Some(b) = to_board_rx.recv().await {
            if board_w.write_all(&b).await.is_err() {
                return;
            }
        }
    });
    let fb = from_board.clone();
    tokio::spawn(async move {
        let mut r = BufReader::new(board_r);
        let mut line = Vec::new();
        while r.read_until(b'\n', &mut line).await.unwrap_or(0) > 0 {
            let _ = fb.send(std::mem::take(&mut line));
        }
    });
    let h = heard.clone();
    tokio::spawn(async move {
        let mut idx = 0;
        while let Ok((s, _)) = listener.accept().await {
            let (r, mut w) = s.into_split();
            let mut rx = from_board.subscribe();
            tokio::spawn(async move {
                loop {
                    match rx.recv().await {
                        Ok(b) => {
                            if w.write_all(&b).await.is_err() {
                                return;
                            }
                        }
                        // A frozen gateway misses output, like a UART nobody reads.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return,
                    }
                }
            });
            let (tb, h, me) = (to_board.clone(), h.clone(), idx);
            idx += 1;
            tokio::spawn(async move {
                let mut r = BufReader::new(r);
                let mut line = Vec::new();
                while r.read_until(b'\n', &mut line).await.unwrap_or(0) > 0 {
                    h.lock().unwrap().push((
                        Instant::now(),
                        me,
                        String::from_utf8_lossy(&line).trim().to_string(),
                    ));
                    if tb.send(std::mem::take(&mut line)).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, heard)
}

fn gateway(url: &str, id: &str, bridge: std::net::SocketAddr) -> GwProc {
    GwProc::start(
        "",
        &[
            "--fleet",
            url,
            "--gateway-id",
            id,
            "--fleet-claim-ttl-ms",
            &TTL_MS.to_string(),
            "--device",
            &format!("shared=tcp:{bridge}"),
        ],
    )
}

fn signal(p: &GwProc, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &p.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

async fn claim_of(c: &FleetClient) -> Option<Claim> {
    c.claim("shared").await.unwrap().filter(|c| c.fence > 0)
}

/// Waits (bounded) for a claim different from `not`.
async fn next_claim(c: &FleetClient, not: Option<&Claim>, secs: u64) -> Claim {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(cl) = claim_of(c).await {
            if not.is_none_or(|n| n.fence != cl.fence) {
                return cl;
            }
        }
        assert!(Instant::now() < deadline, "no new claim within {secs} s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A nats-server, one simulated board behind a bridge that takes several links, and a fleet
/// client: what every test here starts from.
struct SharedBoard {
    _nats: NatsServer,
    _sim: wasmbed_gateway::sim::SimChild,
    url: String,
    bridge: std::net::SocketAddr,
    heard: Heard,
    client: FleetClient,
}

async fn shared_board() -> SharedBoard {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let sim = start_sim(SimLink::Tcp).await;
    let board: std::net::SocketAddr = sim
        .endpoint
        .to_string()
        .trim_start_matches("tcp:")
        .parse()
        .expect("the sim's endpoint is tcp:HOST:PORT");
    let (bridge, heard) = multi_link_bridge(board).await;
    let client = FleetClient::connect(&url, &Default::default())
        .await
        .expect("fleet reachable");
    SharedBoard {
        _nats: nats,
        _sim: sim,
        url,
        bridge,
        heard,
        client,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateway_processes_one_board_exactly_one_drives_it() {
    let fx = shared_board().await;
    let (url, bridge, heard, c) = (
        fx.url.clone(),
        fx.bridge,
        fx.heard.clone(),
        fx.client.clone(),
    );

    // gw-a links first (link 0) and claims; gw-b links second (link 1) and waits.
    let a = gateway(&url, "gw-a", bridge);
    let first = next_claim(&c, None, 30).await;
    assert_eq!(first.gateway, "gw-a");
    let b = gateway(&url, "gw-b", bridge);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !heard
        .lock()
        .unwrap()
        .iter()
        .any(|(_, i, l)| *i == 1 && l.starts_with("STATUS"))
    {
        assert!(
            Instant::now() < deadline,
            "gw-b's handshake not seen at the board"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let gw_of_link = |i: usize| ["gw-a", "gw-b"].get(i).copied().unwrap_or("other");

    // The claims as they change, from a KV watch.
    let js = async_nats::jetstream::new(
        async_nats::connect(url.as_str())
            .await
            .expect("nats reachable"),
    );
    let kv = js.get_key_value(BUCKET_CLAIMS).await.unwrap();
    let timeline: Arc<Mutex<Vec<Option<Claim>>>> = Arc::default();
    let mut watch = kv.watch("shared").await.unwrap();
    let t = timeline.clone();
    let watcher = tokio::spawn(async move {
        while let Some(Ok(e)) = watch.next().await {
            let cl = (e.operation == async_nats::jetstream::kv::Operation::Put)
                .then(|| serde_json::from_slice::<Claim>(&e.value).ok())
                .flatten()
                .filter(|c| c.fence > 0);
            t.lock().unwrap().push(cl);
        }
    });

    // Hammer both gateways' own APIs and the fleet.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Instant::now();
    let mut hammers = Vec::new();
    for addr in [a.addr, b.addr] {
        let stop = stop.clone();
        hammers.push(tokio::spawn(async move {
            let mut ok = 0u32;
            let mut h = Client::connect(addr).await;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Bounded above the fleet's acceptance window: a forwarded request may be sent
                // again for that long while the claim changes hands.
                let bound = wasmbed_gateway::fleet::client::ACCEPT_WINDOW.as_secs() + 30;
                let ans = h
                    .call_body(json!({"op": "status", "device": "shared"}), b"", bound)
                    .await;
                ok += u32::from(ans.reply["ok"] == true);
            }
            ok
        }));
    }
    let replies: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    {
        let (stop, replies, url) = (stop.clone(), replies.clone(), url.clone());
        hammers.push(tokio::spawn(async move {
            let c = FleetClient::connect(&url, &Default::default())
                .await
                .unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = c
                    .request(
                        &json!({"op": "status", "device": "shared", "id": 1}),
                        b"",
                        |_| {},
                    )
                    .await
                    .unwrap();
                if r.reply["ok"] == true {
                    let g = r.gateway.expect("a served reply names its gateway");
                    let f = r.fence.expect("a served reply carries the fencing token");
                    replies.lock().unwrap().push((g, f));
                }
            }
            0
        }));
    }

    // An operator moves the claim three times (`nats kv del wasmbed-claims shared`).
    let mut last = first.clone();
    // Right after a renewal: the owner renews again only a heartbeat (TTL/3) later, so only
    // the fencing check can notice the loss before the other gateway claims the board.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let seen = timeline.lock().unwrap().len();
        let deadline = Instant::now() + Duration::from_millis(TTL_MS);
        while timeline.lock().unwrap().len() == seen {
            assert!(
                Instant::now() < deadline,
                "no renewal of the claim within the TTL"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        kv.delete("shared").await.unwrap();
        last = next_claim(&c, Some(&last), 20).await;
        eprintln!("claim moved: {last:?}");
    }
    // The owner frozen past the claim TTL, twice: the other gateway takes the board over; the
    // frozen one, woken, must not drive it.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (frozen, other) = if last.gateway == "gw-a" {
            (&a, "gw-b")
        } else {
            (&b, "gw-a")
        };
        signal(frozen, "-STOP");
        let taken = loop {
            let cl = next_claim(&c, Some(&last), 30).await;
            if cl.gateway == other {
                break cl;
            }
            last = cl;
        };
        eprintln!("taken over while {} was frozen: {taken:?}", last.gateway);
        signal(frozen, "-CONT");
        last = taken;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut served = Vec::new();
    for h in hammers {
        served.push(
            tokio::time::timeout(Duration::from_secs(40), h)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    watcher.abort();
    eprintln!(
        "own-API requests served: gw-a {} gw-b {}",
        served[0], served[1]
    );

    // Through the fleet: tokens never go back; each token names one gateway, the holder of
    // the claim of that revision.
    let replies = replies.lock().unwrap().clone();
    let timeline = timeline.lock().unwrap().clone();
    assert!(
        replies.len() > 10,
        "too few fleet replies: {}",
        replies.len()
    );
    let holder_of = |f: u64| {
        timeline
            .iter()
            .flatten()
            .chain([&first])
            .find(|c| c.fence == f)
            .map(|c| c.gateway.clone())
    };
    for w in replies.windows(2) {
        assert!(
            w[1].1 >= w[0].1,
            "fencing token went back: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
    for (g, f) in &replies {
        assert_eq!(
            holder_of(*f).as_deref(),
            Some(g.as_str()),
            "reply of {g} under token {f}"
        );
    }
    let tokens: std::collections::BTreeSet<u64> = replies.iter().map(|r| r.1).collect();
    assert!(
        tokens.len() >= 2,
        "the claim never changed hands under load: {tokens:?}"
    );

    // At the board: the links' commands since the hammering began, as runs of one link. Each
    // change of link needs a change of the claim's holder.
    let heard = heard.lock().unwrap().clone();
    let links: Vec<usize> = heard
        .iter()
        .filter(|(t, _, _)| *t >= started)
        .map(|(_, i, _)| *i)
        .collect();
    assert!(
        links.iter().all(|i| *i < 2),
        "a gateway opened another link: {links:?}"
    );
    let switches = links.windows(2).filter(|w| w[0] != w[1]).count();
    let holders: Vec<String> = std::iter::once(first.gateway.clone())
        .chain(timeline.iter().flatten().map(|c| c.gateway.clone()))
        .collect();
    let owner_changes = holders.windows(2).filter(|w| w[0] != w[1]).count();
    let runs: Vec<(&str, usize)> = links.iter().fold(Vec::new(), |mut v, i| {
        match v.last_mut() {
            Some((g, n)) if *g == gw_of_link(*i) => *n += 1,
            _ => v.push((gw_of_link(*i), 1)),
        }
        v
    });
    eprintln!(
        "board heard {} lines in runs {runs:?}; claim holders {holders:?}",
        links.len()
    );
    assert!(
        switches <= owner_changes,
        "both gateways drove the board: {switches} changes of link at the board, the claim \
         changed hands {owner_changes} times; runs {runs:?}, holders {holders:?}"
    );
    assert!(
        switches >= 1,
        "the board was driven by one gateway only: {runs:?}"
    );
    drop((a, b));
}

/// The owner frozen (SIGSTOP) while a long `start --wait-result` is sent through the fleet:
/// the copies sent again wait in the frozen gateway's socket; the other gateway takes the
/// claim over, accepts a copy and runs it. Woken while that job runs, the old owner must not
/// answer the copies it finds (it holds no claim now): the requester gets the RESULT of the
/// run, not "retry" for a request that did run, and the board ran it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_woken_stale_owner_does_not_answer_a_request_its_successor_runs() {
    let fx = shared_board().await;
    let (url, bridge, heard, c) = (
        fx.url.clone(),
        fx.bridge,
        fx.heard.clone(),
        fx.client.clone(),
    );
    let a = gateway(&url, "gw-a", bridge);
    let first = next_claim(&c, None, 30).await;
    assert_eq!(first.gateway, "gw-a");
    // The module is on the board before gw-b links (its handshake lists it).
    let wasm = module_wasm("toggle_n");
    let deploy = json!({"op": "deploy", "device": "shared", "module_id": "tn", "id": 1,
        "size": wasm.len(), "crc32": format!("{:08x}", crc32fast::hash(&wasm)),
        "name": "tn.wasm"});
    let r = c.request(&deploy, &wasm, |_| {}).await.unwrap();
    assert_eq!(r.reply["ok"], true, "{}", r.reply);
    let b = gateway(&url, "gw-b", bridge);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !heard
        .lock()
        .unwrap()
        .iter()
        .any(|(_, i, l)| *i == 1 && l.starts_with("STATUS"))
    {
        assert!(Instant::now() < deadline, "gw-b's handshake not seen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    signal(&a, "-STOP");
    let frozen_at = Instant::now();
    let start = json!({"op": "start", "device": "shared", "module_id": "tn", "id": 2,
        "func": "toggle_n", "args": [6], "wait_result": true, "result_timeout_ms": 30000});
    let run = {
        let c = c.clone();
        tokio::spawn(async move { c.request(&start, b"", |_| {}).await })
    };
    // gw-b takes the claim over and starts the job (a copy sent again reached it).
    let taken = next_claim(&c, Some(&first), 30).await;
    assert_eq!(taken.gateway, "gw-b");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !heard
        .lock()
        .unwrap()
        .iter()
        .any(|(_, _, l)| l.starts_with("START"))
    {
        assert!(Instant::now() < deadline, "the job never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "started through gw-b {:?} after the freeze",
        frozen_at.elapsed()
    );
    // Woken while the job runs (6 s): the copies queued at gw-a are read now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    signal(&a, "-CONT");
    let r = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the request ends")
        .unwrap()
        .unwrap();
    let starts: Vec<(usize, String)> = heard
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, l)| l.starts_with("START"))
        .map(|(_, i, l)| (*i, l.clone()))
        .collect();
    assert_eq!(starts.len(), 1, "the board ran the job once: {starts:?}");
    assert_eq!(starts[0].0, 1, "gw-b ran it: {starts:?}");
    assert_eq!(r.reply["ok"], true, "{}", r.reply);
    assert_eq!(r.reply["result"]["ret"], 6, "{}", r.reply);
    assert_eq!(r.gateway.as_deref(), Some("gw-b"));
    assert_eq!(r.fence, Some(taken.fence));
    drop((a, b));
}

/// A fleet whose claim TTL (90 s) is longer than the 30 s acceptance window: an owner frozen
/// for 36 s still holds its claim when it wakes and serves the copies of a request it finds
/// queued. The requester must still be waiting then (its window follows the claim TTL), not
/// have answered "no gateway accepted … the request was not run" for a deploy that then ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_long_claim_ttl_a_request_outwaits_a_frozen_owner() {
    const LONG_TTL_MS: u64 = 90_000;
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let sim = start_sim(SimLink::Tcp).await;
    let a = GwProc::start(
        "",
        &[
            "--fleet",
            &url,
            "--gateway-id",
            "gw-a",
            "--fleet-claim-ttl-ms",
            &LONG_TTL_MS.to_string(),
            "--device",
            &format!("solo={}", sim.endpoint),
        ],
    );
    let c = FleetClient::connect(&url, &Default::default())
        .await
        .expect("fleet reachable");
    let deadline = Instant::now() + Duration::from_secs(30);
    while c
        .claim("solo")
        .await
        .unwrap()
        .filter(|cl| cl.fence > 0)
        .is_none()
    {
        assert!(Instant::now() < deadline, "solo not claimed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signal(&a, "-STOP");
    let wasm = module_wasm("math_ops");
    let deploy = json!({"op": "deploy", "device": "solo", "module_id": "woken", "id": 1,
        "size": wasm.len(), "crc32": format!("{:08x}", crc32fast::hash(&wasm)),
        "name": "woken.wasm"});
    let t0 = Instant::now();
    let run = {
        let c = c.clone();
        tokio::spawn(async move { c.request(&deploy, &wasm, |_| {}).await })
    };
    // Past the 30 s window and the last copy's acceptance wait, well within 9/10 of the TTL.
    tokio::time::sleep(Duration::from_secs(36)).await;
    signal(&a, "-CONT");
    let r = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the request ends")
        .unwrap()
        .unwrap();
    eprintln!("answered {:?} after the freeze: {}", t0.elapsed(), r.reply);
    let status = c
        .request(
            &json!({"op": "status", "device": "solo", "id": 2}),
            b"",
            |_| {},
        )
        .await
        .unwrap();
    let on_board = status.reply.to_string().contains("woken");
    assert_eq!(
        r.reply["ok"], true,
        "the requester gave up (deploy on the board afterwards: {on_board}): {}",
        r.reply
    );
    assert_eq!(r.gateway.as_deref(), Some("gw-a"));
    assert!(on_board, "{}", status.reply);
    drop(a);
}
