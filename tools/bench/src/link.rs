//! What the harness talks to: the simulated board(s), the gateway (Wasmbed JSON dialect) and a
//! device directly over its link (raw line protocol).

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use std::collections::HashMap;

use wasmbed_agent_proto::session::{
    LoadOptions, LoadSession, Session, SessionError, StartSession, StatusSession, Timeouts,
};
use wasmbed_agent_proto::{AgentLine, Args, Decoder, FuncName, Item, ModuleId, Start};
use wasmbed_api::{
    DeployRequest, DeployResult, DeviceRequest, ModuleRequest, Op, OpResult, ReplyLine, Request,
    RequestId, RequestLine, ServerMessage, StartRequest,
};

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
    start_gateway_bin(&bin, name, devices, extra)
}

/// [`start_gateway`] with another gateway binary (an A/B against an older build).
pub fn start_gateway_bin(
    bin: &Path,
    name: &str,
    devices: &[(String, String)],
    extra: &[&str],
) -> Result<Gateway> {
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
            let r = c.request(Request::Devices {}, None, Duration::from_secs(10))?;
            let online = match &r.outcome {
                Ok(OpResult::Devices(d)) => d.devices.iter().filter(|d| d.online).count(),
                _ => 0,
            };
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

/// One host connection to the gateway (Wasmbed dialect through `wasmbed-api`'s types).
pub struct GwConn {
    r: BufReader<TcpStream>,
    w: TcpStream,
    next_id: u64,
    /// The op of each request in flight, to read its reply's result.
    ops: HashMap<u64, Op>,
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
            ops: HashMap::new(),
        })
    }

    /// Sends a request (and its body) without waiting; returns its id.
    pub fn send(&mut self, request: Request, body: Option<&[u8]>) -> Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        self.ops.insert(id, request.op());
        let line = RequestLine {
            request,
            id: RequestId::from(id),
            token: None,
        };
        let mut bytes = line.to_json().into_bytes();
        bytes.push(b'\n');
        if let Some(b) = body {
            bytes.extend_from_slice(b);
        }
        self.w.write_all(&bytes)?;
        Ok(id)
    }

    /// Reads until the final reply of request `id` (events are skipped), typed (so a reply off
    /// the documented wire fails here).
    pub fn recv(&mut self, id: u64, timeout: Duration) -> Result<ReplyLine> {
        let op = *self
            .ops
            .get(&id)
            .ok_or_else(|| err(format!("no request {id} in flight")))?;
        let want = RequestId::from(id);
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
            match ServerMessage::parse(&line, op, Some(&want)).map_err(|e| err(e.to_string()))? {
                ServerMessage::Reply(r) => {
                    self.ops.remove(&id);
                    return Ok(*r);
                }
                ServerMessage::Event(_) | ServerMessage::Skipped { .. } => continue,
            }
        }
    }

    /// Sends a request and waits for its final reply.
    pub fn request(
        &mut self,
        req: Request,
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<ReplyLine> {
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
    ) -> Result<ReplyLine> {
        let req = deploy_req(dev, module_id, bytes);
        self.request(req, Some(bytes), t)
    }
}

/// The `deploy` request for `bytes` (force + replace: every call really uploads).
pub fn deploy_req(dev: &str, module_id: &str, bytes: &[u8]) -> Request {
    Request::Deploy(DeployRequest {
        device: dev.into(),
        module_id: module_id.into(),
        mode: None,
        size: bytes.len() as u64,
        crc32: format!("{:08x}", crc32fast::hash(bytes)),
        replace: true,
        replace_victim: None,
        force: true,
        strip: false,
        version: None,
        signature: None,
    })
}

/// `status` of `dev`.
pub fn status_req(dev: &str) -> Request {
    Request::Status(DeviceRequest { device: dev.into() })
}

/// `unload` of `module_id` on `dev`.
pub fn unload_req(dev: &str, module_id: &str) -> Request {
    Request::Unload(ModuleRequest {
        device: dev.into(),
        module_id: module_id.into(),
    })
}

/// `start` of `module_id.func(args)` on `dev`, waiting for the RESULT (`timeout_ms`: its
/// deadline, the gateway's default if `None`).
pub fn start_req(
    dev: &str,
    module_id: &str,
    func: &str,
    args: Vec<i32>,
    timeout_ms: Option<u64>,
) -> Request {
    Request::Start(StartRequest {
        device: dev.into(),
        module_id: module_id.into(),
        func: Some(func.into()),
        args,
        wait_result: true,
        result_timeout_ms: timeout_ms,
    })
}

/// A reply that succeeded, or an error carrying the reply.
pub fn ok(r: ReplyLine) -> Result<ReplyLine> {
    match &r.outcome {
        Ok(_) => Ok(r),
        Err(_) => Err(err(format!("request failed: {}", show(&r)))),
    }
}

/// A reply as its JSON line, for messages.
pub fn show(r: &ReplyLine) -> String {
    serde_json::to_string(r).unwrap_or_default()
}

/// The value a `start` with `wait_result` returned.
pub fn ret(r: &ReplyLine) -> Option<i32> {
    match &r.outcome {
        Ok(OpResult::Start(s)) => s.ret,
        _ => None,
    }
}

/// The result of a `deploy`.
pub fn deployed(r: &ReplyLine) -> Option<&DeployResult> {
    match &r.outcome {
        Ok(OpResult::Deploy(d)) => Some(d),
        _ => None,
    }
}

/// The RESULT status a refusal names (`BUSY`, …).
pub fn refused_with(r: &ReplyLine) -> Option<&wasmbed_api::RunStatus> {
    r.outcome
        .as_ref()
        .err()
        .and_then(|e| e.detail.status.as_ref())
}

/// A phase latency in ms (NaN when the gateway did not report it).
pub fn lat(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

/// A direct link to a device's TCP bridge: the line protocol through `wasmbed-agent-proto`'s
/// sessions (the same LOAD/CHUNK/START code the gateway runs), no gateway.
pub struct DevConn {
    s: TcpStream,
    decoder: Decoder,
    buf: Vec<u8>,
}

/// A session's end: its outcome, or the device's refusal line.
type Driven<O> = std::result::Result<O, String>;

impl DevConn {
    /// Connects to a device's TCP port (TCP_NODELAY) and waits for its HELLO.
    pub fn connect(port: u16) -> Result<DevConn> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_nodelay(true)?;
        let mut d = DevConn {
            s,
            decoder: Decoder::new(),
            buf: vec![0; 4096],
        };
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            while let Some(item) = d.decoder.next_item() {
                if let Item::Line(l) = item {
                    if matches!(l.msg, AgentLine::Hello(_)) {
                        return Ok(d);
                    }
                }
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(err("device: no HELLO within 5 s"));
            }
            d.read(Some(left))?;
        }
    }

    /// Reads what the device sent within `timeout` into the decoder (`false`: nothing came).
    fn read(&mut self, timeout: Option<Duration>) -> Result<bool> {
        self.s.set_read_timeout(timeout)?;
        match self.s.read(&mut self.buf) {
            Ok(0) => Err(err("device closed the link")),
            Ok(n) => {
                self.decoder.feed(&self.buf[..n]);
                Ok(true)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs a session over the link to its outcome; a refusal is the device's line.
    fn drive<S: Session>(&mut self, mut session: S) -> Result<Driven<S::Outcome>>
    where
        S::Outcome: Clone,
    {
        loop {
            while let Some(t) = session.poll_transmit() {
                self.s.write_all(&t.to_bytes())?;
            }
            while session.poll_event().is_some() {}
            match session.outcome() {
                Some(Ok(o)) => return Ok(Ok(o.clone())),
                Some(Err(SessionError::Rejected { line })) => return Ok(Err(line.raw.clone())),
                Some(Err(e)) => return Err(err(format!("device: {e}"))),
                None => {}
            }
            if let Some(item) = self.decoder.next_item() {
                session.handle_line(std::time::Instant::now(), item);
                continue;
            }
            let left = session
                .poll_timeout()
                .map(|d| d.saturating_duration_since(std::time::Instant::now()));
            if left.is_some_and(|l| l.is_zero()) || !self.read(left)? {
                session.handle_timeout(std::time::Instant::now());
            }
        }
    }

    fn timeouts(step: Duration) -> Timeouts {
        Timeouts {
            load_step: step,
            first_reply: Duration::from_secs(5),
            result: Duration::from_secs(60),
            status: Duration::from_secs(5),
            // The deadlines above are the whole budget: no per-byte allowance on top.
            link_bytes_per_sec: u32::MAX,
            chunk_retries: 5,
        }
    }

    /// STATUS round trip; the `STATUS_OK` line (or the refusal).
    pub fn status(&mut self) -> Result<String> {
        let t = Self::timeouts(Duration::from_secs(5));
        let s = StatusSession::new(std::time::Instant::now(), &t);
        Ok(match self.drive(s)? {
            Ok(o) => o.line.raw,
            Err(line) => line,
        })
    }

    /// START waiting for the RESULT; returns the RESULT line (or the refusal).
    pub fn start_wait(&mut self, module_id: &str, func: &str, args: &[i32]) -> Result<String> {
        let start = Start {
            module_id: ModuleId::new(module_id).map_err(|e| err(e.to_string()))?,
            func: Some(FuncName::new(func).map_err(|e| err(e.to_string()))?),
            args: Args::new(args.to_vec()).map_err(|e| err(e.to_string()))?,
        };
        let t = Self::timeouts(Duration::from_secs(5));
        let s = StartSession::new(std::time::Instant::now(), start, true, &t);
        Ok(match self.drive(s)? {
            Ok(o) => o.line.raw,
            Err(line) => line,
        })
    }

    /// LOAD with `replace=1`, legacy v1 (all raw bytes after `LOAD_READY`) or v2 chunked: the
    /// time from the LOAD line to `LOAD_OK`, or the refusal line.
    fn load(
        &mut self,
        module_id: &str,
        bytes: &[u8],
        chunked: bool,
        replace: bool,
        timeout: Duration,
    ) -> Result<std::result::Result<Duration, String>> {
        let options = LoadOptions {
            chunked,
            resume: false,
            replace,
            replace_victim: None,
            max_chunk: None,
            signature: None,
            deflated: None,
        };
        let id = ModuleId::new(module_id).map_err(|e| err(e.to_string()))?;
        let t0 = Instant::now();
        let s = LoadSession::new(
            std::time::Instant::now(),
            id,
            bytes.to_vec(),
            options,
            &Self::timeouts(timeout),
        )
        .map_err(|e| err(e.to_string()))?;
        Ok(self.drive(s)?.map(|_| t0.elapsed()))
    }

    /// Legacy v1 LOAD: the line, `LOAD_READY`, all raw bytes at once, `LOAD_OK`.
    pub fn load_raw(
        &mut self,
        module_id: &str,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<std::result::Result<Duration, String>> {
        self.load(module_id, bytes, false, true, timeout)
    }

    /// The legacy gateway's LOAD (GW-3 `load` without replace): `LOAD module_id= size= crc32=`,
    /// `LOAD_READY`, the whole payload in one write, `LOAD_OK`; the time from the LOAD line to
    /// `LOAD_OK`, or the refusal line.
    pub fn load_legacy(
        &mut self,
        module_id: &str,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<std::result::Result<Duration, String>> {
        self.load(module_id, bytes, false, false, timeout)
    }

    /// v2 chunked LOAD: stop-and-wait chunks of the size the device offers, then `LOAD_OK`.
    pub fn load_chunked(
        &mut self,
        module_id: &str,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<std::result::Result<Duration, String>> {
        self.load(module_id, bytes, true, true, timeout)
    }
}

/// The value of `key=` in a protocol line.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!(" {key}=");
    let i = line.find(&pat)? + pat.len();
    Some(line[i..].split(' ').next().unwrap_or(""))
}

/// Builds a C file to wasm with the legacy GW-3 flags (the gateway's, `modules/clang-flags.txt`), then, for
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
        .args(wasmbed_gateway::config::legacy_clang_flags())
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
