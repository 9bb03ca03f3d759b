//! Replays every golden transcript in `testdata/protocol/` through the session state machines
//! (format: `testdata/protocol/README.md`).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{forge_payload, Clock};
use wasmbed_agent_proto::parse::fields;
use wasmbed_agent_proto::*;

#[derive(Debug)]
enum Step {
    Send(String),
    Payload(Option<(usize, usize)>),
    /// `> [frame A..B]`: module bytes A..B as one framed chunk at offset A.
    Frame(usize, usize),
    /// `> [newline]`: a lone `\n` (ends a partial frame before a resend).
    Newline,
    Recv(String),
    Wait(u64),
}

#[derive(Debug)]
struct Transcript {
    path: PathBuf,
    headers: HashMap<String, String>,
    steps: Vec<Step>,
}

const HEADERS: &[&str] = &[
    "title",
    "generation",
    "replay",
    "given",
    "operation",
    "module",
    "payload",
    "outcome",
    "detail",
    "unsolicited",
    "seq",
    "trust",
    "sign",
    "sim",
    "deflate",
];

fn load(path: &Path) -> Transcript {
    let text = std::fs::read_to_string(path).unwrap();
    let mut headers = HashMap::new();
    let mut steps = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = || format!("{}:{}", path.display(), n + 1);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(h) = line.strip_prefix('@') {
            let (k, v) = h.split_once(' ').unwrap_or((h, ""));
            assert!(HEADERS.contains(&k), "{}: unknown header @{k}", at());
            assert!(
                headers
                    .insert(k.to_string(), v.trim().to_string())
                    .is_none(),
                "{}: duplicate @{k}",
                at()
            );
        } else if let Some(range) = line
            .strip_prefix("> [frame ")
            .and_then(|r| r.strip_suffix(']'))
        {
            let (a, b) = range
                .split_once("..")
                .unwrap_or_else(|| panic!("{}: bad range", at()));
            steps.push(Step::Frame(a.parse().unwrap(), b.parse().unwrap()));
        } else if line == "> [newline]" {
            steps.push(Step::Newline);
        } else if let Some(s) = line.strip_prefix("> ") {
            steps.push(
                match s.strip_prefix("[payload").and_then(|r| r.strip_suffix(']')) {
                    Some("") => Step::Payload(None),
                    Some(range) => {
                        let (a, b) = range
                            .trim()
                            .split_once("..")
                            .unwrap_or_else(|| panic!("{}: bad range", at()));
                        Step::Payload(Some((a.parse().unwrap(), b.parse().unwrap())))
                    }
                    None => Step::Send(s.to_string()),
                },
            );
        } else if let Some(r) = line.strip_prefix("< ") {
            steps.push(Step::Recv(r.to_string()));
        } else if let Some(ms) = line.strip_prefix("~ ") {
            steps.push(Step::Wait(
                ms.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{}: bad wait", at())),
            ));
        } else {
            panic!("{}: unrecognised line {line:?}", at());
        }
    }
    for required in ["title", "generation", "replay", "operation", "outcome"] {
        assert!(
            headers.contains_key(required),
            "{}: missing @{required}",
            path.display()
        );
    }
    Transcript {
        path: path.to_path_buf(),
        headers,
        steps,
    }
}

/// A binary file beside the transcripts (`@payload file`, `@deflate`).
fn testdata_file(name: &str) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/protocol");
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("testdata/protocol/{name}: {e}"))
}

/// `@deflate <file>`: the upload's raw deflate stream, offered with `compress=deflate`.
fn deflated_of(t: &Transcript) -> Option<Vec<u8>> {
    t.headers.get("deflate").map(|f| testdata_file(f))
}

fn payload_of(t: &Transcript) -> Vec<u8> {
    if let Some(m) = t.headers.get("module") {
        let parts: Vec<&str> = m.split_whitespace().collect();
        let [_name, size, crc] = parts[..] else {
            panic!("{}: @module <name> <size> <crc32>", t.path.display())
        };
        forge_payload(size.parse().unwrap(), Crc32::parse_hex(crc).unwrap().0)
    } else if let Some(file) = t
        .headers
        .get("payload")
        .and_then(|p| p.strip_prefix("file "))
    {
        testdata_file(file)
    } else if let Some(p) = t.headers.get("payload") {
        let size: usize = p
            .strip_prefix("pattern ")
            .expect("@payload pattern <size>")
            .parse()
            .unwrap();
        (0..size).map(|i| (i * 7 + 3) as u8).collect()
    } else {
        Vec::new()
    }
}

/// `@sign <seed> <ver>`: the key (32 bytes `<seed>`) and version the session signs with.
fn signing(t: &Transcript) -> Option<(ed25519_dalek::SigningKey, u32)> {
    let (seed, ver) = t.headers.get("sign")?.split_once(' ')?;
    let seed = u8::from_str_radix(seed, 16).expect("@sign <seed hex byte> <ver>");
    Some((
        ed25519_dalek::SigningKey::from_bytes(&[seed; 32]),
        ver.parse().expect("@sign <seed> <ver>"),
    ))
}

/// The signature of the upload in `t` (`@sign`), over its payload.
fn module_signature(
    t: &Transcript,
    module_id: &ModuleId,
    payload: &[u8],
) -> Option<ModuleSignature> {
    use ed25519_dalek::Signer;
    let (key, ver) = signing(t)?;
    let msg = signed_message(module_id, ver, None, payload).unwrap();
    Some(ModuleSignature {
        ver,
        key: KeyId::of(key.verifying_key().as_bytes()),
        sig: Signature(key.sign(&msg).to_bytes()),
    })
}

/// Replaces `{crc32:A..B}` with the CRC of `payload[A..B]` and `{sig}` with the upload's
/// signature (`@sign`).
fn substitute(line: &str, payload: &[u8], sig: Option<&ModuleSignature>) -> String {
    let mut out = line.to_string();
    if let Some(s) = sig {
        out = out.replace("{sig}", &s.sig.to_string());
    }
    while let Some(start) = out.find("{crc32:") {
        let end = start + out[start..].find('}').unwrap();
        let (a, b) = out[start + 7..end].split_once("..").unwrap();
        let crc = Crc32::of(&payload[a.parse::<usize>().unwrap()..b.parse::<usize>().unwrap()]);
        out.replace_range(start..=end, &crc.to_string());
    }
    out
}

/// What a finished session reports, normalised for comparison with `@outcome`/`@detail`.
struct Summary {
    kind: &'static str,
    detail: String,
}

fn summarize<O>(r: &Result<O, SessionError>, ok: impl Fn(&O) -> (&'static str, String)) -> Summary {
    match r {
        Ok(o) => {
            let (kind, detail) = ok(o);
            Summary { kind, detail }
        }
        Err(e @ SessionError::Timeout { .. }) => Summary {
            kind: "timeout",
            detail: e.to_string(),
        },
        Err(SessionError::Rejected { line }) => Summary {
            kind: "rejected",
            detail: line.raw.clone(),
        },
        Err(e @ SessionError::Protocol { .. }) => Summary {
            kind: "protocol",
            detail: e.to_string(),
        },
        Err(e @ SessionError::RetriesExhausted { .. }) => Summary {
            kind: "retries-exhausted",
            detail: e.to_string(),
        },
    }
}

fn replay<S: Session>(
    t: &Transcript,
    mut s: S,
    mut clock: Clock,
    payload: &[u8],
    sig: Option<&ModuleSignature>,
    ok: impl Fn(&S::Outcome) -> (&'static str, String),
) {
    let name = t.path.display();
    // frames carry the deflate stream once LOAD_READY confirms compress=deflate
    let deflated = deflated_of(t);
    let mut framed_stream = false;
    if let Some(seq) = t.headers.get("seq") {
        s.set_seq(seq.parse().expect("@seq <u32>"));
    }
    let mut unsolicited = 0;
    let mut drain_events = |s: &mut S| {
        while let Some(e) = s.poll_event() {
            if matches!(e, Event::Unsolicited(_)) {
                unsolicited += 1;
            }
        }
    };
    for (i, step) in t.steps.iter().enumerate() {
        match step {
            Step::Send(expected) => {
                let expected = substitute(expected, payload, sig);
                let got = match s.poll_transmit() {
                    Some(Transmit::Line(c)) => c,
                    Some(Transmit::Tagged(c, seq)) => {
                        // the seq is the last field, exactly as written
                        let tail = format!(" seq={seq}");
                        assert!(expected.ends_with(&tail), "{name} step {i}: sent {c}{tail}");
                        c
                    }
                    other => panic!(
                        "{name} step {i}: expected line {expected:?}, session sent {other:?}"
                    ),
                };
                // Compared as the agent parses them: `args=` names are ignored.
                assert_eq!(
                    parse_command(expected.as_bytes()),
                    parse_command(&got.to_wire()),
                    "{name} step {i}: sent {got}"
                );
                assert!(
                    parse_command(expected.as_bytes()).is_ok(),
                    "{name} step {i}: bad line"
                );
            }
            Step::Payload(range) => {
                let want = match range {
                    None => payload,
                    Some((a, b)) => &payload[*a..*b],
                };
                match s.poll_transmit() {
                    Some(Transmit::Payload(p)) => {
                        assert!(p == want, "{name} step {i}: payload bytes differ")
                    }
                    other => panic!("{name} step {i}: expected payload, session sent {other:?}"),
                }
            }
            Step::Frame(a, b) => match s.poll_transmit() {
                Some(Transmit::Payload(p)) => assert!(
                    p == frame::chunk_frame(
                        *a as u32,
                        &match (&deflated, framed_stream) {
                            (Some(d), true) => &d[..],
                            _ => payload,
                        }[*a..*b]
                    ),
                    "{name} step {i}: frame differs"
                ),
                other => panic!("{name} step {i}: expected a frame, session sent {other:?}"),
            },
            Step::Newline => match s.poll_transmit() {
                Some(Transmit::Payload(p)) => {
                    assert_eq!(p, b"\n", "{name} step {i}: expected a lone newline")
                }
                other => panic!("{name} step {i}: expected a newline, session sent {other:?}"),
            },
            Step::Recv(line) => {
                assert!(
                    s.poll_transmit().is_none(),
                    "{name} step {i}: unexpected transmit before {line:?}"
                );
                if line.starts_with("LOAD_READY ") && line.contains(" compress=deflate") {
                    framed_stream = true;
                }
                let now = clock.advance(Duration::from_millis(10));
                s.handle_timeout(now);
                s.handle_line(now, Item::Line(Line::parse(line)));
            }
            Step::Wait(ms) => {
                let now = clock.advance(Duration::from_millis(*ms));
                s.handle_timeout(now);
            }
        }
        drain_events(&mut s);
    }
    assert!(
        s.poll_transmit().is_none(),
        "{name}: session sent more than the transcript shows"
    );
    let outcome = s
        .outcome()
        .unwrap_or_else(|| panic!("{name}: no outcome at the end"));
    let got = summarize(outcome, ok);
    let h = &t.headers;
    assert_eq!(got.kind, h["outcome"], "{name}: outcome ({})", got.detail);
    if let Some(detail) = h.get("detail") {
        assert!(
            got.detail.contains(detail.as_str()),
            "{name}: detail {:?} lacks {detail:?}",
            got.detail
        );
    }
    if h.contains_key("seq") && matches!(got.kind, "ok" | "rejected") {
        // The session consumed the correlation tag: its outcome is the reply alone.
        assert!(
            !got.detail.contains("seq="),
            "{name}: decisive line keeps its seq: {:?}",
            got.detail
        );
    }
    if let Some(n) = h.get("unsolicited") {
        assert_eq!(unsolicited.to_string(), *n, "{name}: unsolicited events");
    }
}

fn params(t: &Transcript) -> (String, HashMap<String, String>) {
    let op = &t.headers["operation"];
    let (kind, rest) = op.split_once(' ').unwrap_or((op, ""));
    let map = fields(rest)
        .into_iter()
        .map(|f| {
            (
                f.key.to_string(),
                f.value.map(|v| v.into_owned()).unwrap_or_default(),
            )
        })
        .collect();
    (kind.to_string(), map)
}

fn run(t: &Transcript) {
    let (kind, p) = params(t);
    let clock = Clock::new();
    let now = clock.now();
    let timeouts = Timeouts::default();
    let payload = payload_of(t);
    let module = || ModuleId::new(p["module_id"].as_str()).unwrap();
    let flag = |k: &str| p.get(k).is_some_and(|v| v == "1");
    match kind.as_str() {
        "load" => {
            let options = LoadOptions {
                chunked: flag("chunked"),
                resume: flag("resume"),
                replace: flag("replace"),
                replace_victim: p
                    .get("replace_victim")
                    .map(|v| ModuleId::new(v.as_str()).unwrap()),
                max_chunk: p.get("max_chunk").map(|v| v.parse().unwrap()),
                signature: module_signature(t, &module(), &payload),
                deflated: deflated_of(t),
            };
            let sig = options.signature;
            let s = LoadSession::new(now, module(), payload.clone(), options, &timeouts).unwrap();
            replay(t, s, clock, &payload, sig.as_ref(), |o| {
                ("ok", o.line.raw.clone())
            });
        }
        "start" => {
            let start = Start {
                module_id: module(),
                func: p.get("func").map(|f| FuncName::new(f.as_str()).unwrap()),
                args: Args::parse_legacy(p.get("args").map_or("", String::as_str)).unwrap(),
            };
            let s = StartSession::new(now, start, flag("wait"), &timeouts);
            replay(t, s, clock, &payload, None, |o| ("ok", o.line.raw.clone()));
        }
        "stop" => {
            let s = StopSession::new(
                now,
                ModuleRef {
                    module_id: module(),
                },
                &timeouts,
            );
            replay(t, s, clock, &payload, None, |o| ("ok", o.line.raw.clone()));
        }
        "status" => {
            let s = StatusSession::new(now, &timeouts);
            replay(t, s, clock, &payload, None, |o| ("ok", o.line.raw.clone()));
        }
        "info" => {
            let s = InfoSession::new(now, &timeouts);
            replay(t, s, clock, &payload, None, |o| match o {
                InfoOutcome::V2 { line, .. } => ("ok", line.raw.clone()),
                InfoOutcome::V1 => ("v1", String::new()),
                InfoOutcome::Rebooted { hello } => ("rebooted", hello.raw.clone()),
            });
        }
        "unload" => {
            let s = UnloadSession::new(
                now,
                ModuleRef {
                    module_id: module(),
                },
                &timeouts,
            );
            replay(t, s, clock, &payload, None, |o| ("ok", o.line.raw.clone()));
        }
        "ident" => {
            let nonce = identity::Nonce::from_hex(&p["nonce"]).expect("nonce=<64 hex>");
            let s = IdentSession::new(now, nonce, &p["fingerprint"], &timeouts);
            replay(t, s, clock, &payload, None, |o| ("ok", o.line.raw.clone()));
        }
        "baud" => {
            let rate = p["rate"].parse().expect("baud rate=<u32>");
            let s = BaudSession::new(now, rate, &timeouts);
            replay(t, s, clock, &payload, None, |o| ("ok", o.line.raw.clone()));
        }
        "raw" => replay_raw(t),
        other => panic!("{}: unknown operation {other}", t.path.display()),
    }
}

/// `@operation raw`: `>` lines no session sends (a buggy or hostile client's malformed
/// parameters). The parser must refuse each of them as the agent does, every `<` line must read
/// as a refusal (an `_ERR`, `ERROR` or `RESULT` line), and the last one is the decisive line.
fn replay_raw(t: &Transcript) {
    let name = t.path.display();
    assert_eq!(
        t.headers["outcome"], "rejected",
        "{name}: raw lines are refused"
    );
    let mut last = None;
    for step in &t.steps {
        match step {
            Step::Send(line) => assert!(
                parse_command(line.as_bytes()).is_err(),
                "{name}: `{line}` parses: a session could send it, use its @operation"
            ),
            Step::Recv(line) => {
                let kw = parse_agent_line(line).keyword().map(str::to_string);
                assert!(
                    kw.as_deref()
                        .is_some_and(|k| k.ends_with("_ERR") || k == "ERROR" || k == "RESULT"),
                    "{name}: `{line}` is not a refusal"
                );
                last = Some(line.clone());
            }
            other => panic!("{name}: a raw transcript holds lines only, not {other:?}"),
        }
    }
    let last = last.unwrap_or_else(|| panic!("{name}: no reply"));
    if let Some(d) = t.headers.get("detail") {
        assert!(last.contains(d.as_str()), "{name}: decisive line {last:?}");
    }
}

fn transcripts() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/protocol");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_transcript_replays() {
    let files = transcripts();
    assert!(files.len() >= 25, "only {} transcripts", files.len());
    for f in &files {
        run(&load(f));
    }
}

#[test]
fn transcripts_cover_every_generation_and_operation() {
    let all: Vec<Transcript> = transcripts().iter().map(|p| load(p)).collect();
    for g in ["FW-A", "FW-B0", "FW-B1", "FW-B2", "FW-B3", "v2"] {
        assert!(
            all.iter().any(|t| t.headers["generation"] == g),
            "no transcript for {g}"
        );
    }
    for op in [
        "load", "start", "stop", "status", "info", "unload", "ident", "baud",
    ] {
        assert!(
            all.iter().any(|t| params(t).0 == op),
            "no transcript for {op}"
        );
    }
    for r in all.iter().map(|t| t.headers["replay"].as_str()) {
        assert!(
            ["v2", "no"].contains(&r),
            "@replay must be v2 or no, got {r}"
        );
    }
    assert!(all.iter().any(|t| t.headers["replay"] == "v2"));
}

#[test]
fn forged_payload_has_the_reference_crc() {
    let p = forge_payload(460, 0xd40c97d1);
    assert_eq!(
        (p.len(), Crc32::of(&p).to_string()),
        (460, "d40c97d1".to_string())
    );
}
