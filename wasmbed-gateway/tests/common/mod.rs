//! Shared fakes: a scripted device over real TCP and a gateway started in-process.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use wasmbed_gateway::config::Config;

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
