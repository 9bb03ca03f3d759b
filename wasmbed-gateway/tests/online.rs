//! "Online means answering": a device that never says a byte is not online, and `devices` says
//! why; a device that stops answering goes offline until it speaks again.

mod common;

use std::time::Duration;

use common::{Client, ScriptedTcp};
use serde_json::{json, Value};

async fn device_entry(c: &mut Client) -> Value {
    let a = c.call(json!({"op": "devices"})).await;
    a.ok()["devices"][0].clone()
}

#[tokio::test]
async fn online_reflects_the_handshake_and_recent_answers() {
    let dev = ScriptedTcp::bind().await;
    let gw = common::gateway(&[dev.flag("quiet")]).await;
    let mut c = Client::connect(gw.addr).await;
    let mut conn = dev.accept().await;
    // Connected, but the device says nothing: not online, and the reason says so.
    conn.expect("INFO").await;
    let d = device_entry(&mut c).await;
    assert_eq!(d["online"], false, "{d}");
    assert!(
        d["offline_reason"]
            .as_str()
            .unwrap()
            .contains("answer INFO"),
        "{d}"
    );
    assert_eq!(d["last_seen_ms_ago"], Value::Null, "{d}");

    conn.say(common::INFO_V2).await;
    conn.expect("STATUS").await;
    conn.say(common::STATUS_V2_EMPTY).await;
    common::wait_online(&gw, "quiet").await;
    let d = device_entry(&mut c).await;
    assert_eq!(d["online"], true, "{d}");
    assert_eq!(d["offline_reason"], Value::Null, "{d}");
    assert!(d["last_seen_ms_ago"].as_u64().is_some(), "{d}");

    // A request the device leaves unanswered takes it offline.
    let asking = tokio::spawn(async move {
        let mut c2 = Client::connect(gw.addr).await;
        let a = c2.call(json!({"op": "status", "device": "quiet"})).await;
        (a, gw)
    });
    conn.expect("STATUS").await;
    let (a, gw) = asking.await.unwrap();
    assert_eq!(a.err_code(), "TIMEOUT", "{}", a.reply);
    let d = device_entry(&mut c).await;
    assert_eq!(d["online"], false, "{d}");
    assert!(
        d["offline_reason"]
            .as_str()
            .unwrap()
            .starts_with("not answering"),
        "{d}"
    );

    // It speaks again: online.
    conn.say("console: back").await;
    let mut online = false;
    for _ in 0..100 {
        if device_entry(&mut c).await["online"] == true {
            online = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(online);
    drop(gw);
}

#[tokio::test]
async fn a_device_that_keeps_talking_but_never_answers_still_times_out() {
    let dev = ScriptedTcp::bind().await;
    let gw = common::gateway(&[dev.flag("chatty")]).await;
    let mut conn = dev.accept().await;
    conn.expect("INFO").await;
    conn.say(common::INFO_V2).await;
    conn.expect("STATUS").await;
    conn.say(common::STATUS_V2_EMPTY).await;
    common::wait_online(&gw, "chatty").await;
    let addr = gw.addr;
    let asking = tokio::spawn(async move {
        let mut c = Client::connect(addr).await;
        c.call(json!({"op": "status", "device": "chatty"})).await
    });
    conn.expect("STATUS").await;
    // Console lines keep coming, none of them the answer: the read never times out, yet the
    // request must end at its deadline (bounded here at 60 s of chatter).
    let t0 = std::time::Instant::now();
    while !asking.is_finished() && t0.elapsed() < Duration::from_secs(60) {
        conn.say("console: chatter").await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        asking.is_finished(),
        "status still unanswered after 60 s of chatter"
    );
    let a = asking.await.unwrap();
    assert_eq!(a.err_code(), "TIMEOUT", "{}", a.reply);
    drop(gw);
}
