//! Shared helpers for the simulated-board tests: start the real `wasmbed-agent-sim` binary, talk
//! raw protocol lines to it over TCP or its PTY, and build the example modules with real clang.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Default wait for one reply line.
pub const REPLY: Duration = Duration::from_secs(5);

/// A running simulated board; killed on drop.
pub struct Sim {
    child: Child,
    /// `HOST:PORT` with `--listen`, or the PTY path with `--pty`.
    pub endpoint: String,
}

impl Sim {
    /// Start the sim listening on 127.0.0.1:0 with extra arguments.
    pub fn tcp(extra: &[&str]) -> Sim {
        let mut args = vec!["--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Self::spawn(&args, "listening on ")
    }

    /// Start the sim on a new pseudo-terminal.
    pub fn pty(extra: &[&str]) -> Sim {
        let mut args = vec!["--pty"];
        args.extend_from_slice(extra);
        Self::spawn(&args, "pty ")
    }

    fn spawn(args: &[&str], banner: &str) -> Sim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wasmbed-agent-sim"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // the sim's log (stderr) only when asked for: WASMBED_SIM_LOG=1 cargo test
            .stderr(if std::env::var_os("WASMBED_SIM_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("start wasmbed-agent-sim");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(l)) = lines.next() {
                let _ = tx.send(l);
            }
            for _ in lines {} // keep draining
        });
        let first = rx
            .recv_timeout(REPLY)
            .expect("sim printed no endpoint line");
        let endpoint = first
            .strip_prefix(banner)
            .unwrap_or_else(|| panic!("unexpected first stdout line {first:?}"))
            .to_string();
        Sim { child, endpoint }
    }

    /// Connect a raw TCP client (the sim must run with `--listen`).
    pub fn connect(&self) -> Link {
        let s = TcpStream::connect(&self.endpoint).expect("connect to sim");
        s.set_nodelay(true).unwrap();
        let r = s.try_clone().unwrap();
        let mut link = Link::new(Box::new(s.try_clone().unwrap()), Box::new(r));
        link.tcp = Some(s);
        link
    }

    /// `connect`, then wait for the agent's HELLO.
    #[track_caller]
    pub fn hello(&self) -> Link {
        let mut l = self.connect();
        l.expect("HELLO");
        l
    }

    /// Open the PTY (the sim must run with `--pty`).
    pub fn open_pty(&self) -> Link {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.endpoint)
            .expect("open pty");
        let r = f.try_clone().unwrap();
        Link::new(Box::new(f), Box::new(r))
    }

    /// Whether the process is still alive.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Send SIGTERM and wait (bounded) for the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One connection to the agent: line reads with timeouts, raw writes.
pub struct Link {
    w: Box<dyn Write + Send>,
    lines: Receiver<String>,
    tcp: Option<TcpStream>,
}

impl Drop for Link {
    fn drop(&mut self) {
        // the reader thread holds a clone: shut the socket down so the sim sees the disconnect
        if let Some(s) = &self.tcp {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Link {
    fn new(w: Box<dyn Write + Send>, r: Box<dyn Read + Send>) -> Link {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(r);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let l = String::from_utf8_lossy(&buf)
                            .trim_end_matches('\n')
                            .to_string();
                        if tx.send(l).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Link {
            w,
            lines: rx,
            tcp: None,
        }
    }

    /// Send one command line (a `\n` is appended).
    pub fn send(&mut self, line: &str) {
        self.w.write_all(format!("{line}\n").as_bytes()).unwrap();
        self.w.flush().unwrap();
    }

    /// Send raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
        self.w.flush().unwrap();
    }

    /// The next line, or None after `timeout`.
    pub fn try_line(&mut self, timeout: Duration) -> Option<String> {
        match self.lines.recv_timeout(timeout) {
            Ok(l) => Some(l),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// The next line; panics after `REPLY`.
    pub fn line(&mut self) -> String {
        self.try_line(REPLY).expect("no reply line within timeout")
    }

    /// Skip lines until one starts with `prefix` (within `timeout`); returns it.
    #[track_caller]
    pub fn expect_within(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.try_line(left) {
                Some(l) if l.starts_with(prefix) => return l,
                Some(l) => skipped.push(l),
                None => {
                    panic!("no line starting with {prefix:?} within {timeout:?}; saw {skipped:?}")
                }
            }
        }
    }

    /// `expect_within(prefix, REPLY)`.
    #[track_caller]
    pub fn expect(&mut self, prefix: &str) -> String {
        self.expect_within(prefix, REPLY)
    }

    /// Send a command and return the next line starting with `prefix`.
    #[track_caller]
    pub fn ask(&mut self, cmd: &str, prefix: &str) -> String {
        self.send(cmd);
        self.expect(prefix)
    }

    /// Send a command and assert its reply: the next line starting with the first word of
    /// `expected` is `expected`.
    #[track_caller]
    pub fn answers(&mut self, cmd: &str, expected: &str) {
        let prefix = expected.split(' ').next().unwrap();
        assert_eq!(self.ask(cmd, prefix), expected, "reply to {cmd}");
    }

    /// Assert that no line arrives for `d` (or only lines not starting with `prefix`).
    pub fn quiet(&mut self, prefix: &str, d: Duration) {
        let deadline = Instant::now() + d;
        while let Some(l) = self.try_line(deadline.saturating_duration_since(Instant::now())) {
            assert!(!l.starts_with(prefix), "unexpected line {l:?}");
        }
    }

    /// v1 LOAD of `bytes` with extra parameters; returns the final LOAD_OK/LOAD_ERR line.
    pub fn load(&mut self, id: &str, bytes: &[u8], extra: &str) -> String {
        self.send(&format!(
            "LOAD module_id={id} size={} crc32={:08x}{extra}",
            bytes.len(),
            crc32(bytes)
        ));
        let l = self.expect("LOAD_");
        if !l.starts_with("LOAD_READY") {
            return l;
        }
        assert_eq!(
            l,
            format!(
                "LOAD_READY module_id={id} size={} crc32={:08x}",
                bytes.len(),
                crc32(bytes)
            )
        );
        self.send_raw(bytes);
        self.expect("LOAD_")
    }

    /// LOAD that must succeed.
    pub fn load_ok(&mut self, id: &str, bytes: &[u8]) {
        let l = self.load(id, bytes, "");
        assert_eq!(l, "LOAD_OK", "loading {id}");
    }

    /// START, expect START_OK, return the RESULT line (waits up to `timeout`).
    pub fn run(&mut self, start: &str, timeout: Duration) -> String {
        self.send(start);
        let first = self.expect_within("", REPLY);
        assert_eq!(first, "START_OK", "for {start}");
        self.expect_within("RESULT ", timeout)
    }

    /// The value of `key=` in a line (unquoted values only).
    pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
        line.split(' ')
            .find_map(|t| t.strip_prefix(&format!("{key}=")))
    }
}

/// zlib CRC-32.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (0u32.wrapping_sub(crc & 1)));
        }
    }
    !crc
}

fn modules_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../modules")
}

/// The example modules compiled with real clang via `modules/build.sh` (once per test binary).
pub fn module(name: &str) -> Vec<u8> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("wasmbed-mods")
            .tempdir()
            .unwrap()
            .keep();
        let st = Command::new(modules_src().join("build.sh"))
            .arg(&dir)
            .stdout(Stdio::null())
            .status()
            .expect("run modules/build.sh");
        assert!(st.success(), "modules/build.sh failed");
        dir
    });
    std::fs::read(dir.join(format!("{name}.wasm"))).unwrap_or_else(|e| panic!("{name}.wasm: {e}"))
}

/// Compile a C snippet to wasm with the same flags as modules/build.sh.
pub fn compile_c(name: &str, src: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join(format!("{name}.c"));
    std::fs::write(&c, src).unwrap();
    let st = Command::new(modules_src().join("build.sh"))
        .arg(dir.path())
        .arg(&c)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "compiling {name}");
    std::fs::read(dir.path().join(format!("{name}.wasm"))).unwrap()
}

/// A module from WebAssembly text, compiled with wabt's `wat2wasm`.
pub fn wat(src: &str) -> Vec<u8> {
    use std::io::Write as _;
    let mut child = Command::new("wat2wasm")
        .args(["-", "--output=-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run wat2wasm (apt-get install wabt)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(src.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.starts_with(b"\0asm"),
        "wat2wasm failed for {src}"
    );
    out.stdout
}
