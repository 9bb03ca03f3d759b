//! Replays every `@replay v2` conformance transcript of `testdata/protocol/` against the running
//! simulated board: the `>` lines (and payload bytes) are sent as written, the `<` lines must come
//! back byte for byte. Reference module sizes are matched by padding the real module with a
//! custom section, so chunk boundaries stay those of the transcript; `size=`/`wasm=`/`crc32=`
//! values are substituted as testdata/protocol/README.md describes.

mod common;

use common::{crc32, module, wat, Link, Sim};
use ed25519_dalek::{Signer, SigningKey};
use std::path::Path;
use std::time::Duration;
use wasmbed_agent_proto::frame;
use wasmbed_agent_proto::signing::{hex, signed_message};
use wasmbed_agent_proto::ModuleId;

/// The Ed25519 key of `@trust`/`@sign`: 32 bytes of `<seed>` (one hex byte).
fn seed_key(seed: &str) -> SigningKey {
    SigningKey::from_bytes(&[u8::from_str_radix(seed, 16).expect("seed: one hex byte"); 32])
}

/// `{sig}`: the signature (`@sign <seed> <ver>`) of the real payload as the operation's module.
fn signature(t: &Transcript, payload: &[u8]) -> Option<String> {
    let (seed, ver) = t.header("sign")?.split_once(' ')?;
    let id = t
        .header("operation")?
        .split_whitespace()
        .find_map(|f| f.strip_prefix("module_id="))?;
    let msg = signed_message(
        &ModuleId::new(id).unwrap(),
        ver.parse().unwrap(),
        None,
        payload,
    )
    .unwrap();
    Some(hex(&seed_key(seed).sign(&msg).to_bytes()))
}

/// Append a custom section so the module is exactly `target` bytes (still valid wasm).
fn pad_to(mut m: Vec<u8>, target: usize) -> Vec<u8> {
    assert!(target >= m.len() + 8, "reference module smaller than ours");
    let add = target - m.len();
    for leb_len in 1..=3usize {
        let size = add - 1 - leb_len;
        let mut leb = Vec::new();
        let mut v = size;
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                leb.push(b);
                break;
            }
            leb.push(b | 0x80);
        }
        if leb.len() == leb_len {
            m.push(0);
            m.extend_from_slice(&leb);
            m.push(3);
            m.extend_from_slice(b"pad");
            m.resize(target, 0);
            return m;
        }
    }
    unreachable!()
}

struct Transcript {
    name: String,
    headers: Vec<(String, String)>,
    items: Vec<String>,
}

fn parse(path: &Path) -> Transcript {
    let text = std::fs::read_to_string(path).unwrap();
    let mut t = Transcript {
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        headers: Vec::new(),
        items: Vec::new(),
    };
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(h) = line.strip_prefix('@') {
            let (k, v) = h.split_once(' ').unwrap_or((h, ""));
            t.headers.push((k.to_string(), v.to_string()));
        } else {
            t.items.push(line.to_string());
        }
    }
    t
}

impl Transcript {
    fn header(&self, k: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(h, _)| h == k)
            .map(|(_, v)| v.as_str())
    }
}

/// Substitute reference size/crc by the real ones and expand `{crc32:A..B}`.
fn subst(line: &str, reference: Option<(&str, &str)>, payload: &[u8]) -> String {
    let mut out = line.to_string();
    if let Some((size, crc)) = reference {
        let real_crc = format!("{:08x}", crc32(payload));
        out = out
            .replace(&format!("size={size}"), &format!("size={}", payload.len()))
            .replace(&format!("wasm={size}"), &format!("wasm={}", payload.len()))
            .replace(&format!("crc32={crc}"), &format!("crc32={real_crc}"));
    }
    while let Some(start) = out.find("{crc32:") {
        let end = start + out[start..].find('}').unwrap();
        let (a, b) = out[start + 7..end].split_once("..").unwrap();
        let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
        out.replace_range(start..=end, &format!("{:08x}", crc32(&payload[a..b])));
    }
    out
}

/// Bring the fresh board into the `@given` state.
fn given(l: &mut Link, state: &str) {
    for part in state.split_whitespace() {
        if let Some(ids) = part.strip_prefix("loaded=") {
            for id in ids.split(',') {
                l.load_ok(id, &module("math_ops"));
            }
        } else if let Some(id) = part.strip_prefix("running=") {
            l.load_ok(id, &module("busy_loop"));
            l.send(&format!("START module_id={id} func=busy_loop"));
            assert_eq!(l.line(), "START_OK");
        } else if let Some(id) = part.strip_prefix("starting=") {
            // LOAD of a module whose (start) function spins: sent, LOAD_READY, no final answer
            let spin = wat("(module (memory 1) (func $spin (loop $l (br $l))) (start $spin))");
            l.send(&format!(
                "LOAD module_id={id} size={} crc32={:08x}",
                spin.len(),
                crc32(&spin)
            ));
            assert!(l.line().starts_with("LOAD_READY"));
            l.send_raw(&spin);
        }
    }
}

fn replay(t: &Transcript) {
    let reference = t.header("module").map(|m| {
        let f: Vec<&str> = m.split_whitespace().collect();
        (f[0].to_string(), f[1].to_string(), f[2].to_string())
    });
    let pattern = t
        .header("payload")
        .and_then(|p| p.strip_prefix("pattern "))
        .map(|n| n.parse::<usize>().expect("@payload pattern <size>"));
    let testdata = |name: &str| {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../testdata/protocol")
                .join(name),
        )
        .unwrap_or_else(|e| panic!("{}: testdata/protocol/{name}: {e}", t.name))
    };
    // `@deflate <file>`: the frames carry this stream once LOAD_READY says compress=deflate
    let deflated = t.header("deflate").map(testdata);
    let mut framed_stream = false;
    let file = t.header("payload").and_then(|p| p.strip_prefix("file "));
    let payload = match (&reference, pattern) {
        (None, None) if file.is_some() => testdata(file.unwrap()),
        (Some((name, size, _)), _) => pad_to(module(name), size.parse().unwrap()),
        // synthetic bytes (not a module): byte i = (7 i + 3) mod 256, as README.md says
        (None, Some(n)) => (0..n).map(|i| (i * 7 + 3) as u8).collect(),
        (None, None) => Vec::new(),
    };
    let refs = reference.as_ref().map(|(_, s, c)| (s.as_str(), c.as_str()));
    let sig = signature(t, &payload);
    // `@trust <seed>,..`: the board requires signatures by these keys
    let keys: Vec<String> = t
        .header("trust")
        .map(|s| {
            s.split(',')
                .map(|seed| hex(seed_key(seed).verifying_key().as_bytes()))
                .collect()
        })
        .unwrap_or_default();
    // `@given … identity=<seed hex>`: the board's identity file holds that seed.
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("board.identity");
    let key_path = key_file.display().to_string();
    let given_state = t.header("given").unwrap_or("empty");
    let mut args = Vec::new();
    for k in &keys {
        args.extend(["--trusted-key", k.as_str()]);
    }
    if let Some(seed) = given_state
        .split_whitespace()
        .find_map(|p| p.strip_prefix("identity="))
    {
        write_private(&key_file, &format!("{seed}\n"));
        args.extend(["--identity-file", key_path.as_str()]);
    }
    // `@sim <args>`: extra simulated-board arguments (e.g. `--baud`, which BAUD needs)
    args.extend(t.header("sim").unwrap_or("").split_whitespace());
    let sim = Sim::tcp(&args);
    let mut l = sim.hello();
    given(&mut l, given_state);
    for item in &t.items {
        if let Some(cmd) = item.strip_prefix("> ") {
            if cmd == "[payload]" {
                l.send_raw(&payload);
            } else if cmd == "[newline]" {
                l.send_raw(b"\n");
            } else if let Some(range) = cmd
                .strip_prefix("[frame ")
                .and_then(|r| r.strip_suffix(']'))
            {
                let (a, b) = range.split_once("..").unwrap();
                let (a, b) = (a.parse::<usize>().unwrap(), b.parse::<usize>().unwrap());
                let src = match (&deflated, framed_stream) {
                    (Some(d), true) => &d[..],
                    _ => &payload[..],
                };
                l.send_raw(&frame::chunk_frame(a as u32, &src[a..b]));
            } else if let Some(range) = cmd
                .strip_prefix("[payload ")
                .and_then(|r| r.strip_suffix(']'))
            {
                let (a, b) = range.split_once("..").unwrap();
                l.send_raw(&payload[a.parse::<usize>().unwrap()..b.parse::<usize>().unwrap()]);
            } else {
                let mut line = subst(cmd, refs, &payload);
                if let Some(s) = &sig {
                    line = line.replace("{sig}", s);
                }
                l.send(&line);
            }
        } else if let Some(want) = item.strip_prefix("< ") {
            if want.starts_with("LOAD_READY ") && want.contains(" compress=deflate") {
                framed_stream = true;
            }
            let got = l.try_line(Duration::from_secs(5));
            assert_eq!(
                got.as_deref(),
                Some(subst(want, refs, &payload).as_str()),
                "{}",
                t.name
            );
        } else if let Some(ms) = item.strip_prefix("~ ") {
            std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
        } else {
            panic!("{}: unknown item {item:?}", t.name);
        }
    }
    l.quiet("", Duration::from_millis(150));
}

/// Writes a file only its owner can read (what the sim requires of an identity file).
fn write_private(path: &Path, text: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn replay_v2_transcripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/protocol");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    let mut replayed = 0;
    for f in &files {
        let t = parse(f);
        if t.header("replay") == Some("v2") {
            replay(&t);
            replayed += 1;
        }
    }
    assert!(
        replayed >= 5,
        "only {replayed} replayable transcripts in {}",
        dir.display()
    );
    eprintln!("replayed {replayed} of {} transcripts", files.len());
}

#[test]
fn padding_keeps_modules_valid() {
    let m = pad_to(module("math_ops"), 460);
    assert_eq!(m.len(), 460);
    let sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    l.load_ok("p", &m);
    assert_eq!(
        l.run(
            r#"START module_id=p func=add args="a=2,b=2""#,
            Duration::from_secs(5)
        ),
        "RESULT status=OK module_id=p func=add ret_i32=4"
    );
}
