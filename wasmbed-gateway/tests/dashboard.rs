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

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use common::http::{http_gateway, json_of};
use common::*;
use wasmbed_gateway::config::Config;

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
        self.frames().await;
        let png = self.client.screenshot().await.unwrap();
        self.client
            .set_window_size(w as u32, h as u32)
            .await
            .unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// Waits for the page to lay out and paint twice (after a resize or a swap).
    async fn frames(&self) {
        self.js("return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))));")
            .await;
    }

    /// Fails if the page is wider than the window (a horizontal scroll bar).
    async fn assert_fits(&self, page: &str) {
        let v = self
            .js("return [document.documentElement.scrollWidth, window.innerWidth];")
            .await;
        let (content, window) = (v[0].as_i64().unwrap(), v[1].as_i64().unwrap());
        assert!(
            content <= window,
            "{page} is {content} px wide in a {window} px window"
        );
    }

    /// Drops a file named `name` holding `text` on the deploy box, as a desktop's file manager
    /// would (a `drop` event carrying a DataTransfer), and waits for the deploy's reply.
    async fn drop_file(&self, name: &str, text: &str) -> String {
        self.js("document.querySelector('#deploy-result').dataset.state = 'waiting';")
            .await;
        let highlighted = self
            .client
            .execute(
                "const dt = new DataTransfer();
                 dt.items.add(new File([arguments[1]], arguments[0], {type: 'text/plain'}));
                 const zone = document.querySelector('#drop');
                 const ev = t => new DragEvent(t, {dataTransfer: dt, bubbles: true, cancelable: true});
                 zone.dispatchEvent(ev('dragenter'));
                 zone.dispatchEvent(ev('dragover'));
                 const over = zone.classList.contains('over');
                 zone.dispatchEvent(ev('drop'));
                 return over && !zone.classList.contains('over');",
                vec![json!(name), json!(text)],
            )
            .await
            .unwrap();
        assert_eq!(
            highlighted, true,
            "the drop box lights up while dragged over"
        );
        self.until(
            "the dropped file's deploy",
            "['ok', 'error'].includes(document.querySelector('#deploy-result').dataset.state)",
        )
        .await;
        let state = self
            .js("return document.querySelector('#deploy-result').dataset.state;")
            .await;
        let out = self.text("#deploy-result").await;
        assert_eq!(state, "ok", "deploy of the dropped {name} failed: {out}");
        out
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
    let (gw, dir) = http_gateway(Some(TOKEN), None).await;
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

    // Signed in: the device list shows the simulated board, online, with its identity as the
    // API reports it.
    b.fill("#token", TOKEN).await;
    b.click("form button[type=submit]").await;
    b.until(
        "the devices table",
        "document.querySelector('#devices tr[data-device=\"sim\"][data-online=\"true\"]')",
    )
    .await;
    let row = b.text("#devices tr[data-device=\"sim\"]").await;
    assert!(row.contains("online") && row.contains("sim"), "{row}");
    let header = b.text("#devices thead").await;
    for col in [
        "Board",
        "Firmware",
        "Protocol",
        "Slots",
        "Memory",
        "Identity",
        "Last seen",
        "Why offline",
    ] {
        assert!(header.contains(col), "no {col} column: {header}");
    }
    let proto = b.js("return document.querySelector('#devices tr[data-device=\"sim\"]').children[4].innerText;").await;
    assert_eq!(proto, "2", "protocol column");
    let listed: Value = b
        .js("return fetch('/api/devices').then(r => r.json());")
        .await;
    let identity = listed["result"]["devices"][0]["identity"]["state"].clone();
    assert!(
        identity.is_string(),
        "the sim reports an identity: {listed}"
    );
    let shown = b
        .js("return document.querySelector('#devices tr[data-device=\"sim\"] [data-identity]')?.dataset.identity ?? null;")
        .await;
    assert_eq!(shown, identity, "identity column vs GET /api/devices");
    b.until(
        "the live connection",
        "document.querySelector('[sse-connect]') && htmx",
    )
    .await;
    b.assert_fits("/ at 1280×800").await;
    b.shot("devices").await;
    b.assert_clean_console("/").await;

    // Latency: the CLI's bench and the page measure the same requests. Nothing else has asked
    // the sim for STATUS yet, so the page's status row holds the bench's requests alone and its
    // percentiles must be the bench's (same nearest-rank definition; the page's HDR histogram
    // keeps 3 significant digits). The table follows live, without a reload.
    c.goto(&format!("{base}/latency")).await.unwrap();
    b.until(
        "the latency page",
        "document.querySelector('#latency-table')",
    )
    .await;
    let count_before = b
        .js("const r = document.querySelector('#latency tr[data-op=\"status\"][data-device=\"sim\"]'); return r ? Number(r.dataset.count) : 0;")
        .await;
    assert_eq!(count_before, 0, "STATUS requests before the bench");
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
        .args(["--json", "bench", "status", "-n", "40", "--warmup", "0"])
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
    assert_eq!(g["n"], 40, "{doc}");
    b.until(
        "the bench's requests in the table, live",
        "Number(document.querySelector('#latency tr[data-op=\"status\"][data-device=\"sim\"]')?.dataset.count) === 40",
    )
    .await;
    // The Total cell as shown: "p50 / p95 / p99".
    let total = b
        .text("#latency tr[data-op=\"status\"][data-device=\"sim\"] td:nth-child(5)")
        .await;
    let shown: Vec<f64> = total
        .split('/')
        .map(|x| x.trim().parse().unwrap())
        .collect();
    for (i, key) in ["p50", "p95", "p99"].into_iter().enumerate() {
        let cli = g[key].as_f64().unwrap();
        assert!(
            (shown[i] - cli).abs() <= cli * 0.002 + 0.002,
            "{key}: the page shows {} ms, bench measured {cli} ms (page: {total}; bench: {g})",
            shown[i]
        );
    }
    // The same requests per time window: the windows table and chart of `status · sim` hold
    // the 40 requests, window by window as GET /api/latency says; choosing a window draws its
    // distribution.
    c.execute(
        "const s = document.querySelector('#lat-key'); s.value = 'status · sim'; s.dispatchEvent(new Event('change'));",
        vec![],
    )
    .await
    .unwrap();
    b.until(
        "the bench's requests in the windows table",
        "document.querySelector('#chart-windows .uplot') && document.querySelector('#chart-windows').dataset.key === 'status · sim' && [...document.querySelectorAll('#lat-windows tr[data-start]')].reduce((n, r) => n + Number(r.dataset.count), 0) === 40",
    )
    .await;
    let shown = b
        .js("return [...document.querySelectorAll('#lat-windows tr[data-start]')].map(r => [Number(r.dataset.start), Number(r.dataset.count)]);")
        .await;
    let report: Value = b
        .js("return fetch('/api/latency').then(r => r.json());")
        .await;
    let status_row = report["latency"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["op"] == "status" && s["device"] == "sim")
        .unwrap_or_else(|| panic!("no status row: {report}"));
    // The table lists the newest window first.
    let api_windows: Vec<Value> = status_row["windows"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|w| json!([w["start"], w["total"]["count"]]))
        .collect();
    assert_eq!(
        shown,
        json!(api_windows),
        "windows table vs GET /api/latency"
    );
    if api_windows.len() == 1 {
        // All 40 in one window (unless the bench straddled a minute): its row shows the
        // bench's percentiles too.
        let cell = b.text("#lat-windows tr[data-start] td:nth-child(4)").await;
        let shown: Vec<f64> = cell.split('/').map(|x| x.trim().parse().unwrap()).collect();
        for (i, key) in ["p50", "p95", "p99"].into_iter().enumerate() {
            let cli = g[key].as_f64().unwrap();
            assert!(
                (shown[i] - cli).abs() <= cli * 0.002 + 0.002,
                "window {key}: the page shows {} ms, bench measured {cli} ms ({cell}; {g})",
                shown[i]
            );
        }
    }
    let newest = &api_windows[0];
    c.execute(
        "const s = document.querySelector('#lat-window'); s.value = String(arguments[0]); s.dispatchEvent(new Event('change'));",
        vec![newest[0].clone()],
    )
    .await
    .unwrap();
    b.until(
        "the chosen window's distribution",
        &format!(
            "document.querySelector('#chart-hist').dataset.window === '{}' && Number(document.querySelector('#chart-hist').dataset.count) === {}",
            newest[0], newest[1]
        ),
    )
    .await;
    b.assert_clean_console("/latency").await;

    // One device: deploy by upload (C source, built by the gateway) with progress, then start.
    c.goto(&format!("{base}/devices/sim")).await.unwrap();
    b.until("the device page", "document.querySelector('#deploy-file')")
        .await;
    b.assert_fits("/devices/sim at 1280×800").await;
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

    // Another site's page in the same browser (same site, other port: the SameSite=Strict cookie
    // goes along) posts an unload: refused by the Origin check, the module stays.
    let evil = EvilSite::start(&format!("{base}/api/devices/sim/unload")).await;
    c.goto(&evil.url).await.unwrap();
    b.until("the cross-origin post sent", "document.title === 'sent'")
        .await;
    assert!(
        evil.hits() >= 1,
        "the other site's page was not loaded from it"
    );
    let status: Value = json_of(
        b.http
            .get(format!("{base}/api/devices/sim/status"))
            .bearer_auth(TOKEN),
    )
    .await;
    let loaded = status["result"]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["module_id"] == "math_ops");
    assert!(loaded, "a cross-origin POST unloaded the module: {status}");
    b.console_errors().await; // the other site's refused request, if logged
    c.goto(&format!("{base}/devices/sim")).await.unwrap();
    b.until("the device page", "document.querySelector('#deploy-file')")
        .await;

    // The keyboard reaches everything: Tab from the top lands on the skip link first, then
    // through the navigation to the run and deploy controls, each with a visible focus ring.
    let mut seen = Vec::new();
    for _ in 0..40 {
        let tab = KeyActions::new("keyboard".into())
            .then(KeyAction::Down {
                value: char::from(Key::Tab),
            })
            .then(KeyAction::Up {
                value: char::from(Key::Tab),
            });
        c.perform_actions(tab).await.unwrap();
        let v = b
            .js("const e = document.activeElement; return [e.id || e.dataset.action || e.className || e.tagName, getComputedStyle(e).outlineStyle];")
            .await;
        let (name, outline) = (v[0].as_str().unwrap().to_string(), v[1].clone());
        assert_ne!(outline, "none", "{name} has focus but no focus ring");
        seen.push(name);
        if seen.last().map(String::as_str) == Some("deploy-file") {
            break;
        }
    }
    assert_eq!(seen[0], "skip", "Tab order: {seen:?}");
    for want in ["run-module", "start", "stop", "unload", "deploy-file"] {
        assert!(
            seen.iter().any(|s| s == want),
            "Tab never reached {want}: {seen:?}"
        );
    }

    // Module output shows up live in the log, told apart from console text. The module comes
    // by a drop on the deploy box.
    let out = b
        .drop_file(
            "log_hello.c",
            &String::from_utf8(module_source("log_hello")).unwrap(),
        )
        .await;
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

    // Latency again, with every operation above: the deploys' compile and transfer phases and
    // the device round trips have figures, and the charts draw the chosen operation.
    c.goto(&format!("{base}/latency")).await.unwrap();
    b.until(
        "the build_and_deploy row",
        "document.querySelector('#latency tr[data-op=\"build_and_deploy\"][data-device=\"sim\"]')",
    )
    .await;
    let cells = b
        .js("return [...document.querySelector('#latency tr[data-op=\"build_and_deploy\"][data-device=\"sim\"]').children].map(td => td.innerText);")
        .await;
    for (i, phase) in [(5, "compile"), (6, "transfer"), (7, "device")] {
        let cell = cells[i].as_str().unwrap();
        assert!(
            cell.split('/').count() == 3 && !cell.contains('–'),
            "build_and_deploy has no {phase} figures: {cells}"
        );
    }
    b.until("the charts", "document.querySelector('#chart-time .uplot') && document.querySelector('#chart-hist .uplot')").await;
    c.execute(
        "const s = document.querySelector('#lat-key'); s.value = 'build_and_deploy · sim'; s.dispatchEvent(new Event('change'));",
        vec![],
    )
    .await
    .unwrap();
    b.until(
        "the chosen operation charted",
        "document.querySelector('#chart-hist').dataset.key === 'build_and_deploy · sim'",
    )
    .await;
    b.assert_fits("/latency at 1280×800").await;
    b.shot("latency").await;
    b.assert_clean_console("/latency").await;

    // Phone width: nothing wider than the screen.
    c.set_window_size(390, 844).await.unwrap();
    for (path, name) in [
        ("/", Some("devices-phone")),
        ("/devices/sim", Some("device-phone")),
        ("/latency", None),
    ] {
        c.goto(&format!("{base}{path}")).await.unwrap();
        b.until("the page", "document.querySelector('main h1')")
            .await;
        b.frames().await;
        b.assert_fits(&format!("{path} at phone width")).await;
        if let Some(name) = name {
            b.shot(name).await;
        }
    }
    b.assert_clean_console("phone width").await;

    b.client.clone().close().await.unwrap();
}

/// The simulated board with an identity key (`--identity-file`) on a TCP port of its own; killed
/// on drop.
async fn sim_with_identity(key: &Path) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(sim_bin())
        .args(["--listen", "127.0.0.1:0", "--identity-file"])
        .arg(key)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("wasmbed-agent-sim starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if let Some(a) = l.trim().strip_prefix("listening on ") {
                return a.to_string();
            }
        }
        panic!("the simulator exited before listening");
    })
    .await
    .expect("the simulator says where it listens within 20 s");
    // Its later output is not read: keep the pipe drained.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

/// Device identity from the device page: a board with an identity key is `pending` (the
/// gateway's default enrollment is approve); *Approve* pins its key (the facts turn `approved`
/// live, the state file holds the fingerprint, commands go), *Forget* makes it pending again;
/// another site's page posting an approve with the visitor's cookie is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_buttons_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, addr) = sim_with_identity(&dir.path().join("board.key")).await;
    let token_file = dir.path().join("token");
    common::write_private(&token_file, TOKEN);
    let state = dir.path().join("state");
    let toml = format!(
        "http = \"127.0.0.1:0\"\ntoken_file = {token:?}\nstate_dir = {state:?}\n\n[devices.board]\nendpoint = \"tcp:{addr}\"\n",
        token = token_file.display().to_string(),
        state = state.display().to_string(),
    );
    let cfg = Config::parse(&toml, Path::new("test.toml")).unwrap();
    let gw = gateway_cfg(cfg).await;
    wait_online(&gw, "board").await;
    let base = format!("http://{}", gw.http_addr.unwrap());
    let api_identity = |v: &Value| v["result"]["devices"][0]["identity"].clone();
    // A command the identity gate holds back while pending (INFO and STATUS always go): the
    // error code of an unload of a module that is not there.
    let http = reqwest::Client::new();
    let unload_error = || async {
        let v: Value = http
            .post(format!("{base}/api/devices/board/unload"))
            .bearer_auth(TOKEN)
            .json(&json!({"module_id": "absent"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["error"]["code"].clone()
    };
    assert_eq!(unload_error().await, "DEVICE_PENDING");

    let b = Browser::start().await;
    let c = &b.client;
    c.goto(&format!("{base}/login")).await.unwrap();
    b.fill("#token", TOKEN).await;
    b.click("form button[type=submit]").await;
    b.until("signed in", "location.pathname === '/'").await;
    c.goto(&format!("{base}/devices/board")).await.unwrap();
    b.until(
        "the board pending",
        "document.querySelector('#identity [data-identity=\"pending\"]')",
    )
    .await;
    let listed: Value = b
        .js("return fetch('/api/devices').then(r => r.json());")
        .await;
    let fp = api_identity(&listed)["fingerprint"]
        .as_str()
        .unwrap_or_else(|| panic!("a pending board shows the key it proved: {listed}"))
        .to_string();

    // Another site's page posts an approve with the visitor's cookie: refused, still pending.
    let evil = EvilSite::posting(&format!("{base}/api/devices/board/approve"), "{}").await;
    c.goto(&evil.url).await.unwrap();
    b.until("the cross-origin post sent", "document.title === 'sent'")
        .await;
    assert!(evil.hits() >= 1, "the other site's page was not loaded");
    let listed: Value = b
        .http
        .get(format!("{base}/api/devices"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        api_identity(&listed)["state"],
        "pending",
        "a cross-origin POST approved the board: {listed}"
    );
    b.console_errors().await; // the other site's refused request, if logged

    // Approve: the reply, then the facts live, the API and the state file agree.
    c.goto(&format!("{base}/devices/board")).await.unwrap();
    b.until("the device page", "document.querySelector('#approve')")
        .await;
    b.js("document.querySelector('#identity-result').dataset.state = 'waiting';")
        .await;
    b.click("#approve").await;
    b.until(
        "the approve's reply",
        "['ok', 'error'].includes(document.querySelector('#identity-result').dataset.state)",
    )
    .await;
    let out = b.text("#identity-result").await;
    assert!(out.contains("approved") && out.contains(&fp), "{out}");
    b.until(
        "the facts approved, live",
        "document.querySelector('#identity [data-identity=\"approved\"]')",
    )
    .await;
    let pins = std::fs::read_to_string(state.join("identities.json")).unwrap();
    assert!(pins.contains(&fp), "{pins}");
    // Commands go to the board now (which has no such module).
    let code = unload_error().await;
    assert!(
        code.is_string() && code != "DEVICE_PENDING",
        "unload after approve: {code}"
    );
    b.assert_fits("/devices/board at 1280×800").await;
    b.shot("identity").await;
    b.assert_clean_console("/devices/board").await;

    // Forget: pending again, commands refused, the pin gone from the state file.
    b.js("document.querySelector('#identity-result').dataset.state = 'waiting';")
        .await;
    b.click("#forget").await;
    b.until(
        "the forget's reply",
        "document.querySelector('#identity-result').dataset.state === 'ok'",
    )
    .await;
    assert!(b.text("#identity-result").await.contains("pending"));
    b.until(
        "the facts pending, live",
        "document.querySelector('#identity [data-identity=\"pending\"]')",
    )
    .await;
    let pins = std::fs::read_to_string(state.join("identities.json")).unwrap();
    assert!(!pins.contains(&fp), "{pins}");
    assert_eq!(unload_error().await, "DEVICE_PENDING");
    b.assert_clean_console("/devices/board").await;
    b.client.clone().close().await.unwrap();
}

/// Another web site on this machine (127.0.0.1, another port: the same site to the browser,
/// not the same origin) whose page posts a JSON body to `target` with the
/// visitor's cookies, as a CSRF attack would, and then sets its title to `sent`.
struct EvilSite {
    url: String,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    _server: tokio::task::JoinHandle<()>,
}

impl EvilSite {
    async fn start(target: &str) -> Self {
        Self::posting(target, r#"{"module_id": "math_ops"}"#).await
    }

    /// The same, posting `body` (JSON text).
    async fn posting(target: &str, body: &str) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        let page = format!(
            "<!doctype html><title>evil</title><script>\
             fetch({target:?}, {{method: 'POST', mode: 'no-cors', credentials: 'include', \
             headers: {{'Content-Type': 'text/plain'}}, body: {body:?}}})\
             .finally(() => {{ document.title = 'sent'; }});</script>"
        );
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let h = hits.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                    .await
                    .map_or(0, |r| r.unwrap_or(0));
                let (status, body) = if buf[..n].starts_with(b"GET / ") {
                    h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    ("200 OK", page.as_str())
                } else {
                    ("404 Not Found", "")
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            }
        });
        EvilSite {
            url,
            hits,
            _server: server,
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for EvilSite {
    fn drop(&mut self) {
        self._server.abort();
    }
}

/// The fleet's pages: a gateway in a fleet (real nats-server) with the simulated board, an
/// application applied to it; `/apps` shows it converged with the device's phase, and a changed
/// spec appears live (server-sent events, no reload); `/gateways` shows the gateway online and
/// the device as it reported it to the fleet. Every wait polls the page for the state it wants
/// (bounded by `WAIT`): the fleet's heartbeats and reconcile loop run late under load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_page_in_chromium() {
    use wasmbed_api::app::Application;
    use wasmbed_gateway::fleet::apps::AppStore;
    use wasmbed_gateway::fleet::harness::NatsServer;
    use wasmbed_gateway::fleet::{FleetClient, FleetConfig};

    let nats = NatsServer::start().unwrap();
    // The default claim TTL (15 s): a short one lets a heartbeat delayed by a loaded machine
    // expire the gateway's claims, and the device drops out of the application for a while.
    let fleet = FleetConfig::new(nats.url(), "gw-dash");
    let (gw, _dir) = http_gateway(Some(TOKEN), Some(fleet)).await;
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
    // One condition for the whole row: the row is swapped as a whole every time it changes.
    b.until(
        "adder completed on sim with generation 1 and its result",
        "[...document.querySelectorAll('#apps tr.appdev[data-app=\"adder\"][data-device=\"sim\"][data-phase=\"Completed\"]')].some(r => r.innerText.includes('1 / 1') && r.innerText.includes('ret_i32=3'))",
    )
    .await;
    b.until(
        "adder converged",
        "document.querySelector('#apps tr.app[data-app=\"adder\"][data-converged=\"true\"]')",
    )
    .await;
    b.assert_fits("/apps at 1280×800").await;
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
    let api = poll_json(&b, "/api/apps", "adder converged at generation 2", |v| {
        v["apps"][0]["metadata"]["name"] == "adder"
            && v["apps"][0]["metadata"]["generation"] == 2
            && v["apps"][0]["status"]["converged"] == true
    })
    .await;
    assert_eq!(
        api["apps"][0]["status"]["devices"][0]["device"], "sim",
        "{api}"
    );

    // The gateways and the fleet's devices: this gateway online, serving the sim, which it
    // reports online with its board.
    cl.goto(&format!("{base}/gateways")).await.unwrap();
    b.until(
        "gw-dash online, serving sim",
        "[...document.querySelectorAll('#gateways tr[data-gateway=\"gw-dash\"]')].some(r => r.innerText.includes('online') && r.innerText.includes('sim'))",
    )
    .await;
    b.until(
        "sim reported by gw-dash, online",
        "document.querySelector('#fleet-devices tr[data-device=\"sim\"][data-gateway=\"gw-dash\"][data-online=\"true\"]')",
    )
    .await;
    let board = b
        .text("#fleet-devices tr[data-device=\"sim\"] td:nth-child(4)")
        .await;
    assert_eq!(board, "sim", "board column");
    b.assert_fits("/gateways at 1280×800").await;
    b.shot("gateways").await;
    let devices = poll_json(&b, "/api/fleet/devices", "sim in the Device records", |v| {
        v["devices"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["metadata"]["name"] == "sim"))
    })
    .await;
    let sim = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["metadata"]["name"] == "sim")
        .unwrap();
    assert_eq!(sim["status"]["gateway"], "gw-dash", "{devices}");
    assert_eq!(sim["status"]["board"], "sim", "{devices}");

    // Phone width.
    cl.set_window_size(390, 844).await.unwrap();
    for path in ["/apps", "/gateways"] {
        cl.goto(&format!("{base}{path}")).await.unwrap();
        b.until("the page", "document.querySelector('main h1')")
            .await;
        b.frames().await;
        b.assert_fits(&format!("{path} at phone width")).await;
    }
    b.assert_clean_console("/gateways").await;
    b.client.clone().close().await.unwrap();
}

/// Fetches `path` from the page (with its cookie) until `ok` holds for the JSON, at most `WAIT`.
async fn poll_json(b: &Browser, path: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v = b
            .client
            .execute(
                "return fetch(arguments[0]).then(r => r.json());",
                vec![json!(path)],
            )
            .await
            .unwrap();
        if ok(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what} in {path}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
