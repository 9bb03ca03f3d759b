//! The examples and the error table of docs/HOST-API.md, read through the typed API: every
//! `json` line parses into its type and serializes back to the same JSON, so the document and
//! the types cannot drift apart.

use serde_json::Value;
use wasmbed_api::{ErrorCode, Op, OpResult, RequestLine, ServerMessage, StartResult, API_VERSION};

const DOC: &str = include_str!("../../docs/HOST-API.md");

/// The lines of every ```json block, grouped by block.
fn json_blocks() -> Vec<Vec<&'static str>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in DOC.lines() {
        match (&mut current, line.trim()) {
            (None, "```json") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.push(current.take().unwrap()),
            (Some(b), l) if !l.is_empty() => b.push(l),
            _ => {}
        }
    }
    assert!(current.is_none(), "unterminated json block");
    blocks
}

fn value(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

#[test]
fn every_example_round_trips_through_its_type() {
    let blocks = json_blocks();
    let mut ops_seen = Vec::new();
    for block in &blocks {
        // A block opens with a request; the lines after it are what the gateway sends for it.
        let req = RequestLine::from_value(value(block[0]))
            .unwrap_or_else(|e| panic!("{e}: {}", block[0]));
        assert_eq!(serde_json::to_value(&req).unwrap(), value(block[0]));
        let op = req.request.op();
        ops_seen.push(op);
        for line in &block[1..] {
            let msg =
                ServerMessage::parse(line, op, None).unwrap_or_else(|e| panic!("{e}: {line}"));
            let back = match &msg {
                ServerMessage::Event(e) => serde_json::to_value(e).unwrap(),
                ServerMessage::Reply(r) => serde_json::to_value(r).unwrap(),
                ServerMessage::Skipped { .. } => panic!("skipped: {line}"),
            };
            assert_eq!(back, value(line), "{op}: {line}");
        }
    }
    for op in Op::ALL {
        assert!(ops_seen.contains(&op), "no example for `{op}`");
    }
}

#[test]
fn examples_read_as_the_types_say() {
    let blocks = json_blocks();
    let start = blocks
        .iter()
        .find(|b| b[0].contains(r#""op": "start""#))
        .unwrap();
    let ServerMessage::Reply(r) = ServerMessage::parse(start[1], Op::Start, None).unwrap() else {
        panic!("not a reply");
    };
    let Ok(OpResult::Start(s)) = r.outcome else {
        panic!("not a start result: {:?}", r.outcome)
    };
    let run = s.result().expect("a RESULT");
    assert_eq!((run.ret, run.ret_u32), (Some(-5), Some(4294967291)));
    assert_eq!(StartResult::new(s.line.clone(), Some(run)), s);
    let devices = blocks
        .iter()
        .find(|b| b[0].contains(r#""op": "devices""#))
        .unwrap();
    let ServerMessage::Reply(r) = ServerMessage::parse(devices[1], Op::Devices, None).unwrap()
    else {
        panic!("not a reply");
    };
    let Ok(OpResult::Devices(d)) = r.outcome else {
        panic!("{:?}", r.outcome)
    };
    assert_eq!(d.api_version, API_VERSION);
    // Another request's reply is skipped without reading its result.
    let other = wasmbed_api::RequestId::from(99);
    assert!(matches!(
        ServerMessage::parse(devices[1], Op::Start, Some(&other)).unwrap(),
        ServerMessage::Skipped { .. }
    ));
}

#[test]
fn error_table_matches_error_code() {
    let section = DOC
        .split("## Error codes")
        .nth(1)
        .expect("error code section");
    let mut rows = Vec::new();
    // the code table only: the `error.help` table after it also has rows starting with a code
    let table_lines = section
        .lines()
        .skip_while(|l| !l.starts_with("| code"))
        .take_while(|l| l.starts_with('|'));
    for line in table_lines.filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let code = cells[1].trim_matches('`');
        let exit: i32 = cells[3]
            .parse()
            .unwrap_or_else(|_| panic!("exit code of {line}"));
        rows.push((code.to_string(), exit));
    }
    let table: Vec<(String, i32)> = ErrorCode::ALL
        .iter()
        .map(|c| (c.as_str().to_string(), c.exit_code().code()))
        .collect();
    assert_eq!(rows, table);
}

#[test]
fn requests_are_checked_beyond_their_types() {
    let bad = [
        (r#"{"op": "reboot", "id": 1}"#, "no op `reboot`"),
        (
            r#"{"op": "status", "id": [1], "device": "sim"}"#,
            "`id` must be",
        ),
        (r#"{"op": "status", "id": 1}"#, "missing field `device`"),
        (
            r#"{"op": "start", "id": 1, "device": "d", "module_id": "m", "args": [1,2,3,4,5]}"#,
            "at most 4",
        ),
        (
            r#"{"op": "start", "id": 1, "device": "d", "module_id": "m", "args": [4294967296]}"#,
            "invalid",
        ),
        (
            r#"{"op": "stop", "id": 1, "device": "d", "module_id": "m", "result_timeout_ms": 3600001}"#,
            "result_timeout_ms must be",
        ),
        (
            r#"{"op": "build_and_deploy", "id": 1, "device": "d", "module_id": "m", "size": 1, "crc32": "00000000"}"#,
            "needs `mode`",
        ),
        (
            r#"{"op": "deploy", "id": 1, "device": "d", "module_id": "m", "size": 1, "crc32": "xyz"}"#,
            "8 hex digits",
        ),
        (
            r#"{"op": "stop", "id": 1, "device": "d", "module_id": "m", "wait": "yes"}"#,
            "invalid type",
        ),
        // The identifier rule of wasmbed-agent-proto, at the first layer that sees the request.
        (
            r#"{"op": "unload", "id": 1, "device": "d", "module_id": "a:b"}"#,
            "invalid module_id",
        ),
        (
            r#"{"op": "start", "id": 1, "device": "d", "module_id": "m", "func": "f g"}"#,
            "invalid func",
        ),
        (
            r#"{"op": "deploy", "id": 1, "device": "d", "module_id": "m", "size": 1, "crc32": "00000000", "replace_victim": "v=1"}"#,
            "invalid replace_victim",
        ),
    ];
    for (line, want) in bad {
        let err = RequestLine::from_value(value(line))
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{line}: {err}");
    }
    // Explicit nulls read like absent fields.
    let r = RequestLine::from_value(value(
        r#"{"op": "start", "id": 1, "device": "d", "module_id": "m", "args": null, "wait_result": null}"#,
    ))
    .unwrap();
    let wasmbed_api::Request::Start(s) = r.request else {
        panic!()
    };
    assert!(s.args.is_empty() && !s.wait_result);
}

/// Beyond one example per op: the examples show every event, an error reply and a job record,
/// so each of those types is round-tripped above too.
#[test]
fn examples_cover_every_event_an_error_and_a_job_record() {
    use wasmbed_api::{Event, ProgressPhase};
    let (mut phases, mut log, mut error, mut job) = (Vec::new(), false, false, false);
    for block in json_blocks() {
        let op = RequestLine::from_value(value(block[0]))
            .unwrap()
            .request
            .op();
        for line in &block[1..] {
            match ServerMessage::parse(line, op, None).unwrap() {
                ServerMessage::Event(e) => match e.event {
                    Event::Progress { phase, .. } => phases.push(phase),
                    Event::Log { .. } => log = true,
                },
                ServerMessage::Reply(r) => match &r.outcome {
                    Err(_) => error = true,
                    Ok(OpResult::Status(s)) => job |= !s.jobs.is_empty(),
                    Ok(_) => {}
                },
                ServerMessage::Skipped { .. } => {}
            }
        }
    }
    for p in [ProgressPhase::Compile, ProgressPhase::Upload] {
        assert!(phases.contains(&p), "no progress event of phase {p:?}");
    }
    assert!(log, "no log event");
    assert!(error, "no error reply");
    assert!(job, "no status reply with a job record");
}
