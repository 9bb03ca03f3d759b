//! What the harness talks to: the simulated board(s), the gateway (Wasmbed JSON dialect) and a
//! device directly over its link (raw line protocol).

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::{binary, err, Proc, Result};

/// Options of a simulated board process.
#[derive(Debug, Clone, Default)]
pub struct SimOpts {
    /// `--baud N` (None: `--instant`).
    pub baud: Option<u32>,
    /// `--reply-bytewise`.
    pub bytewise: bool,
    /// `--boards N` (1 if 0).
    pub boards: usize,
    /// `--pty` instead of TCP.
    pub pty: bool,
    /// `--pool-size`.
    pub pool: Option<u32>,
}

/// A running simulated board process and its endpoints (`tcp:127.0.0.1:P` or a PTY path).
pub struct Sim {
    /// The process.
    pub proc: Proc,
    /// One endpoint per board, in board order.
    pub endpoints: Vec<String>,
    /// TCP ports (empty for a PTY).
    pub ports: Vec<u16>,
}

/// Starts `wasmbed-agent-sim` with `opts` and waits for its endpoints.
pub fn start_sim(name: &str, opts: &SimOpts) -> Result<Sim> {
    let bin = binary("wasmbed-agent-sim", "WASMBED_AGENT_SIM")?;
    let mut cmd = Command::new(bin);
    if opts.pty {
        cmd.arg("--pty");
    } else {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    match opts.baud {
        Some(b) => cmd.args(["--baud", &b.to_string()]),
        None => cmd.arg("--instant"),
    };
    if opts.bytewise {
        cmd.arg("--reply-bytewise");
    }
    let boards = opts.boards.max(1);
    if boards > 1 {
        cmd.args(["--boards", &boards.to_string()]);
    }
    if let Some(p) = opts.pool {
        cmd.args(["--pool-size", &p.to_string()]);
    }
    let proc = Proc::spawn(name, cmd)?;
    let mut endpoints = Vec::new();
    let mut ports = Vec::new();
    let timeout = Duration::from_secs(10 + boards as u64 / 20);
    for _ in 0..boards {
        if opts.pty {
            let l = proc.wait_line("pty ", timeout)?;
            endpoints.push(format!("serial:{}?baud=115200", &l[4..]));
        } else {
            let l = proc.wait_line("listening on ", timeout)?;
            let addr = &l["listening on ".len()..];
            let port: u16 = addr
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| err(format!("bad line `{l}`")))?;
            ports.push(port);
            endpoints.push(format!("tcp:127.0.0.1:{port}"));
        }
    }
    Ok(Sim {
        proc,
        endpoints,
        ports,
    })
}

/// A running gateway.
pub struct Gateway {
    /// The process.
    pub proc: Proc,
    /// Its host API address.
    pub addr: String,
}

/// Starts `wasmbed-gateway` on a free port with the given devices (`name`, endpoint); more than
/// 16 devices go through a generated config file. Waits until every device is online.
pub fn start_gateway(name: &str, devices: &[(String, String)], extra: &[&str]) -> Result<Gateway> {
    let bin = binary("wasmbed-gateway", "WASMBED_GATEWAY_BIN")?;
    let mut cmd = Command::new(bin);
    cmd.args(["--listen", "127.0.0.1:0"]);
    if devices.len() > 16 {
        let path = crate::util::log_dir().join(format!("{name}.toml"));
        let mut toml = String::from("listen = \"127.0.0.1:0\"\n");
        for (n, ep) in devices {
            toml.push_str(&format!("[devices.{n}]\nendpoint = \"{ep}\"\n"));
        }
        std::fs::write(&path, toml)?;
        cmd.arg("--config").arg(&path);
    } else {
        for (n, ep) in devices {
            cmd.args(["--device", &format!("{n}={ep}")]);
        }
    }
    cmd.args(extra);
    cmd.env("RUST_LOG", "warn");
    let proc = Proc::spawn(name, cmd)?;
    let l = proc.wait_line("listening on ", Duration::from_secs(10))?;
    let addr = l["listening on ".len()..].to_string();
    let gw = Gateway { proc, addr };
    gw.wait_online(
        devices.len(),
        Duration::from_secs(20 + devices.len() as u64 / 20),
    )?;
    Ok(gw)
}

impl Gateway {
    /// A new host connection.
    pub fn connect(&self) -> Result<GwConn> {
        GwConn::connect(&self.addr)
    }

    /// Polls `devices` until `n` devices are online.
    pub fn wait_online(&self, n: usize, timeout: Duration) -> Result<()> {
        let until = Instant::now() + timeout;
        let mut c = self.connect()?;
        loop {
            let r = c.request(json!({"op": "devices"}), None, Duration::from_secs(10))?;
            let online = r["result"]["devices"]
                .as_array()
                .map_or(0, |d| d.iter().filter(|d| d["online"] == true).count());
            if online >= n {
                return Ok(());
            }
            if Instant::now() > until {
                return Err(err(format!("only {online} of {n} devices online")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One host connection to the gateway (Wasmbed dialect, sequential requests).
pub struct GwConn {
    r: BufReader<TcpStream>,
    w: TcpStream,
    next_id: u64,
}

impl GwConn {
    /// Connects (TCP_NODELAY, like wasmbed-host).
    pub fn connect(addr: &str) -> Result<GwConn> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        Ok(GwConn {
            r: BufReader::new(s.try_clone()?),
            w: s,
            next_id: 1,
        })
    }

    /// Sends a request (and its body) without waiting; returns its id.
    pub fn send(&mut self, mut req: Value, body: Option<&[u8]>) -> Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        req["id"] = json!(id);
        let mut bytes = serde_json::to_vec(&req)?;
        bytes.push(b'\n');
        if let Some(b) = body {
            bytes.extend_from_slice(b);
        }
        self.w.write_all(&bytes)?;
        Ok(id)
    }

    /// Reads until the final reply of request `id` (events are skipped).
    pub fn recv(&mut self, id: u64, timeout: Duration) -> Result<Value> {
        let until = Instant::now() + timeout;
        let mut line = String::new();
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(err(format!("no reply to request {id} within {timeout:?}")));
            }
            self.r.get_ref().set_read_timeout(Some(left))?;
            line.clear();
            if self.r.read_line(&mut line)? == 0 {
                return Err(err("gateway closed the connection"));
            }
            let v: Value = serde_json::from_str(&line)?;
            if v.get("event").is_some() || v["id"] != json!(id) {
                continue;
            }
            return Ok(v);
        }
    }

    /// Sends a request and waits for its final reply.
    pub fn request(&mut self, req: Value, body: Option<&[u8]>, timeout: Duration) -> Result<Value> {
        let id = self.send(req, body)?;
        self.recv(id, timeout)
    }

    /// `deploy` of `bytes` as `module_id` (force + replace: every call really uploads).
    pub fn deploy(
        &mut self,
        dev: &str,
        module_id: &str,
        bytes: &[u8],
        t: Duration,
    ) -> Result<Value> {
        let req = deploy_req(dev, module_id, bytes);
        self.request(req, Some(bytes), t)
    }
}

/// The `deploy` request line for `bytes`.
pub fn deploy_req(dev: &str, module_id: &str, bytes: &[u8]) -> Value {
    json!({"op": "deploy", "device": dev, "module_id": module_id, "size": bytes.len(),
           "crc32": format!("{:08x}", crc32fast::hash(bytes)), "name": format!("{module_id}.wasm"),
           "force": true, "replace": true})
}

/// `ok` of a reply, or an error carrying the reply.
pub fn ok(v: Value) -> Result<Value> {
    if v["ok"] == true {
        Ok(v)
    } else {
        Err(err(format!("request failed: {v}")))
    }
}

/// A direct link to a device's TCP bridge: the raw line protocol, no gateway.
pub struct DevConn {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl DevConn {
    /// Connects to a device's TCP port (TCP_NODELAY) and waits for its HELLO.
    pub fn connect(port: u16) -> Result<DevConn> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_nodelay(true)?;
        let mut d = DevConn {
            r: BufReader::new(s.try_clone()?),
            w: s,
        };
        d.wait_for(&["HELLO"], Duration::from_secs(5))?;
        Ok(d)
    }

    /// Reads lines until one starts with one of `prefixes`.
    pub fn wait_for(&mut self, prefixes: &[&str], timeout: Duration) -> Result<String> {
        let until = Instant::now() + timeout;
        let mut buf = Vec::new();
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(err(format!("device: no {prefixes:?} within {timeout:?}")));
            }
            self.r.get_ref().set_read_timeout(Some(left))?;
            buf.clear();
            match self.r.read_until(b'\n', &mut buf) {
                Ok(0) => return Err(err("device closed the link")),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                Err(e) => return Err(e.into()),
            }
            let line = String::from_utf8_lossy(&buf).trim_end().to_string();
            if prefixes.iter().any(|p| line.starts_with(p)) {
                return Ok(line);
            }
        }
    }

    /// Sends one command line and waits for a line starting with one of `prefixes`.
    pub fn cmd(&mut self, line: &str, prefixes: &[&str], timeout: Duration) -> Result<String> {
        self.w.write_all(format!("{line}\n").as_bytes())?;
        self.wait_for(prefixes, timeout)
    }

    /// STATUS round trip.
    pub fn status(&mut self) -> Result<String> {
        self.cmd("STATUS", &["STATUS_OK", "ERROR"], Duration::from_secs(5))
    }

    /// START with wait for the RESULT; returns the RESULT line.
    pub fn start_wait(&mut self, module_id: &str, func: &str, args: &[i32]) -> Result<String> {
        let a: Vec<String> = args
            .iter()
            .enumerate()
            .map(|(i, v)| format!("a{i}={v}"))
            .collect();
        let line = format!(
            "START module_id={module_id} func={func} args=\"{}\"",
            a.join(",")
        );
        let first = self.cmd(&line, &["START_OK", "RESULT"], Duration::from_secs(5))?;
        if first.starts_with("RESULT") {
            return Ok(first);
        }
        self.wait_for(&["RESULT"], Duration::from_secs(60))
    }

    /// Sends `LOAD module_id=… size=… crc32=…` plus `flags` and waits for the device's answer:
    /// the time the line went out and the `LOAD_READY` line, or the refusal as `Err`.
    fn load_ready(
        &mut self,
        module_id: &str,
        bytes: &[u8],
        flags: &str,
    ) -> Result<std::result::Result<(Instant, String), String>> {
        let crc = format!("{:08x}", crc32fast::hash(bytes));
        let t0 = Instant::now();
        let line = format!(
            "LOAD module_id={module_id} size={} crc32={crc}{flags}",
            bytes.len()
        );
        let ready = self.cmd(
            &line,
            &["LOAD_READY", "LOAD_ERR", "ERROR"],
            Duration::from_secs(5),
        )?;
        Ok(if ready.starts_with("LOAD_READY") {
            Ok((t0, ready))
        } else {
            Err(ready)
        })
    }

    /// Legacy v1 LOAD: the line, `LOAD_READY`, all raw bytes at once, `LOAD_OK`. The payload is
    /// written by a second thread so a `LOAD_ERR` (the device's 5 s window) ends it early.
    pub fn load_raw(
        &mut self,
        module_id: &str,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<std::result::Result<Duration, String>> {
        let t0 = match self.load_ready(module_id, bytes, " replace=1")? {
            Ok((t0, _)) => t0,
            Err(refused) => return Ok(Err(refused)),
        };
        let mut w = self.w.try_clone()?;
        let payload = bytes.to_vec();
        let writer = std::thread::spawn(move || w.write_all(&payload));
        let end = self.wait_for(&["LOAD_OK", "LOAD_ERR"], timeout);
        let took = t0.elapsed();
        if !matches!(&end, Ok(l) if l.starts_with("LOAD_OK")) {
            let _ = self.w.shutdown(Shutdown::Both); // unblocks the writer
        }
        let _ = writer.join();
        let end = end?;
        Ok(if end.starts_with("LOAD_OK") {
            Ok(took)
        } else {
            Err(end)
        })
    }

    /// v2 chunked LOAD: stop-and-wait chunks of the size the device offers, as frames when the
    /// device confirms `framed=1` (else a CHUNK line + raw bytes in one write), then `LOAD_OK`.
    pub fn load_chunked(
        &mut self,
        module_id: &str,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<std::result::Result<Duration, String>> {
        let (t0, ready) =
            match self.load_ready(module_id, bytes, " chunked=1 framed=1 replace=1")? {
                Ok(r) => r,
                Err(refused) => return Ok(Err(refused)),
            };
        let until = t0 + timeout;
        let chunk: usize = field(&ready, "chunk")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| err(format!("no chunk= in `{ready}`")))?;
        let mut off = 0usize;
        while off < bytes.len() {
            let n = chunk.min(bytes.len() - off);
            let piece = &bytes[off..off + n];
            let msg = if field(&ready, "framed") == Some("1") {
                wasmbed_agent_proto::frame::chunk_frame(off as u32, piece)
            } else {
                let mut msg = format!(
                    "CHUNK offset={off} size={n} crc32={:08x}\n",
                    crc32fast::hash(piece)
                )
                .into_bytes();
                msg.extend_from_slice(piece);
                msg
            };
            self.w.write_all(&msg)?;
            let left = until.saturating_duration_since(Instant::now());
            let a = self.wait_for(&["CHUNK_OK", "CHUNK_ERR", "LOAD_ERR"], left)?;
            if !a.starts_with("CHUNK_OK") {
                return Ok(Err(a));
            }
            off += n;
        }
        let left = until.saturating_duration_since(Instant::now());
        let end = self.wait_for(&["LOAD_OK", "LOAD_ERR"], left)?;
        Ok(if end.starts_with("LOAD_OK") {
            Ok(t0.elapsed())
        } else {
            Err(end)
        })
    }
}

/// The value of `key=` in a protocol line.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!(" {key}=");
    let i = line.find(&pat)? + pat.len();
    Some(line[i..].split(' ').next().unwrap_or(""))
}

/// Builds a C file to wasm with the legacy GW-3 flags (those of `modules/build.sh`), then, for
/// each AOT target given, with our wamrc. Returns the wasm bytes and the AOT files' bytes.
pub fn build_module(
    src: &Path,
    out_dir: &Path,
    aot: &[(&str, &[&str])],
) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
    std::fs::create_dir_all(out_dir)?;
    let stem = src.file_stem().unwrap().to_string_lossy().to_string();
    let wasm = out_dir.join(format!("{stem}.wasm"));
    let root = crate::util::repo_root();
    let st = Command::new(std::env::var("CLANG").unwrap_or_else(|_| "clang".into()))
        .args([
            "--target=wasm32-unknown-unknown",
            "-O3",
            "-nostdlib",
            "-Wl,--no-entry",
            "-Wl,-z,stack-size=16384",
        ])
        .arg(format!("-I{}", root.join("modules").display()))
        .arg(src)
        .arg("-o")
        .arg(&wasm)
        .status()?;
    if !st.success() {
        return Err(err(format!("clang failed on {}", src.display())));
    }
    let wamrc = std::env::var("WAMRC")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| root.join("target/wamrc/wamrc"));
    let mut aots = Vec::new();
    for (tag, flags) in aot {
        let out = out_dir.join(format!("{stem}.{tag}.aot"));
        let st = Command::new(&wamrc)
            .args(*flags)
            .arg("--bounds-checks=1")
            .arg("-o")
            .arg(&out)
            .arg(&wasm)
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| {
                err(format!(
                    "cannot run {} ({e}): tools/wamrc/build.sh builds it",
                    wamrc.display()
                ))
            })?;
        if !st.success() {
            return Err(err(format!("wamrc {flags:?} failed on {}", wasm.display())));
        }
        aots.push(std::fs::read(&out)?);
    }
    Ok((std::fs::read(&wasm)?, aots))
}
