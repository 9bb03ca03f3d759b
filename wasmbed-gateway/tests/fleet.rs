//! The fleet against real `nats-server` processes (Debian's nats-server 2.9) and the real
//! simulated board: claims, fencing, forwarding, unowned devices, a gateway killed with
//! SIGKILL, a NATS server of a 3-node cluster killed.

mod common;

use std::time::Duration;

use common::polling::until;
use common::*;
use serde_json::{json, Value};
use wasmbed_gateway::config::Config;
use wasmbed_gateway::fleet::harness::{NatsCluster, NatsServer};
use wasmbed_gateway::fleet::{FleetClient, FleetConfig};
use wasmbed_gateway::sim::SimLink;

/// Short claim TTL so expiry is observable in a test.
const TTL_MS: u64 = 3000;

fn fleet_cfg(url: &str, id: &str) -> FleetConfig {
    let mut f = FleetConfig::new(url, id);
    f.claim_ttl = Duration::from_millis(TTL_MS);
    f
}

/// An in-process gateway in the fleet with the given devices (`NAME=ENDPOINT`).
async fn member(f: FleetConfig, devices: &[String]) -> wasmbed_gateway::run::Running {
    let mut cfg = Config::default();
    for d in devices {
        cfg.apply_device_flag(d).unwrap();
    }
    cfg.fleet = Some(f);
    gateway_cfg(cfg).await
}

async fn client(url: &str) -> FleetClient {
    FleetClient::connect(url, &Default::default())
        .await
        .expect("fleet client connects")
}

/// `status` of `dev` through the fleet, bounded.
async fn fleet_status(c: &FleetClient, dev: &str) -> wasmbed_gateway::fleet::FleetReply {
    tokio::time::timeout(
        Duration::from_secs(30),
        c.request(
            &json!({"op": "status", "device": dev, "id": 1}),
            b"",
            |_| {},
        ),
    )
    .await
    .expect("a fleet request answers within 30 s")
    .expect("fleet reachable")
}

async fn device(c: &FleetClient, name: &str) -> Option<Value> {
    c.devices()
        .await
        .unwrap()
        .into_iter()
        .find(|d| d["metadata"]["name"] == name)
}

/// A fleet for scripted owners: one real gateway serving `alpha` (it creates the buckets), a
/// raw NATS connection and the claims bucket, to put claims by hand and answer as a gateway.
struct RawFleet {
    _nats: NatsServer,
    _sim: wasmbed_gateway::sim::SimChild,
    _gw: wasmbed_gateway::run::Running,
    url: String,
    nc: async_nats::Client,
    claims: async_nats::jetstream::kv::Store,
}

async fn raw_fleet() -> RawFleet {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let sim = start_sim(SimLink::Tcp).await;
    let gw = member(
        fleet_cfg(&url, "gw-a"),
        &[format!("alpha={}", sim.endpoint)],
    )
    .await;
    let m = gw.fleet.clone().unwrap();
    until("alpha claimed", 30, || async { m.serves("alpha") }).await;
    let nc = async_nats::connect(url.as_str()).await.unwrap();
    let claims = async_nats::jetstream::new(nc.clone())
        .get_key_value(wasmbed_gateway::fleet::BUCKET_CLAIMS)
        .await
        .unwrap();
    RawFleet {
        _nats: nats,
        _sim: sim,
        _gw: gw,
        url,
        nc,
        claims,
    }
}

/// The headers of a line sent as gateway `gw` under fencing token `fence`; with `accepted`,
/// those of its acceptance.
fn stamped(gw: &str, fence: &str, accepted: bool) -> async_nats::HeaderMap {
    use wasmbed_gateway::fleet::{HDR_ACCEPTED, HDR_FENCE, HDR_GATEWAY};
    let mut h = async_nats::HeaderMap::new();
    h.insert(HDR_GATEWAY, gw);
    h.insert(HDR_FENCE, fence);
    if accepted {
        h.insert(HDR_ACCEPTED, "1");
    }
    h
}

/// Two gateways with a board each, one more board named alike on both: the host's view lists
/// all, requests reach the owner (directly and forwarded by the other gateway), an unowned
/// device fails at once, and the twin is served by exactly one gateway under its fencing token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_claims_fencing_forwarding() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let (sa, sb, t1, t2) = (
        start_sim(SimLink::Tcp).await,
        start_sim(SimLink::Tcp).await,
        start_sim(SimLink::Tcp).await,
        start_sim(SimLink::Tcp).await,
    );
    let mut fa = fleet_cfg(&url, "gw-a");
    fa.labels
        .insert("alpha".into(), [("room".into(), "lab".into())].into());
    let a = member(
        fa,
        &[
            format!("alpha={}", sa.endpoint),
            format!("twin={}", t1.endpoint),
        ],
    )
    .await;
    let b = member(
        fleet_cfg(&url, "gw-b"),
        &[
            format!("beta={}", sb.endpoint),
            format!("twin={}", t2.endpoint),
        ],
    )
    .await;
    let c = client(&url).await;

    // The fleet lists the devices of both gateways, online, with their owner and labels.
    let devs = until("alpha, beta and twin listed online", 30, || async {
        let d = c.devices().await.unwrap();
        let online = |n: &str| {
            d.iter()
                .any(|x| x["metadata"]["name"] == n && x["status"]["online"] == true)
        };
        (online("alpha") && online("beta") && online("twin")).then_some(d)
    })
    .await;
    let alpha = devs
        .iter()
        .find(|d| d["metadata"]["name"] == "alpha")
        .unwrap();
    assert_eq!(alpha["kind"], "Device");
    assert_eq!(alpha["apiVersion"], "wasmbed.dev/v1alpha1");
    assert_eq!(alpha["status"]["gateway"], "gw-a", "{alpha}");
    assert_eq!(alpha["metadata"]["labels"]["room"], "lab", "{alpha}");
    assert_eq!(alpha["status"]["board"], "sim", "{alpha}");
    let beta = devs
        .iter()
        .find(|d| d["metadata"]["name"] == "beta")
        .unwrap();
    assert_eq!(beta["status"]["gateway"], "gw-b", "{beta}");
    let gws = c.gateways().await.unwrap();
    assert_eq!(gws.len(), 2, "{gws:?}");
    assert!(gws
        .iter()
        .all(|g| g["kind"] == "Gateway" && g["status"]["online"] == true));

    // Requests reach the owner, which stamps its id and fencing token.
    let r = fleet_status(&c, "alpha").await;
    assert_eq!(r.reply["ok"], true, "{}", r.reply);
    assert_eq!(r.gateway.as_deref(), Some("gw-a"));
    let claim = c.claim("alpha").await.unwrap().expect("alpha claimed");
    assert_eq!(claim.gateway, "gw-a");
    assert_eq!(r.fence, Some(claim.fence));
    assert!(claim.fence > 0);
    let r = fleet_status(&c, "beta").await;
    assert_eq!(r.reply["ok"], true, "{}", r.reply);
    assert_eq!(r.gateway.as_deref(), Some("gw-b"));

    // The twin: exactly one gateway serves it, the one its claim names, under that fence.
    let claim = c.claim("twin").await.unwrap().expect("twin claimed");
    let (sa_twin, sb_twin) = (
        a.fleet.as_ref().unwrap().serves("twin"),
        b.fleet.as_ref().unwrap().serves("twin"),
    );
    assert!(
        sa_twin.is_some() != sb_twin.is_some(),
        "exactly one serves the twin: a={sa_twin:?} b={sb_twin:?}"
    );
    assert_eq!(sa_twin.or(sb_twin), Some(claim.fence));
    for _ in 0..20 {
        let r = fleet_status(&c, "twin").await;
        assert_eq!(r.reply["ok"], true, "{}", r.reply);
        assert_eq!(r.gateway.as_deref(), Some(claim.gateway.as_str()));
        assert_eq!(r.fence, Some(claim.fence));
        let both = a.fleet.as_ref().unwrap().serves("twin").is_some()
            && b.fleet.as_ref().unwrap().serves("twin").is_some();
        assert!(!both, "both gateways serve the twin");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A host that only knows gw-b reaches alpha (forwarded through the fleet).
    let mut hb = Client::connect(b.addr).await;
    let ans = hb.call(json!({"op": "info", "device": "alpha"})).await;
    assert_eq!(ans.ok()["board"], "sim", "{}", ans.reply);
    let ans = hb.call(json!({"op": "info", "device": "beta"})).await;
    assert_eq!(ans.ok()["board"], "sim");

    // A device nobody owns fails at once (no waiting for the request timeout).
    let t0 = std::time::Instant::now();
    let r = fleet_status(&c, "ghost").await;
    assert_eq!(r.reply["error"]["code"], "DEVICE_UNKNOWN", "{}", r.reply);
    eprintln!("unowned device answered in {:?}", t0.elapsed());
    let ans = hb.call(json!({"op": "status", "device": "ghost"})).await;
    assert_eq!(ans.err_code(), "DEVICE_UNKNOWN");
}

/// A gateway process killed with SIGKILL: its own device shows offline within the claim TTL,
/// and a board on a TCP bridge that the other gateway also reaches is taken over there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_gateway_offline_and_takeover() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let only = start_sim(SimLink::Tcp).await;
    let shared = start_sim(SimLink::Tcp).await;
    let spawn = |id: &str, devices: Vec<String>| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_wasmbed-gateway"));
        cmd.args([
            "--listen",
            "127.0.0.1:0",
            "--fleet",
            &url,
            "--gateway-id",
            id,
        ])
        .args(["--fleet-claim-ttl-ms", &TTL_MS.to_string()])
        .env("WASMBED_GATEWAY_CONFIG", "")
        .env_remove("WASMBED_GATEWAY_CONFIG")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
        for d in devices {
            cmd.arg("--device").arg(d);
        }
        cmd.spawn().expect("gateway binary starts")
    };
    let mut a = spawn(
        "gw-a",
        vec![
            format!("onlya={}", only.endpoint),
            format!("shared={}", shared.endpoint),
        ],
    );
    let c = client(&url).await;
    until("gw-a owns shared", 30, || async {
        c.claim("shared")
            .await
            .unwrap()
            .filter(|cl| cl.gateway == "gw-a")
    })
    .await;
    let first = c.claim("shared").await.unwrap().unwrap();
    // gw-b reaches the same board (the bridge accepts one link at a time: gw-b waits).
    let _b = spawn("gw-b", vec![format!("shared={}", shared.endpoint)]);
    until("onlya online", 30, || async {
        device(&c, "onlya")
            .await
            .filter(|d| d["status"]["online"] == true)
    })
    .await;
    let r = fleet_status(&c, "shared").await;
    assert_eq!(r.gateway.as_deref(), Some("gw-a"), "{}", r.reply);

    a.start_kill().unwrap();
    a.wait().await.unwrap();
    let killed = std::time::Instant::now();
    // Offline within the claim TTL (plus one poll and the heartbeat of the last renewal).
    until("onlya offline after SIGKILL", TTL_MS / 1000 + 5, || async {
        device(&c, "onlya")
            .await
            .filter(|d| d["status"]["online"] == false)
    })
    .await;
    eprintln!("onlya offline {:?} after SIGKILL", killed.elapsed());
    let r = fleet_status(&c, "onlya").await;
    assert_eq!(r.reply["error"]["code"], "DEVICE_OFFLINE", "{}", r.reply);
    // Taken over by gw-b under a newer fencing token.
    let taken = until("gw-b takes shared over", 40, || async {
        c.claim("shared")
            .await
            .unwrap()
            .filter(|cl| cl.gateway == "gw-b")
    })
    .await;
    assert!(taken.fence > first.fence, "{taken:?} after {first:?}");
    let r = until("shared answers through gw-b", 30, || async {
        let r = fleet_status(&c, "shared").await;
        (r.reply["ok"] == true).then_some(r)
    })
    .await;
    assert_eq!(r.gateway.as_deref(), Some("gw-b"));
    assert_eq!(r.fence, Some(taken.fence));
}

/// One server of a 3-node JetStream cluster killed: requests continue (after at most a
/// re-election and a reconnect).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_survives_a_dead_server() {
    let mut cluster = NatsCluster::start(3).unwrap();
    let urls = cluster.urls();
    let sim = start_sim(SimLink::Tcp).await;
    let mut f = fleet_cfg(&urls, "gw-a");
    f.replicas = 3;
    let _gw = member(f, &[format!("alpha={}", sim.endpoint)]).await;
    // The host talks to the server that survives.
    let c = client(&cluster.servers[2].url()).await;
    until("alpha served", 30, || async {
        let r = fleet_status(&c, "alpha").await;
        (r.reply["ok"] == true).then_some(())
    })
    .await;
    cluster.servers[0].kill();
    let killed = std::time::Instant::now();
    until("alpha served after n0 died", 40, || async {
        let r = fleet_status(&c, "alpha").await;
        (r.reply["ok"] == true).then_some(())
    })
    .await;
    eprintln!("served again {:?} after n0 died", killed.elapsed());
    for _ in 0..10 {
        let r = fleet_status(&c, "alpha").await;
        assert_eq!(r.reply["ok"], true, "{}", r.reply);
    }
}

/// A gateway that cannot renew its claims (its only NATS server died) stops serving its device
/// within the claim TTL, on its own API too: the request goes to the (unreachable) fleet
/// instead of the board.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_renewal_no_serving() {
    let mut nats = NatsServer::start().unwrap();
    let sim = start_sim(SimLink::Tcp).await;
    let gw = member(
        fleet_cfg(&nats.url(), "gw-a"),
        &[format!("alpha={}", sim.endpoint)],
    )
    .await;
    let m = gw.fleet.clone().unwrap();
    until("alpha claimed", 30, || async { m.serves("alpha") }).await;
    let mut h = Client::connect(gw.addr).await;
    let ans = h.call(json!({"op": "status", "device": "alpha"})).await;
    ans.ok();
    nats.kill();
    let killed = std::time::Instant::now();
    until("gw-a stops serving alpha", TTL_MS / 1000 + 3, || async {
        m.serves("alpha").is_none().then_some(())
    })
    .await;
    eprintln!(
        "stopped serving {:?} after the server died",
        killed.elapsed()
    );
    let ans = h.call(json!({"op": "status", "device": "alpha"})).await;
    assert_eq!(ans.reply["ok"], false, "{}", ans.reply);
}

/// A request reaching only subscribers that stay silent (an owner whose claim went stale, a
/// frozen one) is sent again until an owner accepts it, and fails with TIMEOUT naming the
/// claim's holder when none does within `ACCEPT_WINDOW`; a real owner that gets the same
/// request twice (same reply inbox) serves it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unaccepted_requests_are_sent_again_and_served_once() {
    use futures_util::StreamExt;
    use wasmbed_gateway::fleet::client::{ACCEPT_WINDOW, ACK_WAIT};
    use wasmbed_gateway::fleet::{request_subject, Claim, HDR_ACCEPTED};

    let fx = raw_fleet().await;
    let (url, nc, kv) = (fx.url.clone(), fx.nc.clone(), fx.claims.clone());

    // Claims held by hand for two devices no gateway serves, renewed within the bucket's TTL.
    let claim = |gw: &str| {
        let c = Claim {
            gateway: gw.into(),
            fence: 7,
            renewed_ms: 0,
        };
        bytes::Bytes::from(serde_json::to_vec(&c).unwrap())
    };
    let renew = {
        let (kv, late, never) = (kv.clone(), claim("gw-late"), claim("gw-frozen"));
        tokio::spawn(async move {
            loop {
                kv.put("late", late.clone()).await.unwrap();
                kv.put("never", never.clone()).await.unwrap();
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    // Silent subscribers on both subjects, counting what reaches them.
    let silent = |dev: &'static str| {
        let nc = nc.clone();
        async move {
            let n = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
            let mut sub = nc.subscribe(request_subject(dev)).await.unwrap();
            nc.flush().await.unwrap();
            let counter = n.clone();
            tokio::spawn(async move {
                while sub.next().await.is_some() {
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
            n
        }
    };
    let (late_silent, never_silent) = (silent("late").await, silent("never").await);
    // The owner of `late` subscribes only after two acceptance waits, then accepts and answers.
    let owner = {
        let nc = nc.clone();
        tokio::spawn(async move {
            tokio::time::sleep(ACK_WAIT * 2 + Duration::from_millis(500)).await;
            let mut sub = nc.subscribe(request_subject("late")).await.unwrap();
            let msg = sub.next().await.unwrap();
            let inbox = msg.reply.unwrap();
            let h = stamped("gw-late", "7", false);
            let ack = stamped("gw-late", "7", true);
            nc.publish_with_headers(inbox.clone(), ack, bytes::Bytes::new())
                .await
                .unwrap();
            let reply = json!({"id": 1, "ok": true, "result": {"served_by": "gw-late"}});
            nc.publish_with_headers(inbox, h, reply.to_string().into())
                .await
                .unwrap();
        })
    };

    let c = client(&url).await;
    let started = std::time::Instant::now();
    let (late_req, never_req) = (
        json!({"op": "status", "device": "late", "id": 1}),
        json!({"op": "status", "device": "never", "id": 2}),
    );
    let (late, never) = tokio::join!(
        c.request(&late_req, b"", |_| {}),
        c.request(&never_req, b"", |_| {}),
    );
    let (late, never) = (late.unwrap(), never.unwrap());
    owner.await.unwrap();
    renew.abort();
    assert_eq!(late.reply["ok"], true, "{}", late.reply);
    assert_eq!(late.gateway.as_deref(), Some("gw-late"));
    assert_eq!(late.fence, Some(7));
    assert_eq!(never.reply["error"]["code"], "TIMEOUT", "{}", never.reply);
    let msg = never.reply["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("no gateway accepted") && msg.contains("gw-frozen"),
        "{msg}"
    );
    assert!(
        started.elapsed() >= ACCEPT_WINDOW,
        "{:?}",
        started.elapsed()
    );
    let load = |n: &std::sync::atomic::AtomicU32| n.load(std::sync::atomic::Ordering::Relaxed);
    let (late_n, never_n) = (load(&late_silent), load(&never_silent));
    eprintln!("copies at the silent subscribers: late {late_n}, never {never_n}");
    assert!(
        late_n >= 3,
        "sent only {late_n} times before the owner came"
    );
    assert!(never_n >= 10, "sent only {never_n} times in the window");

    // The real owner, sent the same request twice to one inbox, accepts and answers once.
    let inbox = nc.new_inbox();
    let mut sub = nc.subscribe(inbox.clone()).await.unwrap();
    let req = json!({"op": "status", "device": "alpha", "id": 9}).to_string();
    for _ in 0..2 {
        nc.publish_with_reply(request_subject("alpha"), inbox.clone(), req.clone().into())
            .await
            .unwrap();
    }
    let mut got = Vec::new();
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(3), sub.next()).await {
        let accepted = msg
            .headers
            .as_ref()
            .and_then(|h| h.get(HDR_ACCEPTED))
            .is_some();
        got.push((accepted, String::from_utf8_lossy(&msg.payload).to_string()));
    }
    assert_eq!(got.len(), 2, "one acceptance and one reply: {got:?}");
    assert!(got[0].0 && got[0].1.is_empty(), "{got:?}");
    assert!(!got[1].0 && got[1].1.contains("\"ok\":true"), "{got:?}");
}

/// A deploy through the fleet that takes several claim TTLs (a paced 2400-baud UART): the
/// claim is renewed meanwhile, so the lease (device/lease.rs) lets every line of the upload go
/// out and the module is loaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_upload_outlives_the_claim_ttl() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let sim = start_sim(SimLink::Pty { baud: 2400 }).await;
    let mut f = fleet_cfg(&url, "gw-a");
    f.claim_ttl = Duration::from_millis(1500);
    let gw = member(f, &[format!("slow={}", sim.endpoint)]).await;
    let m = gw.fleet.clone().unwrap();
    until("slow claimed", 30, || async { m.serves("slow") }).await;
    let c = client(&url).await;
    let wasm = module_wasm("fft_bench");
    let req = json!({"op": "deploy", "device": "slow", "module_id": "fft", "id": 1,
        "size": wasm.len(), "crc32": format!("{:08x}", crc32fast::hash(&wasm)),
        "name": "fft.wasm"});
    let t0 = std::time::Instant::now();
    let r = c.request(&req, &wasm, |_| {}).await.unwrap();
    let took = t0.elapsed();
    eprintln!("{} bytes deployed at 2400 baud in {took:?}", wasm.len());
    assert_eq!(r.reply["ok"], true, "{}", r.reply);
    assert!(
        took > Duration::from_millis(3000),
        "the upload must outlast two claim TTLs to test the lease: {took:?}"
    );
    let s = fleet_status(&c, "slow").await;
    assert!(s.reply.to_string().contains("fft"), "{}", s.reply);
}

/// The HTTP API of a gateway whose configured device is claimed by another gateway (a board
/// both reach, here two boards of the same name): like its JSON-lines API, the request goes
/// to the fleet and the owner serves it (the device task of the gateway that does not hold the
/// claim refuses every job, so serving it here could only fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_requests_for_a_device_claimed_elsewhere_go_to_its_owner() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let (t1, t2) = (start_sim(SimLink::Tcp).await, start_sim(SimLink::Tcp).await);
    let a = member(fleet_cfg(&url, "gw-a"), &[format!("twin={}", t1.endpoint)]).await;
    let ma = a.fleet.clone().unwrap();
    until("gw-a claims twin", 30, || async { ma.serves("twin") }).await;
    // A module only gw-a's board holds, deployed through the fleet.
    let c = client(&url).await;
    let wasm = module_wasm("math_ops");
    let req = json!({"op": "deploy", "device": "twin", "module_id": "only_a", "id": 1,
        "size": wasm.len(), "crc32": format!("{:08x}", crc32fast::hash(&wasm)),
        "name": "only_a.wasm"});
    let r = c.request(&req, &wasm, |_| {}).await.unwrap();
    assert_eq!(r.reply["ok"], true, "{}", r.reply);

    let mut cfg = Config::default();
    cfg.apply_device_flag(&format!("twin={}", t2.endpoint))
        .unwrap();
    cfg.fleet = Some(fleet_cfg(&url, "gw-b"));
    cfg.http = Some("127.0.0.1:0".parse().unwrap());
    let b = gateway_cfg(cfg).await;
    wait_online(&b, "twin").await;
    assert_eq!(b.fleet.as_ref().unwrap().serves("twin"), None);
    let base = format!("http://{}", b.http_addr.unwrap());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let status: Value = http
        .get(format!("{base}/api/devices/twin/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["ok"], true, "{status}");
    assert!(
        status.to_string().contains("only_a"),
        "served by the owner (its board holds only_a): {status}"
    );
    let started: Value = http
        .post(format!("{base}/api/devices/twin/start"))
        .json(
            &json!({"module_id": "only_a", "func": "add", "args": [200, 26],
            "wait_result": true}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(started["result"]["ret"], 226, "{started}");
    // An upload too: its body goes on to the owner.
    let deployed: Value = http
        .post(format!("{base}/api/devices/twin/deploy?module_id=via_b"))
        .body(wasm.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(deployed["ok"], true, "{deployed}");
    let r = fleet_status(&c, "twin").await;
    assert_eq!(r.gateway.as_deref(), Some("gw-a"));
    assert!(r.reply.to_string().contains("via_b"), "{}", r.reply);
}

/// A gateway given a longer claim TTL than the fleet's claims bucket keeps claims (the bucket
/// was created by a gateway with 1.5 s; this one says 30 s): its claims expire after the
/// bucket's TTL, so it must renew and stop serving by that one. Checked: whenever it serves
/// its device, the claims bucket names it under the token it serves with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_longer_configured_ttl_than_the_bucket_keeps_never_serves_an_expired_claim() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let (s1, s2) = (start_sim(SimLink::Tcp).await, start_sim(SimLink::Tcp).await);
    let mut fa = fleet_cfg(&url, "gw-a");
    fa.claim_ttl = Duration::from_millis(1500);
    let a = member(fa, &[format!("first={}", s1.endpoint)]).await;
    let ma = a.fleet.clone().unwrap();
    until("gw-a claims first", 30, || async { ma.serves("first") }).await;
    let mut fb = fleet_cfg(&url, "gw-b");
    fb.claim_ttl = Duration::from_secs(30);
    let b = member(fb, &[format!("second={}", s2.endpoint)]).await;
    let mb = b.fleet.clone().unwrap();
    until("gw-b claims second", 30, || async { mb.serves("second") }).await;
    let c = client(&url).await;
    let mut bad = Vec::new();
    let t0 = std::time::Instant::now();
    while t0.elapsed() < Duration::from_secs(6) {
        if let Some(fence) = mb.serves("second") {
            let claim = c.claim("second").await.unwrap();
            if claim
                .as_ref()
                .is_none_or(|cl| cl.gateway != "gw-b" || cl.fence != fence)
            {
                bad.push((t0.elapsed(), fence, claim));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        bad.is_empty(),
        "gw-b served `second` without holding its claim {} times, first: {:?}",
        bad.len(),
        bad.first()
    );
}

/// One request accepted by two gateways (the first acceptance came after a copy was sent
/// again, and the claim had moved meanwhile): the old owner refuses it at dequeue, the new one
/// (higher fencing token) runs it. The requester follows the newer acceptance: it gets the
/// new owner's reply, not the old one's "send it again" for a request that ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_acceptances_the_newer_owner_answers() {
    use futures_util::StreamExt;
    use wasmbed_gateway::fleet::{request_subject, Claim};

    let fx = raw_fleet().await;
    let (url, nc, kv) = (fx.url.clone(), fx.nc.clone(), fx.claims.clone());
    let claim = serde_json::to_vec(&Claim {
        gateway: "gw-new".into(),
        fence: 9,
        renewed_ms: 0,
    })
    .unwrap();
    let renew = {
        let kv = kv.clone();
        tokio::spawn(async move {
            loop {
                kv.put("moved", claim.clone().into()).await.unwrap();
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    // Both owners see every copy; both act on the second one (the first went unaccepted):
    // the old one accepts first and refuses late, the new one accepts after it and answers.
    let (old_sub, new_sub) = (
        nc.subscribe(request_subject("moved")).await.unwrap(),
        nc.subscribe(request_subject("moved")).await.unwrap(),
    );
    nc.flush().await.unwrap();
    let owner = |mut sub: async_nats::Subscriber,
                 name: &'static str,
                 fence: &'static str,
                 ack_ms: u64,
                 reply_ms: u64,
                 ok: bool| {
        let nc = nc.clone();
        tokio::spawn(async move {
            sub.next().await.unwrap();
            let msg = sub.next().await.unwrap();
            let inbox = msg.reply.unwrap();
            let (h, ack) = (stamped(name, fence, false), stamped(name, fence, true));
            tokio::time::sleep(Duration::from_millis(ack_ms)).await;
            nc.publish_with_headers(inbox.clone(), ack, bytes::Bytes::new())
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(reply_ms - ack_ms)).await;
            let reply = if ok {
                json!({"id": 1, "ok": true, "result": {"served_by": name}})
            } else {
                json!({"id": 1, "ok": false, "error": {"code": "DEVICE_OFFLINE",
                    "message": "not driven by this gateway: stale fencing token",
                    "help": "send the request again"}})
            };
            nc.publish_with_headers(inbox, h, reply.to_string().into())
                .await
                .unwrap();
            nc.flush().await.unwrap();
        })
    };
    let old = owner(old_sub, "gw-old", "5", 100, 1500, false);
    let new = owner(new_sub, "gw-new", "9", 400, 800, true);
    let c = client(&url).await;
    let r = c
        .request(
            &json!({"op": "status", "device": "moved", "id": 1}),
            b"",
            |_| {},
        )
        .await
        .unwrap();
    renew.abort();
    let _ = tokio::join!(old, new);
    assert_eq!(r.reply["ok"], true, "{}", r.reply);
    assert_eq!(r.gateway.as_deref(), Some("gw-new"));
    assert_eq!(r.fence, Some(9));
}

/// An owner of an earlier version (no acceptance message: its events and reply carry its
/// gateway and fencing token) is still answered at once: only unstamped lines before any
/// acceptance are refusals that the request outwaits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_that_does_not_accept_is_still_heard() {
    use futures_util::StreamExt;
    use wasmbed_gateway::fleet::{request_subject, Claim};

    let fx = raw_fleet().await;
    let (url, nc, kv) = (fx.url.clone(), fx.nc.clone(), fx.claims.clone());
    let claim = Claim {
        gateway: "gw-old".into(),
        fence: 4,
        renewed_ms: 0,
    };
    kv.put("older", serde_json::to_vec(&claim).unwrap().into())
        .await
        .unwrap();
    let mut sub = nc.subscribe(request_subject("older")).await.unwrap();
    nc.flush().await.unwrap();
    let owner = {
        let nc = nc.clone();
        tokio::spawn(async move {
            let msg = sub.next().await.unwrap();
            let inbox = msg.reply.unwrap();
            let h = stamped("gw-old", "4", false);
            let ev = json!({"event": "progress", "id": 1, "done": 1, "total": 2});
            nc.publish_with_headers(inbox.clone(), h.clone(), ev.to_string().into())
                .await
                .unwrap();
            let reply = json!({"id": 1, "ok": true, "result": {"served_by": "gw-old"}});
            nc.publish_with_headers(inbox, h, reply.to_string().into())
                .await
                .unwrap();
        })
    };
    let c = client(&url).await;
    let mut events = 0;
    let t0 = std::time::Instant::now();
    let r = c
        .request(
            &json!({"op": "status", "device": "older", "id": 1}),
            b"",
            |_| events += 1,
        )
        .await
        .unwrap();
    owner.await.unwrap();
    assert_eq!(r.reply["ok"], true, "{}", r.reply);
    assert_eq!(r.gateway.as_deref(), Some("gw-old"));
    assert_eq!(events, 1);
    eprintln!("answered in {:?}", t0.elapsed());
}
