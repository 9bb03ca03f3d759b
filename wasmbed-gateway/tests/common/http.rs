//! The dashboard and HTTP API side (`--http`): a gateway serving it with the real simulated
//! board, an HTTP client, and requests sent in one call.

use std::time::Duration;

use serde_json::Value;
use wasmbed_gateway::config::Config;
use wasmbed_gateway::fleet::FleetConfig;

/// A gateway with the simulated board (online) and `--http` on 127.0.0.1:0; with `token`, a
/// token file (mode 0600) hosts and browsers must present; with `fleet`, a fleet member. The
/// directory holds the token file as `token`.
pub async fn http_gateway(
    token: Option<&str>,
    fleet: Option<FleetConfig>,
) -> (wasmbed_gateway::run::Running, tempfile::TempDir) {
    super::sim_bin();
    let dir = tempfile::tempdir().unwrap();
    let token_file = token.map(|t| {
        let p = dir.path().join("token");
        super::write_private(&p, &format!("{t}\n"));
        p
    });
    let gw = super::gateway_cfg(Config {
        sim: true,
        http: Some("127.0.0.1:0".parse().unwrap()),
        token_file,
        fleet,
        ..Default::default()
    })
    .await;
    super::wait_online(&gw, "sim").await;
    (gw, dir)
}

/// A client that does not follow redirects (the tests look at them) and gives up after 120 s.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Sends `req`: the response, whatever its status.
pub async fn send(req: reqwest::RequestBuilder) -> reqwest::Response {
    req.send().await.unwrap()
}

/// Sends `req` and reads its body as JSON, whatever the status.
pub async fn json_of(req: reqwest::RequestBuilder) -> Value {
    send(req).await.json().await.unwrap()
}
