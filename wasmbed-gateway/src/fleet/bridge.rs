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
            loop {
                let mut line = Vec::new();
                match (&mut reader)
                    .take(MAX_LINE)
                    .read_until(b'\n', &mut line)
                    .await
                {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
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
                        forward(
                            &client,
                            req,
                            &mut reader,
                            &tx,
                            (MAX_BODY, Duration::from_secs(120)),
                        )
                        .await
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
                drop(tx);
                while let Some(v) = rx.recv().await {
                    let mut text = v.to_string();
                    text.push('\n');
                    if w.write_all(text.as_bytes()).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
}
