//! The JSON-lines host API over the fleet: a gateway forwards requests for devices it does not
//! serve, and `wasmbed-host --fleet` runs [`serve`] on a loopback port so every command reaches
//! the owning gateway.

use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::FleetClient;

/// Longest request line the bridge reads.
pub const MAX_LINE: u64 = 64 * 1024;
/// Largest upload body forwarded (NATS's max_payload bounds it further).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

fn error_reply(id: Value, code: &str, message: String, help: &str) -> Value {
    json!({"id": id, "ok": false, "error": {"code": code, "message": message, "help": help}})
}

/// Sends `req` (its body read from `reader`) to the device's owner in the fleet; events and the
/// reply go to `out`. `limits` = (largest body, deadline for reading it).
pub async fn forward<R: AsyncBufRead + Unpin>(
    client: &FleetClient,
    req: Map<String, Value>,
    reader: &mut R,
    out: &mpsc::UnboundedSender<Value>,
    limits: (usize, Duration),
) {
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let op = req.get("op").and_then(Value::as_str).unwrap_or_default();
    let mut body = Vec::new();
    if matches!(op, "deploy" | "build_and_deploy") {
        let size = req.get("size").and_then(Value::as_u64).unwrap_or(0) as usize;
        if size > limits.0 {
            let _ = out.send(error_reply(
                id,
                "TOO_LARGE",
                format!("body of {size} bytes over the limit of {} bytes", limits.0),
                "send a smaller module",
            ));
            return;
        }
        body.resize(size, 0);
        match tokio::time::timeout(limits.1, reader.read_exact(&mut body)).await {
            Ok(Ok(_)) => {}
            _ => {
                let _ = out.send(error_reply(
                    id,
                    "BAD_REQUEST",
                    format!("the {size}-byte body did not arrive within {:?}", limits.1),
                    "send `size` bytes right after the request line",
                ));
                return;
            }
        }
    }
    if op == "logs" && req.get("follow") == Some(&Value::Bool(true)) {
        follow_logs(client, req, out).await;
        return;
    }
    let v = Value::Object(req);
    match client
        .request(&v, &body, |ev| {
            let _ = out.send(ev);
        })
        .await
    {
        Ok(r) => {
            let _ = out.send(r.reply);
        }
        Err(e) => {
            let _ = out.send(error_reply(
                id,
                "INTERNAL",
                e.to_string(),
                "check the fleet's NATS servers",
            ));
        }
    }
}

/// `logs` with `follow` through the fleet: the owner answers the held lines (the request sent
/// without `follow`), then the device's `log` events published on `wasmbed.evt.<device>.*` are
/// relayed until the client goes (subscribed before asking, so no line falls in between; the
/// host drops lines it already printed by `seq`). Follows the device across a change of owner.
async fn follow_logs(
    client: &FleetClient,
    mut req: Map<String, Value>,
    out: &mpsc::UnboundedSender<Value>,
) {
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let dev = req
        .get("device")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut sub = match client
        .nc
        .subscribe(format!("wasmbed.evt.{}.*", super::subject_token(&dev)))
        .await
    {
        Ok(s) => s,
        Err(e) => {
            let _ = out.send(error_reply(
                id,
                "INTERNAL",
                format!("cannot follow {dev}'s events: {e}"),
                "check the fleet's NATS servers",
            ));
            return;
        }
    };
    req.insert("follow".into(), Value::Bool(false));
    let reply = match client.request(&Value::Object(req), b"", |_| {}).await {
        Ok(r) => r.reply,
        Err(e) => error_reply(
            id,
            "INTERNAL",
            e.to_string(),
            "check the fleet's NATS servers",
        ),
    };
    let ok = reply.get("ok") == Some(&Value::Bool(true));
    if out.send(reply).is_err() || !ok {
        return;
    }
    let out = out.clone();
    tokio::spawn(async move {
        use futures_util::StreamExt;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            let msg = tokio::select! {
                m = sub.next() => match m { Some(m) => m, None => return },
                _ = tick.tick() => {
                    // The client went (its writer dropped the receiver): stop following.
                    if out.is_closed() { return; }
                    continue;
                }
            };
            let Ok(v) = serde_json::from_slice::<Value>(&msg.payload) else {
                continue;
            };
            if v.get("event").and_then(Value::as_str) != Some("log") {
                continue;
            }
            if out.send(v).is_err() {
                return;
            }
        }
    });
}

/// Serves the Wasmbed dialect from the fleet on `listener`: `devices` lists every device of
/// every gateway, other ops go to the device's owner.
pub async fn serve(listener: TcpListener, client: FleetClient) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let client = client.clone();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut reader = BufReader::new(r);
            // Events are written as they come (progress bars move), replies in request order.
            let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
            let writer = tokio::spawn(async move {
                while let Some(v) = rx.recv().await {
                    let mut text = v.to_string();
                    text.push('\n');
                    if w.write_all(text.as_bytes()).await.is_err() {
                        return;
                    }
                }
                let _ = w.shutdown().await;
            });
            loop {
                let mut line = Vec::new();
                match (&mut reader)
                    .take(MAX_LINE)
                    .read_until(b'\n', &mut line)
                    .await
                {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match serde_json::from_slice::<Value>(&line) {
                    Ok(Value::Object(req)) if req.get("op") == Some(&json!("devices")) => {
                        let id = req.get("id").cloned().unwrap_or(Value::Null);
                        let reply = match client.devices_result().await {
                            Ok(r) => json!({"id": id, "ok": true, "result": r}),
                            Err(e) => error_reply(
                                id,
                                "INTERNAL",
                                e.to_string(),
                                "check the fleet's NATS servers",
                            ),
                        };
                        let _ = tx.send(reply);
                    }
                    Ok(Value::Object(req)) => {
                        let limits = (MAX_BODY, Duration::from_secs(120));
                        forward(&client, req, &mut reader, &tx, limits).await
                    }
                    _ => {
                        let _ = tx.send(error_reply(
                            Value::Null,
                            "BAD_REQUEST",
                            "a request must be a JSON object".into(),
                            "send one JSON request per line",
                        ));
                    }
                }
            }
            drop(tx);
            let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
        });
    }
}
