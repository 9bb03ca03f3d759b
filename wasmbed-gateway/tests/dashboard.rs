//! The dashboard in a real browser: headless Chromium driven over WebDriver (chromedriver)
//! against a gateway with the real simulated board, signed in with its token. Each step checks
//! what the page shows and that the browser's console stayed free of errors, and takes a
//! screenshot into `target/tmp/dashboard/` (or `$WASMBED_SCREENSHOTS_DIR`: docs/dashboard/ holds
//! the copies docs/dashboard.md shows).
//!
//! Needs `chromium` and `chromium-driver` (scripts/setup.sh installs them); `WASMBED_CHROMEDRIVER`
//! names another chromedriver.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use wasmbed_gateway::config::Config;

use common::*;

const TOKEN: &str = "dashboard-test-token";
const WAIT: Duration = Duration::from_secs(60);

struct Browser {
    client: Client,
    driver_url: String,
    http: reqwest::Client,
    shots: PathBuf,
    _driver: tokio::process::Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(pid) = self._driver.id() {
            // SAFETY: kill(2) on the process group this test started; no memory is involved.
            unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGKILL) };
        }
    }
}

impl Browser {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let exe = std::env::var("WASMBED_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let driver = tokio::process::Command::new(&exe)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            // Its own process group: dropping the browser ends chromedriver and Chromium alike,
            // also when the test fails half way.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {exe}: {e}: install chromium and chromium-driver (scripts/setup.sh)")
            });
        let driver_url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut ready = false;
        for _ in 0..100 {
            if let Ok(r) = http.get(format!("{driver_url}/status")).send().await {
                if r.status().is_success() {
                    ready = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            ready,
            "chromedriver did not answer on port {port} within 10 s"
        );
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,800", "--hide-scrollbars"],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.as_object().unwrap().clone())
            .connect(&driver_url)
            .await
            .expect("chromedriver starts a headless Chromium session");
        let shots = std::env::var_os("WASMBED_SCREENSHOTS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard"));
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            client,
            driver_url,
            http,
            shots,
            _driver: driver,
        }
    }

    /// Console messages logged at error level since the last call (chromedriver's log endpoint).
    async fn console_errors(&self) -> Vec<String> {
        let sid = self.client.session_id().await.unwrap().unwrap();
        let v: Value = self
            .http
            .post(format!("{}/session/{sid}/se/log", self.driver_url))
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["value"]
            .as_array()
            .unwrap_or_else(|| panic!("no browser log: {v}"))
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].to_string())
            .collect()
    }

    async fn assert_clean_console(&self, page: &str) {
        let errors = self.console_errors().await;
        assert!(errors.is_empty(), "console errors on {page}: {errors:?}");
    }

    /// A screenshot of the whole page (the window grown to its height, at most 2400 px).
    async fn shot(&self, name: &str) {
        let (w, h) = self.client.get_window_size().await.unwrap();
        let full = self
            .js("return document.documentElement.scrollHeight;")
            .await;
        let full = (full.as_u64().unwrap() + 160).clamp(h, 2400);
        self.client
            .set_window_size(w as u32, full as u32)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let png = self.client.screenshot().await.unwrap();
        self.client
            .set_window_size(w as u32, h as u32)
            .await
            .unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Waits until `script` (a JS expression) is truthy; panics with `what` and the page's
    /// `#main` text otherwise.
    async fn until(&self, what: &str, script: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let v = self.js(&format!("return !!({script});")).await;
            if v == json!(true) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let text = self.js("return document.querySelector('main')?.innerText ?? document.body.innerText;").await;
                panic!(
                    "timed out waiting for {what}; page shows:\n{}",
                    text.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The text of `css` (read in one script: live swaps may replace the element any time).
    async fn text(&self, css: &str) -> String {
        let v = self
            .client
            .execute(
                "return document.querySelector(arguments[0])?.innerText ?? null;",
                vec![json!(css)],
            )
            .await
            .unwrap();
        v.as_str()
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_string()
    }

    async fn fill(&self, css: &str, value: &str) {
        let e = self.client.find(Locator::Css(css)).await.unwrap();
        e.clear().await.unwrap();
        if !value.is_empty() {
            e.send_keys(value).await.unwrap();
        }
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Drops `file` on the deploy form (WebDriver sets the file input) and waits for the reply.
    async fn deploy(&self, file: &Path) -> String {
        self.js("document.querySelector('#deploy-result').dataset.state = 'waiting';")
            .await;
        let input = self
            .client
            .find(Locator::Css("#deploy-file"))
            .await
            .unwrap();
        let file = file.canonicalize().unwrap();
        input.send_keys(file.to_str().unwrap()).await.unwrap();
        self.until(
            "the deploy's reply",
            "['ok', 'error'].includes(document.querySelector('#deploy-result').dataset.state)",
        )
        .await;
        let state = self
            .js("return document.querySelector('#deploy-result').dataset.state;")
            .await;
        let text = self.text("#deploy-result").await;
        assert_eq!(state, "ok", "deploy of {} failed: {text}", file.display());
        text
    }

    /// Runs an action from the run form and returns its output once answered.
    async fn act(&self, button: &str) -> String {
        self.js("document.querySelector('#run-result').dataset.state = 'waiting';")
            .await;
        self.click(button).await;
        self.until(
            "the action's reply",
            "['ok', 'error'].includes(document.querySelector('#run-result').dataset.state)",
        )
        .await;
        self.text("#run-result").await
    }
}

async fn dashboard_gateway() -> (wasmbed_gateway::run::Running, tempfile::TempDir) {
    sim_bin();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    common::write_private(&token_file, TOKEN);
    let gw = gateway_cfg(Config {
        sim: true,
        http: Some("127.0.0.1:0".parse().unwrap()),
        token_file: Some(token_file),
        ..Default::default()
    })
    .await;
    wait_online(&gw, "sim").await;
    (gw, dir)
}

/// `wasmbed-host` next to the test binaries (built by `cargo test --workspace`).
fn host_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|d| d.join("wasmbed-host"))
        .find(|p| p.is_file());
    p.unwrap_or_else(|| {
        panic!(
            "wasmbed-host not found next to {}: run `cargo build -p wasmbed-host` first",
            exe.display()
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_chromium() {
    let (gw, dir) = dashboard_gateway().await;
    let base = format!("http://{}", gw.http_addr.unwrap());
    let b = Browser::start().await;
    let c = &b.client;

    // Unauthorized: the devices page sends the browser to sign in; the API refuses it.
    c.goto(&format!("{base}/")).await.unwrap();
    b.until(
        "the sign-in page",
        "location.pathname === '/login' && document.querySelector('#token')",
    )
    .await;
    let devices_table = c.find_all(Locator::Css("#devices")).await.unwrap();
    assert!(
        devices_table.is_empty(),
        "an unauthorized browser must not see the devices"
    );
    let api = b
        .js("return fetch('/api/devices').then(r => r.status);")
        .await;
    assert_eq!(api, 401, "the API refuses a browser without the token");
    b.fill("#token", "wrong").await;
    b.click("form button[type=submit]").await;
    b.until("the refusal", "document.querySelector('.error')")
        .await;
    assert!(b.text(".error").await.contains("wrong token"));
    b.shot("login").await;
    // The refused sign-in's 401 is the one expected console line.
    let errs = b.console_errors().await;
    assert!(errs.iter().all(|e| e.contains("401")), "{errs:?}");

    // Signed in: the device list shows the simulated board, online.
    b.fill("#token", TOKEN).await;
    b.click("form button[type=submit]").await;
    b.until(
        "the devices table",
        "document.querySelector('#devices tr[data-device=\"sim\"]')",
    )
    .await;
    let row = b.text("#devices tr[data-device=\"sim\"]").await;
    assert!(row.contains("online") && row.contains("sim"), "{row}");
    let proto = b.js("return document.querySelector('#devices tr[data-device=\"sim\"]').children[4].innerText;").await;
    assert_eq!(proto, "2", "protocol column");
    b.until(
        "the live connection",
        "document.querySelector('[sse-connect]') && htmx",
    )
    .await;
    b.shot("devices").await;
    b.assert_clean_console("/").await;

    // One device: deploy by upload (C source, built by the gateway) with progress, then start.
    c.goto(&format!("{base}/devices/sim")).await.unwrap();
    b.until("the device page", "document.querySelector('#deploy-file')")
        .await;
    let src = dir.path().join("math_ops.c");
    std::fs::write(&src, module_source("math_ops")).unwrap();
    let out = b.deploy(&src).await;
    assert!(out.contains("LOAD_OK"), "{out}");
    let phases = b
        .js("return document.querySelector('#deploy-status').dataset.phases;")
        .await;
    let phases = phases.as_str().unwrap();
    for p in ["to gateway", "compile", "upload", "done"] {
        assert!(
            phases.split(',').any(|x| x == p),
            "progress phase {p} not shown: {phases}"
        );
    }
    assert_eq!(
        b.js("return document.querySelector('#deploy-progress').value;")
            .await,
        100
    );
    b.until(
        "the slot table",
        "document.querySelector('#slot-table tr[data-module=\"math_ops\"]')",
    )
    .await;

    assert_eq!(
        b.js("return document.querySelector('#run-module').value;")
            .await,
        "math_ops"
    );
    // With the keyboard only: type into the form, Enter starts.
    b.fill("#run-func", "add").await;
    b.fill("#run-args", "").await;
    b.js("document.querySelector('#run-result').dataset.state = 'waiting';")
        .await;
    let args = c.find(Locator::Css("#run-args")).await.unwrap();
    args.send_keys(&format!("200, 26{}", char::from(Key::Enter)))
        .await
        .unwrap();
    b.until(
        "the start's reply",
        "['ok', 'error'].includes(document.querySelector('#run-result').dataset.state)",
    )
    .await;
    let out = b.text("#run-result").await;
    assert!(
        out.contains("RESULT status=OK") && out.contains("ret = 226"),
        "{out}"
    );
    b.until(
        "the job record",
        "document.querySelector('#jobs tr[data-module=\"math_ops\"][data-state=\"done\"]')",
    )
    .await;

    // Module output shows up live in the log, told apart from console text.
    let out = b.deploy(&modules_dir().join("log_hello.c")).await;
    assert!(out.contains("LOAD_OK"), "{out}");
    b.fill("#run-func", "").await;
    b.fill("#run-args", "").await;
    let out = b.act("#run button[data-action=start]").await;
    assert!(out.contains("status=OK"), "{out}");
    b.until(
        "module output in the log",
        "[...document.querySelectorAll('#log li.module')].some(li => li.innerText.includes('hello from wasm'))",
    )
    .await;
    let misfiled = b
        .js("return [...document.querySelectorAll('#log li.console')].some(li => li.innerText.includes('hello from wasm'));")
        .await;
    assert_eq!(misfiled, false, "module output shown as console text");

    // Unload frees a slot (the simulated board has two).
    b.fill("#run-module", "math_ops").await;
    let out = b.act("#run button[data-action=unload]").await;
    assert!(out.contains("UNLOAD_OK"), "{out}");
    b.until(
        "the slot gone",
        "!document.querySelector('#slot-table tr[data-module=\"math_ops\"]')",
    )
    .await;

    // A stop ends a busy loop.
    b.deploy(&modules_dir().join("busy_loop.c")).await;
    b.fill("#run-func", "busy_loop").await;
    b.click("#run-wait").await;
    let out = b.act("#run button[data-action=start]").await;
    assert!(out.contains("START_OK"), "{out}");
    b.until(
        "the running job",
        "document.querySelector('#jobs tr[data-module=\"busy_loop\"][data-state=\"running\"]')",
    )
    .await;
    b.shot("device").await;
    let out = b.act("#run button[data-action=stop]").await;
    assert!(out.contains("STOP") || out.contains("RESULT"), "{out}");
    b.until(
        "the stopped job",
        "document.querySelector('#jobs tr[data-module=\"busy_loop\"][data-state=\"done\"]')",
    )
    .await;
    let status = b.text("#jobs tr[data-module=\"busy_loop\"]").await;
    assert!(status.contains("STOPPED"), "{status}");
    b.assert_clean_console("/devices/sim").await;

    // Latency: the figures for `status` match what the CLI's bench measured (same requests).
    c.goto(&format!("{base}/latency")).await.unwrap();
    b.until(
        "the latency page",
        "document.querySelector('#latency-table')",
    )
    .await;
    let count_before = b
        .js("const r = document.querySelector('#latency tr[data-op=\"status\"][data-device=\"sim\"]'); return r ? Number(r.dataset.count) : 0;")
        .await
        .as_u64()
        .unwrap();
    let token_file = dir.path().join("token");
    let bench = tokio::process::Command::new(host_bin())
        .args([
            "--gateway",
            &gw.addr.to_string(),
            "--device",
            "sim",
            "--token-file",
        ])
        .arg(&token_file)
        .args(["--json", "bench", "status", "-n", "40"])
        .output()
        .await
        .unwrap();
    assert!(
        bench.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&bench.stderr)
    );
    let doc: Value = serde_json::from_slice(&bench.stdout).unwrap();
    let g = &doc["stats"]["gateway_ms"];
    b.until(
        "the bench's requests in the table",
        &format!("Number(document.querySelector('#latency tr[data-op=\"status\"][data-device=\"sim\"]')?.dataset.count) === {}", count_before + 41),
    )
    .await;
    let p50 = b
        .js("return Number(document.querySelector('#latency tr[data-op=\"status\"][data-device=\"sim\"]').dataset.p50);")
        .await
        .as_f64()
        .unwrap();
    let (min, p95) = (g["min"].as_f64().unwrap(), g["p95"].as_f64().unwrap());
    // The same requests measured by the same clock: the page's median lies within the bench's
    // spread (the few page-load STATUS requests before it cannot move it out).
    assert!(
        p50 >= min * 0.9 && p50 <= p95 * 1.1,
        "dashboard p50 {p50} ms vs bench gateway_ms {g}"
    );
    b.until("the charts", "document.querySelector('#chart-time .uplot') && document.querySelector('#chart-hist .uplot')").await;
    c.execute(
        "const s = document.querySelector('#lat-key'); s.value = 'status · sim'; s.dispatchEvent(new Event('change'));",
        vec![],
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    b.shot("latency").await;
    b.assert_clean_console("/latency").await;

    // Phone width: nothing wider than the screen.
    c.set_window_size(390, 844).await.unwrap();
    for (path, name) in [("/", "devices-phone"), ("/devices/sim", "device-phone")] {
        c.goto(&format!("{base}{path}")).await.unwrap();
        b.until("the page", "document.querySelector('main h1')")
            .await;
        let overflow = b
            .js("return document.documentElement.scrollWidth - window.innerWidth;")
            .await;
        assert!(
            overflow.as_i64().unwrap() <= 0,
            "{path} is {overflow} px wider than a phone"
        );
        b.shot(name).await;
    }
    b.assert_clean_console("phone width").await;

    b.client.clone().close().await.unwrap();
}

/// The fleet's applications page: a gateway in a fleet (real nats-server) with the simulated
/// board, an application applied to it; the page shows it converged with the device's phase,
/// and a changed spec appears live (server-sent events, no reload).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_page_in_chromium() {
    use wasmbed_api::app::Application;
    use wasmbed_gateway::fleet::apps::AppStore;
    use wasmbed_gateway::fleet::harness::NatsServer;
    use wasmbed_gateway::fleet::{FleetClient, FleetConfig};

    sim_bin();
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    common::write_private(&token_file, TOKEN);
    let mut fleet = FleetConfig::new(nats.url(), "gw-dash");
    fleet.claim_ttl = Duration::from_secs(3);
    let gw = gateway_cfg(Config {
        sim: true,
        http: Some("127.0.0.1:0".parse().unwrap()),
        token_file: Some(token_file),
        fleet: Some(fleet),
        ..Default::default()
    })
    .await;
    wait_online(&gw, "sim").await;
    let base = format!("http://{}", gw.http_addr.unwrap());
    let c = FleetClient::connect(&nats.url(), &Default::default())
        .await
        .unwrap();
    let store = AppStore::open(&c.jetstream(), 1).await.unwrap();
    let sha = store
        .put_module(&module_wasm("math_ops"), "dashboard test")
        .await
        .unwrap();
    let app = |args: Vec<i32>| -> Application {
        serde_json::from_value(json!({
            "apiVersion": "wasmbed.dev/v1alpha1", "kind": "Application",
            "metadata": {"name": "adder"},
            "spec": {"module": {"sha256": sha}, "function": "add", "args": args,
                     "selector": {"devices": ["sim"]}}
        }))
        .unwrap()
    };
    store.apply(app(vec![1, 2])).await.unwrap();

    let b = Browser::start().await;
    let cl = &b.client;
    cl.goto(&format!("{base}/apps")).await.unwrap();
    b.until("the sign-in page", "document.querySelector('#token')")
        .await;
    b.fill("#token", TOKEN).await;
    b.click("form button[type=submit]").await;
    b.until(
        "signed in",
        "location.pathname !== '/login' && document.querySelector('main h1')",
    )
    .await;
    cl.goto(&format!("{base}/apps")).await.unwrap();
    b.until(
        "adder completed on sim",
        "document.querySelector('#apps tr.appdev[data-app=\"adder\"][data-device=\"sim\"][data-phase=\"Completed\"]')",
    )
    .await;
    b.until(
        "adder converged",
        "document.querySelector('#apps tr.app[data-app=\"adder\"][data-converged=\"true\"]')",
    )
    .await;
    let row = b
        .text("#apps tr.appdev[data-app=\"adder\"][data-device=\"sim\"]")
        .await;
    assert!(row.contains("1 / 1") && row.contains("ret_i32=3"), "{row}");
    let gws = b.text("#gateways").await;
    assert!(gws.contains("gw-dash") && gws.contains("online"), "{gws}");
    b.shot("apps").await;

    // A changed spec shows up live: generation 2 and the new result, without a reload.
    b.js("window.__sameDocument = true;").await;
    store.apply(app(vec![20, 22])).await.unwrap();
    b.until(
        "generation 2 completed, live",
        "window.__sameDocument && [...document.querySelectorAll('#apps tr.appdev[data-app=\"adder\"][data-phase=\"Completed\"]')].some(r => r.innerText.includes('2 / 2') && r.innerText.includes('ret_i32=42'))",
    )
    .await;
    b.assert_clean_console("/apps").await;
    let api: Value = b.js("return fetch('/api/apps').then(r => r.json());").await;
    assert_eq!(api["apps"][0]["metadata"]["name"], "adder", "{api}");
    assert_eq!(api["apps"][0]["status"]["converged"], true, "{api}");
}
