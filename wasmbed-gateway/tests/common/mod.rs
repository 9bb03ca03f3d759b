//! Shared fakes: a scripted device over real TCP and a gateway started in-process.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use wasmbed_gateway::config::Config;

pub mod gwproc;
pub mod http;
pub mod polling;

/// What the fake sends back for one command line: chunks written one after the other.
pub type Responder = Arc<dyn Fn(&str) -> Vec<Vec<u8>> + Send + Sync>;

/// A device that answers command lines per a responder; records every line it got.
pub struct FakeDevice {
    pub port: u16,
    pub heard: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeDevice {
    pub async fn start(respond: Responder) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let heard = Arc::new(Mutex::new(Vec::new()));
        let h = heard.clone();
        let task = tokio::spawn(async move {
            loop {
                let (s, _) = listener.accept().await.unwrap();
                serve(s, respond.clone(), h.clone()).await;
            }
        });
        FakeDevice { port, heard, task }
    }

    pub fn heard(&self) -> Vec<String> {
        self.heard.lock().unwrap().clone()
    }
}

impl Drop for FakeDevice {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(s: TcpStream, respond: Responder, heard: Arc<Mutex<Vec<String>>>) {
    let mut r = BufReader::new(s);
    loop {
        let mut line = String::new();
        match r.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = line.trim_end().to_string();
        heard.lock().unwrap().push(line.clone());
        // A v1 LOAD's payload follows LOAD_READY: read it so nothing is left unread.
        let chunks = respond(&line);
        for c in chunks {
            if c == b"<DROP>" {
                return;
            }
            if let Some(n) = std::str::from_utf8(&c)
                .ok()
                .and_then(|t| t.strip_prefix("<READ "))
                .and_then(|t| t.strip_suffix('>'))
            {
                let mut buf = vec![0; n.parse().unwrap()];
                r.read_exact(&mut buf).await.unwrap();
                continue;
            }
            if c == b"<SILENCE>" {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            if r.get_mut().write_all(&c).await.is_err() {
                return;
            }
            r.get_mut().flush().await.unwrap();
        }
    }
}

/// A FW-B3-like v1 device: INFO unknown, STATUS with one slot, START add → 226.
pub fn legacy_b3() -> Responder {
    Arc::new(|line: &str| {
        let l = |s: &str| format!("{s}\n").into_bytes();
        match line.split(' ').next().unwrap() {
            "INFO" => vec![l("ERROR code=UNKNOWN_COMMAND")],
            "STATUS" => vec![l("STATUS_OK modules=\"math_ops:LOADED:wasm=460:stack_free=3000\" low_stack=\"none\" wamr_total=102400 wamr_free=90000 wamr_used=12400 wamr_highmark=13000")],
            "START" if line.contains("module_id=math_ops") => {
                vec![l("START_OK"), l("RESULT status=OK module_id=math_ops func=add ret_i32=226")]
            }
            "START" => vec![l("RESULT status=NO_MODULE")],
            "STOP" => vec![l("STOP_OK status=IDLE")],
            _ => vec![l("ERROR code=UNKNOWN_COMMAND")],
        }
    })
}

/// A FW-B3-like v1 device that accepts raw legacy LOADs (console text interleaved, replies split
/// into single bytes), reading the whole payload.
pub fn v1_loader() -> Responder {
    Arc::new(|line: &str| {
        let l = |s: &str| format!("{s}\n").into_bytes();
        let field = |k: &str| {
            line.split(' ')
                .find_map(|p| p.strip_prefix(&format!("{k}=")).map(str::to_string))
                .unwrap_or_default()
        };
        match line.split(' ').next().unwrap() {
            "INFO" => vec![l("ERROR code=UNKNOWN_COMMAND")],
            "STATUS" => vec![l("STATUS_OK modules=\"none\" low_stack=\"none\" wamr_total=102400 wamr_free=102400 wamr_used=0 wamr_highmark=0")],
            "LOAD" => {
                let size = field("size");
                // Console text interleaved, reply split into single bytes.
                let ready = format!("LOAD_READY module_id={} size={size} crc32={}\n", field("module_id"), field("crc32"));
                let mut v: Vec<Vec<u8>> = vec![l("LED ON (thread 0x2000)")];
                v.extend(ready.bytes().map(|b| vec![b]));
                v.push(format!("<READ {size}>").into_bytes());
                v.push(l("LOAD_OK"));
                v
            }
            _ => vec![l("ERROR code=UNKNOWN_COMMAND")],
        }
    })
}

/// Starts a gateway on 127.0.0.1:0 with the given devices (`NAME=ENDPOINT`).
pub async fn gateway(devices: &[String]) -> wasmbed_gateway::run::Running {
    let mut cfg = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        cache_dir: std::env::temp_dir().join("wasmbed-gw-test-cache"),
        ..Default::default()
    };
    for d in devices {
        cfg.apply_device_flag(d).unwrap();
    }
    wasmbed_gateway::run::start(cfg).await.unwrap()
}

/// Sends raw bytes as a host and reads until the gateway closes (with a deadline).
pub async fn host_raw(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
        .await
        .expect("gateway replied and closed within 20 s")
        .unwrap();
    String::from_utf8(out).unwrap()
}

/// Waits until the device is online.
pub async fn wait_online(gw: &wasmbed_gateway::run::Running, name: &str) {
    let dev = gw.devices.iter().find(|d| d.name == name).unwrap();
    for _ in 0..200 {
        if dev.snapshot().online && dev.snapshot().proto.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("device {name} did not come online");
}

// ---------------------------------------------------------------------------------------------
// The real simulated board and a Wasmbed-dialect client.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The `wasmbed-agent-sim` binary next to the test binaries; a test that needs it fails (never
/// skips) when it was not built.
pub fn sim_bin() -> PathBuf {
    let p = wasmbed_gateway::sim::find_sim(None);
    assert!(
        p.is_file(),
        "wasmbed-agent-sim not found (looked for {}): run `cargo build -p wasmbed-agent-sim` \
         with the same CARGO_TARGET_DIR first",
        p.display()
    );
    p
}

/// Starts the real simulated board.
pub async fn start_sim(link: wasmbed_gateway::sim::SimLink) -> wasmbed_gateway::sim::SimChild {
    wasmbed_gateway::sim::start_sim(&sim_bin(), link)
        .await
        .expect("simulated board starts")
}

/// `modules/` of the repository.
pub fn modules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../modules")
}

/// The C source of an example module.
pub fn module_source(name: &str) -> Vec<u8> {
    std::fs::read(modules_dir().join(format!("{name}.c"))).unwrap()
}

/// An example module compiled by clang with the legacy GW-3 flags (what `modules/build.sh` does).
pub fn module_wasm(name: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(format!("{name}.wasm"));
    let status = std::process::Command::new("clang")
        .args(wasmbed_gateway::config::legacy_clang_flags())
        .arg("-I")
        .arg(modules_dir())
        .arg(modules_dir().join(format!("{name}.c")))
        .arg("-o")
        .arg(&out)
        .status()
        .expect("clang runs");
    assert!(status.success(), "clang failed on {name}.c");
    let bytes = std::fs::read(&out).unwrap();
    assert!(bytes.starts_with(b"\0asm"));
    bytes
}

/// A gateway from a full config (listen forced to 127.0.0.1:0, private cache).
pub async fn gateway_cfg(mut cfg: Config) -> wasmbed_gateway::run::Running {
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.cache_dir = std::env::temp_dir().join("wasmbed-gw-test-cache");
    wasmbed_gateway::run::start(cfg).await.unwrap()
}

/// A Wasmbed-dialect host connection: JSON lines with ids, events collected per request.
pub struct Client {
    r: tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    w: tokio::net::tcp::OwnedWriteHalf,
    next_id: u64,
}

/// The final reply of a request and the events that came before it.
#[derive(Debug)]
pub struct Answer {
    pub reply: Value,
    pub events: Vec<Value>,
}

impl Answer {
    /// `result`, asserting `ok: true`.
    pub fn ok(&self) -> &Value {
        assert_eq!(self.reply["ok"], true, "expected success: {}", self.reply);
        &self.reply["result"]
    }

    /// `error.code`, asserting `ok: false`.
    pub fn err_code(&self) -> &str {
        assert_eq!(self.reply["ok"], false, "expected failure: {}", self.reply);
        self.reply["error"]["code"].as_str().unwrap()
    }
}

impl Client {
    pub async fn connect(addr: std::net::SocketAddr) -> Self {
        let s = TcpStream::connect(addr).await.unwrap();
        let (r, w) = s.into_split();
        Client {
            r: BufReader::new(r).lines(),
            w,
            next_id: 1,
        }
    }

    /// Sends one request (an id is added) with an optional body; waits up to `secs` for its reply.
    pub async fn call_body(&mut self, mut req: Value, body: &[u8], secs: u64) -> Answer {
        let id = self.next_id;
        self.next_id += 1;
        req["id"] = json!(id);
        let mut bytes = serde_json::to_vec(&req).unwrap();
        bytes.push(b'\n');
        bytes.extend_from_slice(body);
        self.w.write_all(&bytes).await.unwrap();
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let line = tokio::time::timeout_at(deadline, self.r.next_line())
                .await
                .unwrap_or_else(|_| panic!("no reply to {req} within {secs} s"))
                .unwrap()
                .unwrap_or_else(|| panic!("gateway closed the connection during {req}"));
            let v: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["id"], json!(id), "reply to another request: {v}");
            if v.get("event").is_some() {
                events.push(v);
            } else {
                return Answer { reply: v, events };
            }
        }
    }

    pub async fn call(&mut self, req: Value) -> Answer {
        self.call_body(req, b"", 30).await
    }

    /// `call` on a task of its own (while the test plays the device); the client comes back with
    /// the answer.
    pub fn spawn_call(mut self, req: Value) -> tokio::task::JoinHandle<(Answer, Client)> {
        tokio::spawn(async move {
            let a = self.call(req).await;
            (a, self)
        })
    }

    /// `deploy` (no extra fields) on a task of its own, like `spawn_call`.
    pub fn spawn_deploy(
        mut self,
        device: &str,
        module_id: &str,
        wasm: &[u8],
    ) -> tokio::task::JoinHandle<(Answer, Client)> {
        let (device, module_id, wasm) = (device.to_string(), module_id.to_string(), wasm.to_vec());
        tokio::spawn(async move {
            let a = self.deploy(&device, &module_id, &wasm, json!({})).await;
            (a, self)
        })
    }

    /// Reads the next line (an event of a `follow`), within `secs`.
    pub async fn next(&mut self, secs: u64) -> Option<Value> {
        match tokio::time::timeout(Duration::from_secs(secs), self.r.next_line()).await {
            Ok(Ok(Some(l))) => Some(serde_json::from_str(&l).unwrap()),
            _ => None,
        }
    }

    /// `deploy` of module bytes.
    pub async fn deploy(
        &mut self,
        device: &str,
        module_id: &str,
        wasm: &[u8],
        extra: Value,
    ) -> Answer {
        let mut req = json!({"op": "deploy", "device": device, "module_id": module_id,
            "size": wasm.len(), "crc32": format!("{:08x}", crc32fast::hash(wasm)),
            "name": format!("{module_id}.wasm")});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                req[k] = v;
            }
        }
        self.call_body(req, wasm, 60).await
    }

    /// `build_and_deploy` of C source in `mode`.
    pub async fn build_and_deploy(
        &mut self,
        device: &str,
        module_id: &str,
        src: &[u8],
        mode: &str,
    ) -> Answer {
        let req = json!({"op": "build_and_deploy", "device": device, "module_id": module_id,
            "mode": mode, "size": src.len(), "crc32": format!("{:08x}", crc32fast::hash(src)),
            "name": format!("{module_id}.c")});
        self.call_body(req, src, 120).await
    }
}

// ---------------------------------------------------------------------------------------------
// A device scripted step by step by the test (the test *is* the device), over real TCP or an
// in-memory duplex. A connection panics on drop if the gateway sent bytes the script never read.

use tokio::io::{AsyncRead, AsyncWrite};

/// `INFO_OK` of a small v2 board.
pub const INFO_V2: &str = "INFO_OK proto=2 board=fake fw=test wamr=2.4.3 aot_arch=x86_64 aot_cpu=generic aot_abi=gnu aot_version=6 slots=2 max_module=1048576 pool_total=2097152 pool_free=2097152 chunk_max=64 line_max=255 stop=forced natives=\"gpio_toggle:(),should_stop:()i,log:(ii)\"";
/// An empty v2 `STATUS_OK`.
pub const STATUS_V2_EMPTY: &str = "STATUS_OK modules=\"none\" low_stack=\"none\" wamr_total=131072 wamr_free=131072 wamr_used=0 wamr_highmark=0 rx_overflow=0 rx_too_long=0";
/// An empty FW-B3 `STATUS_OK`.
pub const STATUS_V1_EMPTY: &str = "STATUS_OK modules=\"none\" low_stack=\"none\" wamr_total=102400 wamr_free=102400 wamr_used=0 wamr_highmark=0";
/// A FW-B3 banner with the v2 field.
pub const HELLO_V2: &str = "HELLO device_id=fake rtos=posix runtime=WAMR fw_version=0.1.0 proto=2";

const STEP: Duration = Duration::from_secs(10);

/// One link as seen from the device side.
pub struct Conn<S: AsyncRead + AsyncWrite + Unpin> {
    r: BufReader<S>,
    /// Byte-at-a-time writes (replies split into single bytes).
    pub bytewise: bool,
    check: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub fn new(s: S) -> Self {
        Conn {
            r: BufReader::new(s),
            bytewise: false,
            check: true,
        }
    }

    /// The next command line from the gateway (without `\n`).
    pub async fn line(&mut self) -> String {
        let mut l = String::new();
        let n = tokio::time::timeout(STEP, self.r.read_line(&mut l))
            .await
            .expect("the gateway sent a line in time")
            .unwrap();
        assert!(n > 0, "the gateway closed the link");
        assert!(l.ends_with('\n'), "unterminated line {l:?}");
        l.pop();
        l
    }

    /// The next line, asserting its prefix.
    pub async fn expect(&mut self, prefix: &str) -> String {
        let l = self.line().await;
        assert!(l.starts_with(prefix), "expected `{prefix}…`, got `{l}`");
        l
    }

    /// The next framed chunk (v2 `framed=1`): its offset, its data, and the raw line as sent
    /// (`\n` included). Panics if it is not an intact frame.
    pub async fn frame(&mut self) -> (u32, Vec<u8>, Vec<u8>) {
        let mut raw = Vec::new();
        tokio::time::timeout(STEP, self.r.read_until(b'\n', &mut raw))
            .await
            .expect("the gateway sent a frame in time")
            .unwrap();
        let (off, data) = wasmbed_agent_proto::frame::decode_chunk_frame(&raw)
            .unwrap_or_else(|| panic!("not an intact frame: {raw:?}"));
        (off, data, raw)
    }

    /// Exactly `n` payload bytes.
    pub async fn payload(&mut self, n: usize) -> Vec<u8> {
        let mut b = vec![0; n];
        tokio::time::timeout(STEP, self.r.read_exact(&mut b))
            .await
            .expect("payload in time")
            .unwrap();
        b
    }

    /// Writes raw bytes (one write per byte when `bytewise`).
    pub async fn send(&mut self, bytes: &[u8]) {
        let w = self.r.get_mut();
        if self.bytewise {
            for b in bytes {
                w.write_all(&[*b]).await.unwrap();
                w.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
        } else {
            w.write_all(bytes).await.unwrap();
            w.flush().await.unwrap();
        }
    }

    /// Writes one line plus `\n`.
    pub async fn say(&mut self, line: &str) {
        self.send(format!("{line}\n").as_bytes()).await;
    }

    /// Answers the gateway's connect-time INFO and STATUS as a v2 board.
    pub async fn handshake_v2(&mut self) {
        self.expect("INFO").await;
        self.say(INFO_V2).await;
        self.expect("STATUS").await;
        self.say(STATUS_V2_EMPTY).await;
    }

    /// As legacy FW-B3: INFO is an unknown command.
    pub async fn handshake_v1(&mut self) {
        assert_eq!(self.line().await, "INFO");
        self.say("ERROR code=UNKNOWN_COMMAND").await;
        assert_eq!(self.line().await, "STATUS");
        self.say(STATUS_V1_EMPTY).await;
    }

    /// Asserts the gateway sends nothing for `ms` milliseconds.
    pub async fn quiet_for(&mut self, ms: u64) {
        let mut l = String::new();
        if let Ok(r) =
            tokio::time::timeout(Duration::from_millis(ms), self.r.read_line(&mut l)).await
        {
            panic!("expected silence, the gateway sent {l:?} ({r:?})");
        }
    }

    /// Closes the link without the unread-bytes check (a device dropping mid-transfer).
    pub fn hang_up(mut self) {
        self.check = false;
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Drop for Conn<S> {
    fn drop(&mut self) {
        if std::thread::panicking() || !self.check {
            return;
        }
        let buffered = self.r.buffer().to_vec();
        // Whatever is already in the stream counts too.
        let mut more = [0u8; 256];
        let mut rb = tokio::io::ReadBuf::new(&mut more);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let pending = match std::pin::Pin::new(self.r.get_mut()).poll_read(&mut cx, &mut rb) {
            std::task::Poll::Ready(Ok(())) => rb.filled().to_vec(),
            _ => Vec::new(),
        };
        if !buffered.is_empty() || !pending.is_empty() {
            panic!(
                "fake device dropped with unread bytes from the gateway: {:?}",
                String::from_utf8_lossy(&[buffered, pending].concat())
            );
        }
    }
}

/// A TCP device endpoint whose connections the test scripts.
pub struct ScriptedTcp {
    listener: TcpListener,
    pub port: u16,
}

impl ScriptedTcp {
    pub async fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        ScriptedTcp { listener, port }
    }

    /// `NAME=tcp:127.0.0.1:PORT`.
    pub fn flag(&self, name: &str) -> String {
        format!("{name}=tcp:127.0.0.1:{}", self.port)
    }

    /// The gateway's next connection.
    pub async fn accept(&self) -> Conn<TcpStream> {
        let (s, _) = tokio::time::timeout(STEP, self.listener.accept())
            .await
            .expect("the gateway connected in time")
            .unwrap();
        Conn::new(s)
    }
}

/// A gateway with one scripted TCP device `name`, past its v2 handshake and online.
pub async fn scripted(name: &str) -> (ScriptedTcp, wasmbed_gateway::run::Running, Conn<TcpStream>) {
    let dev = ScriptedTcp::bind().await;
    let gw = gateway(&[dev.flag(name)]).await;
    let mut c = dev.accept().await;
    c.handshake_v2().await;
    wait_online(&gw, name).await;
    (dev, gw, c)
}

/// Polls `log` (100 times, 20 ms apart) for an entry whose line is `line`: its seq, or `None`.
pub async fn wait_logged(log: &wasmbed_gateway::device::DeviceLog, line: &str) -> Option<u64> {
    for _ in 0..100 {
        if let Some(e) = log.since(0).0.into_iter().find(|e| e.line == line) {
            return Some(e.seq);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// A connector handing the gateway in-memory links; the device ends arrive on a channel.
/// The first `fail` connects fail; every attempt's (virtual) time is recorded.
pub struct DuplexConnector {
    tx: tokio::sync::mpsc::UnboundedSender<tokio::io::DuplexStream>,
    fail: std::sync::atomic::AtomicU32,
    pub attempts: Arc<Mutex<Vec<tokio::time::Instant>>>,
}

impl DuplexConnector {
    pub fn new(
        fail: u32,
    ) -> (
        Arc<Self>,
        tokio::sync::mpsc::UnboundedReceiver<tokio::io::DuplexStream>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let c = DuplexConnector {
            tx,
            fail: fail.into(),
            attempts: Arc::default(),
        };
        (Arc::new(c), rx)
    }
}

impl wasmbed_gateway::link::Connector for DuplexConnector {
    fn connect(&self) -> wasmbed_gateway::link::ConnectFuture {
        use std::sync::atomic::Ordering;
        self.attempts
            .lock()
            .unwrap()
            .push(tokio::time::Instant::now());
        let failing = self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let tx = self.tx.clone();
        Box::pin(async move {
            if failing {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "scripted connect failure",
                ));
            }
            let (ours, theirs) = tokio::io::duplex(64 * 1024);
            tx.send(theirs)
                .map_err(|_| std::io::Error::other("test gone"))?;
            Ok(Box::new(ours) as wasmbed_gateway::link::BoxLink)
        })
    }

    fn describe(&self) -> String {
        "duplex".into()
    }
}

/// Writes a secret the way the gateway requires it (mode 0600: a token file others could read is
/// refused at start).
pub fn write_private(path: &std::path::Path, contents: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    std::io::Write::write_all(&mut f, contents.as_bytes()).unwrap();
}
