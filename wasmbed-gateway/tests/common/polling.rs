//! Fleet test helpers shared by the fleet test files: bounded polling and a slot's state
//! asked through the fleet.

use std::time::Duration;

use serde_json::json;
use wasmbed_gateway::fleet::FleetClient;

/// Polls `probe` every 100 ms until it returns Some; fails the test naming `what` after `secs`.
pub async fn until<T, F, Fut>(what: &str, secs: u64, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The slot of `module` on `dev` (a status request through the fleet): its state, if loaded.
pub async fn slot_state(c: &FleetClient, dev: &str, module: &str) -> Option<String> {
    let r = c
        .request(
            &json!({"op": "status", "device": dev, "id": 1}),
            b"",
            |_| {},
        )
        .await
        .ok()?;
    r.reply["result"]["slots"]
        .as_array()?
        .iter()
        .find(|s| s["module_id"] == module)
        .and_then(|s| s["state"].as_str().map(str::to_string))
}
