//! Test support: a scripted fake gateway speaking the Wasmbed JSON dialect over real TCP
//! (port 0), and a runner for the built `wasmbed-host` binary with a hard timeout.
#![allow(dead_code, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub mod real;

/// What the fake sends back for one request: events and the final reply, each without `id`
/// (added by the fake). An empty list means "stay silent"; `None` closes the connection.
pub type Script = Option<Vec<Value>>;

/// Maps a request (and its body) to a script.
pub type Handler = Arc<dyn Fn(&Value, &[u8]) -> Script + Send + Sync>;

/// A request as the fake received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub request: Value,
    pub body: Vec<u8>,
    pub connection: usize,
}

/// The fake gateway. Dropping it checks that no request arrived malformed.
pub struct FakeGateway {
    pub addr: String,
    received: Arc<Mutex<Vec<Received>>>,
    problems: Arc<Mutex<Vec<String>>>,
}

fn ops_with_body(op: &str) -> bool {
    matches!(op, "deploy" | "build_and_deploy")
}

impl FakeGateway {
    pub fn start(handler: impl Fn(&Value, &[u8]) -> Script + Send + Sync + 'static) -> FakeGateway {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let received = Arc::new(Mutex::new(Vec::new()));
        let problems = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(handler);
        let (r, p) = (received.clone(), problems.clone());
        thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { return };
                let (r, p, h) = (r.clone(), p.clone(), handler.clone());
                thread::spawn(move || serve(stream, n, &*h, &r, &p));
            }
        });
        FakeGateway {
            addr,
            received,
            problems,
        }
    }

    /// A fake answering every request with `ok: true` and `result`.
    pub fn replying(result: Value) -> FakeGateway {
        FakeGateway::start(move |_, _| Some(vec![ok(result.clone())]))
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        let problems = self.problems.lock().unwrap();
        if !problems.is_empty() && !thread::panicking() {
            panic!("fake gateway saw malformed traffic: {problems:?}");
        }
    }
}

fn serve(
    stream: TcpStream,
    conn: usize,
    handler: &dyn Fn(&Value, &[u8]) -> Script,
    received: &Mutex<Vec<Received>>,
    problems: &Mutex<Vec<String>>,
) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if !line.ends_with('\n') {
            problems
                .lock()
                .unwrap()
                .push(format!("unterminated request line {line:?}"));
            return;
        }
        let request: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                problems
                    .lock()
                    .unwrap()
                    .push(format!("bad JSON {line:?}: {e}"));
                return;
            }
        };
        if request.get("id").is_none() || request.get("op").is_none() {
            problems
                .lock()
                .unwrap()
                .push(format!("request without id/op: {line}"));
        }
        let op = request["op"].as_str().unwrap_or_default().to_string();
        let mut body = Vec::new();
        if ops_with_body(&op) {
            let size = request["size"].as_u64().unwrap_or(0) as usize;
            body.resize(size, 0);
            if reader.read_exact(&mut body).is_err() {
                problems
                    .lock()
                    .unwrap()
                    .push(format!("body shorter than size={size}"));
                return;
            }
            let crc = format!("{:08x}", crc32fast::hash(&body));
            if request["crc32"] != json!(crc) {
                problems
                    .lock()
                    .unwrap()
                    .push(format!("crc32 {} != body crc {crc}", request["crc32"]));
            }
        }
        received.lock().unwrap().push(Received {
            request: request.clone(),
            body: body.clone(),
            connection: conn,
        });
        let Some(script) = handler(&request, &body) else {
            return;
        };
        for mut msg in script {
            msg["id"] = request["id"].clone();
            if let Some(delay) = msg.get("_delay_ms").and_then(Value::as_u64) {
                thread::sleep(Duration::from_millis(delay));
                msg.as_object_mut().unwrap().remove("_delay_ms");
            }
            if writeln!(writer, "{msg}").is_err() {
                return;
            }
        }
    }
}

pub fn ok(result: Value) -> Value {
    json!({"ok": true, "result": result, "latency": {"device_ms": 1.25, "total_ms": 2.5}})
}

pub fn err(code: &str, message: &str) -> Value {
    json!({"ok": false, "error": {"code": code, "message": message, "help": "a hint"}, "latency": {"total_ms": 0.5}})
}

/// Runs the binary with `args`, no inherited WASMBED_* variables, a 30 s hard limit.
pub fn run(args: &[&str]) -> Output {
    run_env(args, &[])
}

pub fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmbed-host"));
    cmd.args(args)
        .env_remove("WASMBED_GATEWAY")
        .env_remove("WASMBED_DEVICE")
        .env_remove("WASMBED_TOKEN_FILE")
        .env_remove("WASMBED_CA")
        .env_remove("WASMBED_CERT")
        .env_remove("WASMBED_KEY")
        .env_remove("WASMBED_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn wasmbed-host");
    // Drained while the command runs: output larger than a pipe (a completion script) must not
    // block the child while we wait for it to exit.
    let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out_t = drain(child.stdout.take().map(|r| Box::new(r) as _));
    let err_t = drain(child.stderr.take().map(|r| Box::new(r) as _));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Output {
                status,
                stdout: out_t.join().unwrap(),
                stderr: err_t.join().unwrap(),
            };
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!(
                "wasmbed-host {args:?} did not finish in 30 s; stderr: {}",
                String::from_utf8_lossy(&err_t.join().unwrap())
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The words of `line` (split on white space) followed by `more` as they are (paths, which may
/// hold spaces).
pub fn argv<'a>(line: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    line.split_whitespace()
        .chain(more.iter().copied())
        .collect()
}

/// Runs the binary with `argv(line, more)` and asserts the exit code; a failure names the
/// command line and shows the output.
#[track_caller]
pub fn run_exit(code: i32, line: &str, more: &[&str]) -> Output {
    let args = argv(line, more);
    let o = run(&args);
    assert_eq!(
        o.status.code(),
        Some(code),
        "wasmbed-host {args:?}\nstdout:\n{}\nstderr:\n{}",
        stdout(&o),
        stderr(&o)
    );
    o
}

/// Asserts the exit code, showing the output when it differs.
#[track_caller]
pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

/// Parses stdout as exactly one JSON document.
pub fn json_doc(o: &Output) -> Value {
    let text = stdout(o);
    let mut stream = serde_json::Deserializer::from_str(&text).into_iter::<Value>();
    let doc = stream
        .next()
        .unwrap_or_else(|| panic!("no JSON on stdout; stderr: {}", stderr(o)))
        .unwrap();
    assert!(
        stream.next().is_none(),
        "more than one JSON document on stdout:\n{text}"
    );
    doc
}

/// Replaces every latency number with a marker so documents can be snapshotted.
pub fn redact(mut v: Value) -> Value {
    fn walk(v: &mut Value, key: &str) {
        match v {
            Value::Object(m) => {
                for (k, val) in m.iter_mut() {
                    walk(val, k);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, key)),
            Value::Number(_) if key.ends_with("_ms") => *v = json!("[ms]"),
            _ => {}
        }
    }
    walk(&mut v, "");
    v
}

/// The first line of text output: `e2e_latency_ms=<x.xx>`.
pub fn assert_e2e_line(o: &Output) {
    let text = stdout(o);
    let first = text.lines().next().unwrap_or_default();
    let value = first
        .strip_prefix("e2e_latency_ms=")
        .unwrap_or_else(|| panic!("first line {first:?}"));
    let (int, frac) = value.split_once('.').expect("two decimals");
    assert!(
        int.chars().all(|c| c.is_ascii_digit()) && frac.len() == 2,
        "{first}"
    );
}

/// A port on which nothing listens.
pub fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
