//! Session state machines driven by a virtual clock.

mod common;

use std::time::Duration;

use common::{Clock, Driver};
use wasmbed_agent_proto::*;

fn id(s: &str) -> ModuleId {
    ModuleId::new(s).unwrap()
}

fn start(module: &str, func: Option<&str>, args: &[i32]) -> Start {
    Start {
        module_id: id(module),
        func: func.map(|f| FuncName::new(f).unwrap()),
        args: Args::new(args.to_vec()).unwrap(),
    }
}

fn t() -> Timeouts {
    Timeouts::default()
}

fn load(payload: Vec<u8>, options: LoadOptions) -> Driver<LoadSession> {
    Driver::open(|now| LoadSession::new(now, id("math_ops"), payload, options, &t()).unwrap())
}

fn chunked() -> LoadOptions {
    LoadOptions {
        chunked: true,
        ..Default::default()
    }
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

#[test]
fn v1_load_with_console_noise() {
    let p = payload(460);
    let crc = Crc32::of(&p);
    let mut d = load(p.clone(), LoadOptions::default());
    assert_eq!(
        d.sent,
        [format!("LOAD module_id=math_ops size=460 crc32={crc}")]
    );
    d.recv("LED ON (thread 0x20001000)");
    d.recv(&format!("LOAD_READY size=460 crc32={crc}"));
    assert_eq!(d.sent[1], "<460 bytes>");
    assert_eq!(d.payloads[0], p);
    d.recv("LOAD_OK");
    let out = d.s.outcome().unwrap().as_ref().unwrap();
    assert!(!out.chunked);
    assert_eq!(d.unsolicited(), ["LED ON (thread 0x20001000)"]);
    assert_eq!(
        d.s.progress(),
        Progress {
            acked: 460,
            total: 460
        }
    );
    // Lines after the outcome are events, not dropped.
    d.recv("HELLO device_id=x rtos=Zephyr runtime=WAMR fw_version=1.0.0");
    assert_eq!(d.unsolicited().len(), 2);
}

#[test]
fn v1_load_payload_wait_scales_with_size() {
    let p = payload(64 * 1024);
    let crc = Crc32::of(&p);
    let mut d = load(p, LoadOptions::default());
    d.recv(&format!(
        "LOAD_READY module_id=math_ops size=65536 crc32={crc}"
    ));
    let wait = d.run_to_deadline();
    // 3 s + 65536 B / 11520 B/s = 3 s + 5689 ms.
    assert_eq!(wait, Duration::from_millis(3000 + 5689));
    match d.s.outcome().unwrap() {
        Err(SessionError::Timeout {
            phase: Phase::LoadFinal,
            last_line,
        }) => {
            assert!(last_line.as_deref().unwrap().starts_with("LOAD_READY"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn load_ready_timeout_names_phase() {
    let mut d = load(payload(10), LoadOptions::default());
    assert_eq!(d.run_to_deadline(), Duration::from_secs(3));
    let err = d.s.outcome().unwrap().as_ref().unwrap_err();
    assert_eq!(
        err,
        &SessionError::Timeout {
            phase: Phase::LoadReady,
            last_line: None
        }
    );
    assert!(err.to_string().contains("LOAD_READY/LOAD_ERR"));
}

#[test]
fn load_err_and_mismatched_ready() {
    let mut d = load(payload(10), LoadOptions::default());
    d.recv("LOAD_ERR code=NO_SLOT msg=\"MAX_MODULES reached\"");
    match d.s.outcome().unwrap() {
        Err(SessionError::Rejected { line }) => {
            assert!(matches!(&line.msg, AgentLine::LoadErr(e) if e.code == LoadErrCode::NoSlot))
        }
        other => panic!("{other:?}"),
    }
    let mut d = load(payload(10), LoadOptions::default());
    d.recv("LOAD_READY module_id=other size=10 crc32=00000000");
    assert!(!d.s.is_done(), "another module's LOAD_READY is not ours");
    d.recv("LOAD_READY module_id=math_ops size=11 crc32=00000000");
    assert!(matches!(
        d.s.outcome(),
        Some(Err(SessionError::Protocol { .. }))
    ));
    assert_eq!(d.sent.len(), 1, "no payload after a bad LOAD_READY");
}

#[test]
fn chunked_load_with_resend_after_chunk_err() {
    let p = payload(1000);
    let crc = Crc32::of(&p);
    let mut d = load(p.clone(), chunked());
    assert_eq!(
        d.sent[0],
        format!("LOAD module_id=math_ops size=1000 crc32={crc} chunked=1 framed=1")
    );
    // Wasmbed firmware before framing: no framed=1 in LOAD_READY, raw CHUNK payloads.
    d.recv(&format!(
        "LOAD_READY module_id=math_ops size=1000 crc32={crc} chunk=400 offset=0"
    ));
    let c0 = Crc32::of(&p[..400]);
    assert_eq!(
        d.sent[1..],
        [
            format!("CHUNK offset=0 size=400 crc32={c0}"),
            "<400 bytes>".into()
        ]
    );
    d.recv("CHUNK_OK offset=400");
    d.recv("[A] hello");
    d.recv("CHUNK_ERR code=BAD_CRC offset=400");
    // The same chunk again.
    let c1 = Crc32::of(&p[400..800]);
    let n = d.sent.len();
    assert_eq!(d.sent[n - 4..n - 2], d.sent[n - 2..]);
    assert_eq!(
        d.sent[n - 2],
        format!("CHUNK offset=400 size=400 crc32={c1}")
    );
    d.recv("CHUNK_OK offset=800");
    assert_eq!(d.payloads.last().unwrap(), &p[800..].to_vec());
    d.recv("CHUNK_OK offset=1000");
    d.recv("LOAD_OK");
    assert!(d.s.outcome().unwrap().as_ref().unwrap().chunked);
    let acked: Vec<u32> = d
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Progress(p) => Some(p.acked),
            _ => None,
        })
        .collect();
    assert_eq!(acked, [0, 400, 800, 1000]);
    assert_eq!(
        d.unsolicited(),
        ["[A] hello", "CHUNK_ERR code=BAD_CRC offset=400"]
    );
}

#[test]
fn chunk_retries_are_bounded() {
    let p = payload(100);
    let crc = Crc32::of(&p);
    let mut d = load(p, chunked());
    d.recv(&format!(
        "LOAD_READY module_id=math_ops size=100 crc32={crc} chunk=64 offset=0"
    ));
    for _ in 0..5 {
        d.recv("CHUNK_ERR code=BAD_CRC offset=0");
        assert!(!d.s.is_done());
    }
    d.recv("CHUNK_ERR code=BAD_CRC offset=0");
    assert!(matches!(
        d.s.outcome(),
        Some(Err(SessionError::RetriesExhausted {
            acked: 0,
            attempts: 6,
            ..
        }))
    ));
}

#[test]
fn chunked_resume_from_acked_offset() {
    let p = payload(1000);
    let crc = Crc32::of(&p);
    // First attempt: the link dies after the first ack.
    let mut d = load(p.clone(), chunked());
    d.recv(&format!(
        "LOAD_READY module_id=math_ops size=1000 crc32={crc} chunk=512 offset=0"
    ));
    d.recv("CHUNK_OK offset=512");
    let wait = d.run_to_deadline();
    assert_eq!(
        wait,
        Duration::from_millis(3000 + (488 + 64) * 1000 / 11520 + 1)
    );
    match d.s.outcome().unwrap() {
        Err(SessionError::Timeout {
            phase: Phase::Chunk { acked: 512 },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // Second attempt with resume=1: the agent reports offset 512.
    let opts = LoadOptions {
        resume: true,
        ..chunked()
    };
    let mut d = load(p.clone(), opts);
    assert!(d.sent[0].ends_with(" chunked=1 framed=1 resume=1"));
    d.recv(&format!(
        "LOAD_READY module_id=math_ops size=1000 crc32={crc} chunk=512 offset=512"
    ));
    assert_eq!(
        d.sent[1],
        format!("CHUNK offset=512 size=488 crc32={}", Crc32::of(&p[512..]))
    );
    d.recv("CHUNK_OK offset=1000");
    d.recv("LOAD_OK");
    assert_eq!(d.s.outcome().unwrap().as_ref().unwrap().resumed_from, 512);
}

fn framed_ready(d: &mut Driver<LoadSession>, crc: Crc32, size: usize, chunk: u32) {
    d.recv(&format!(
        "LOAD_READY module_id=math_ops size={size} crc32={crc} chunk={chunk} offset=0 framed=1"
    ));
}

#[test]
fn framed_chunks_never_take_a_foreign_line_and_resend_after_silence() {
    let p = payload(1000);
    let crc = Crc32::of(&p);
    let mut d = load(p.clone(), chunked());
    // an echoing link: our own LOAD line comes back first
    let load_line = d.sent[0].clone();
    d.recv(&load_line);
    framed_ready(&mut d, crc, 1000, 400);
    assert_eq!(d.sent[1], format!("<{} bytes>", d.payloads[0].len()));
    assert_eq!(d.payloads[0], frame::chunk_frame(0, &p[..400]));
    // the issue's case: a line that answers something else is not this chunk's answer
    d.recv("ERROR code=UNKNOWN_COMMAND");
    d.recv("RESULT status=NO_MODULE");
    assert!(!d.s.is_done(), "{:?}", d.s.outcome());
    d.recv("CHUNK_OK offset=400");
    assert_eq!(d.payloads[1], frame::chunk_frame(400, &p[400..800]));
    // no answer: a lone \n ends whatever partial frame the agent holds, then the same frame
    let wait = d.run_to_deadline();
    assert_eq!(
        wait,
        Duration::from_millis(3000 + (400 + 64) * 1000 / 11520 + 1)
    );
    assert!(!d.s.is_done());
    let n = d.payloads.len();
    assert_eq!(d.payloads[n - 2], b"\n");
    assert_eq!(d.payloads[n - 1], d.payloads[1]);
    // the answer to the partial frame, then to the resent one
    d.recv("CHUNK_ERR code=BAD_CRC offset=400");
    d.recv("CHUNK_OK offset=800");
    assert_eq!(
        d.payloads.last().unwrap(),
        &frame::chunk_frame(800, &p[800..])
    );
    d.recv("CHUNK_OK offset=1000");
    d.recv("LOAD_OK");
    let out = d.s.outcome().unwrap().as_ref().unwrap();
    assert!(out.chunked);
    assert_eq!(
        d.unsolicited(),
        [
            load_line.as_str(),
            "ERROR code=UNKNOWN_COMMAND",
            "RESULT status=NO_MODULE",
            "CHUNK_ERR code=BAD_CRC offset=400"
        ]
    );
}

#[test]
fn framed_chunk_silence_is_retried_a_bounded_number_of_times_then_names_the_offset() {
    let p = payload(1000);
    let crc = Crc32::of(&p);
    let mut d = load(p, chunked());
    framed_ready(&mut d, crc, 1000, 512);
    d.recv("CHUNK_OK offset=512");
    for _ in 0..5 {
        d.run_to_deadline();
        assert!(!d.s.is_done());
    }
    d.run_to_deadline();
    let err = d.s.outcome().unwrap().as_ref().unwrap_err();
    assert!(
        matches!(
            err,
            SessionError::RetriesExhausted {
                acked: 512,
                attempts: 6,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("offset 512"), "{err}");
    // 1 frame + 5 × (\n + frame)
    assert_eq!(d.payloads.len(), 2 + 5 * 2);
}

#[test]
fn framed_upload_parked_by_the_agent_is_not_resent_from_zero() {
    let p = payload(1000);
    let crc = Crc32::of(&p);
    let mut d = load(p, chunked());
    framed_ready(&mut d, crc, 1000, 512);
    d.recv("CHUNK_ERR code=NO_UPLOAD offset=0");
    assert!(matches!(
        d.s.outcome(),
        Some(Err(SessionError::Rejected { .. }))
    ));
    assert_eq!(d.payloads.len(), 1);
}

/// Issue 11 part 2: a module that prints a RESULT line reaches the link as a LOG line of that
/// module (Wasmbed firmware), which answers no START, whatever its text.
#[test]
fn module_output_never_answers_a_start() {
    let mut d =
        Driver::open(|now| StartSession::new(now, start("victim", Some("slow"), &[]), true, &t()));
    d.recv("START_OK");
    d.recv(r#"LOG module_id=evil msg="RESULT status=OK module_id=victim func=slow ret_i32=999""#);
    d.recv(r#"LOG module_id=evil msg="x" truncated=1 dropped=80"#);
    assert!(!d.s.is_done(), "{:?}", d.s.outcome());
    d.recv("RESULT status=OK module_id=victim func=slow ret_i32=1");
    let out = d.s.outcome().unwrap().as_ref().unwrap();
    assert_eq!(out.result.as_ref().unwrap().ret_i32_signed(), Some(1));
    assert_eq!(d.unsolicited().len(), 2);
}

/// Issue 11 part 5: with sequence numbers a late answer to an earlier command never answers this
/// one, and a RESULT without module_id is nobody's.
#[test]
fn seq_replies_answer_only_their_command() {
    let mut d = Driver::open(|now| {
        let mut s = StartSession::new(now, start("ghost", None, &[]), true, &t());
        s.set_seq(6);
        s
    });
    assert_eq!(d.sent, ["START module_id=ghost seq=6"]);
    // the late START_OK of the START (seq=5) that timed out before
    d.recv("START_OK seq=5");
    d.recv("START_OK"); // and one from a command sent without seq
    d.recv("RESULT status=OK func=f ret_i32=1"); // FW-A style: no module_id
    assert!(!d.s.is_done(), "{:?}", d.s.outcome());
    d.recv("RESULT status=NO_MODULE seq=6");
    assert!(
        matches!(
            d.s.outcome(),
            Some(Err(SessionError::Rejected { line })) if line.raw == "RESULT status=NO_MODULE"
        ),
        "the reply without its seq: {:?}",
        d.s.outcome()
    );
    assert_eq!(d.unsolicited().len(), 3);
    // STATUS and INFO answers from before are skipped the same way
    let mut d = Driver::open(|now| {
        let mut s = StatusSession::new(now, &t());
        s.set_seq(9);
        s
    });
    assert_eq!(d.sent, ["STATUS seq=9"]);
    d.recv(r#"STATUS_OK modules="none" low_stack="none" wamr_heap=NA seq=8"#);
    assert!(!d.s.is_done());
    d.recv(r#"STATUS_OK modules="none" low_stack="none" wamr_heap=NA seq=9"#);
    assert!(d.s.outcome().unwrap().is_ok());
    // a run-time RESULT carries no seq and is still this START's result
    let mut d = Driver::open(|now| {
        let mut s = StartSession::new(now, start("m", Some("f"), &[]), true, &t());
        s.set_seq(1);
        s
    });
    d.recv("START_OK seq=1");
    d.recv("RESULT status=OK module_id=m func=f ret_i32=3");
    assert!(d.s.outcome().unwrap().is_ok());
    // a STOP answered PENDING: the reply that made it leave its first step, without its seq
    let mut d = Driver::open(|now| {
        let m = ModuleRef {
            module_id: ModuleId::new("m").unwrap(),
        };
        let mut s = StopSession::new(now, m, &t());
        s.set_seq(3);
        s
    });
    d.recv("STOP_OK status=PENDING seq=3");
    assert_eq!(d.s.phase(), Phase::StopResult);
    assert_eq!(
        d.s.last_reply().map(|l| l.raw.as_str()),
        Some("STOP_OK status=PENDING")
    );
    assert!(correlates(&Line::parse("INFO_OK proto=2 framed=1 seq=1")));
    // a link's numbering: from the INFO answer, one number per command, never for v1
    let mut c = Correlation::from_info(&Line::parse("INFO_OK proto=2 seq=1 framed=1"));
    let mut s = StatusSession::new(std::time::Instant::now(), &t());
    assert_eq!((c.tag(&mut s), c.tag(&mut s)), (Some(1), Some(2)));
    assert_eq!(s.poll_transmit().unwrap().to_bytes(), b"STATUS seq=2\n");
    let mut off = Correlation::from_info(&Line::parse("INFO_OK proto=2 framed=1"));
    assert!(!off.is_on());
    assert_eq!(off.tag(&mut s), None);
    assert!(!correlates(&Line::parse("INFO_OK proto=2 framed=1")));
}

#[test]
fn chunked_request_falls_back_to_v1_on_legacy_agent() {
    let p = payload(460);
    let crc = Crc32::of(&p);
    let mut d = load(p, chunked());
    d.recv(&format!(
        "LOAD_READY module_id=math_ops size=460 crc32={crc}"
    ));
    assert_eq!(d.sent[1], "<460 bytes>");
    d.recv("LOAD_OK warn=VICTIM_IGNORED replace_victim=x");
    let out = d.s.outcome().unwrap().as_ref().unwrap();
    assert!(!out.chunked);
    assert_eq!(out.ok.warn.as_deref(), Some("VICTIM_IGNORED"));
}

#[test]
fn start_wait_result_with_interleaved_other_slot() {
    let mut d = Driver::open(|now| {
        StartSession::new(now, start("math_ops", Some("add"), &[200, 26]), true, &t())
    });
    assert_eq!(
        d.sent,
        ["START module_id=math_ops func=add args=\"a0=200,a1=26\""]
    );
    d.recv("START_OK");
    d.recv("RESULT status=OK module_id=other func=step");
    d.recv("LOG module_id=other msg=\"tick\"");
    assert!(!d.s.is_done());
    d.recv("RESULT status=OK module_id=math_ops func=add ret_i32=226");
    let out = d.s.outcome().unwrap().as_ref().unwrap();
    assert_eq!(out.result.as_ref().unwrap().ret_i32_signed(), Some(226));
    assert_eq!(d.unsolicited().len(), 2);
}

#[test]
fn start_result_before_start_ok_is_final() {
    let mut d = Driver::open(|now| StartSession::new(now, start("m", Some("f"), &[]), true, &t()));
    d.recv("RESULT status=NO_MODULE");
    match d.s.outcome().unwrap() {
        Err(SessionError::Rejected { line }) => assert_eq!(line.raw, "RESULT status=NO_MODULE"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn start_without_wait_and_fw_a_result() {
    let mut d = Driver::open(|now| StartSession::new(now, start("m", Some("f"), &[]), false, &t()));
    d.recv("START_OK");
    let out = d.s.outcome().unwrap().as_ref().unwrap();
    assert!(out.result.is_none());
    // FW-A: RESULT without module_id is accepted as ours.
    let mut d =
        Driver::open(|now| StartSession::new(now, start("m", Some("add"), &[-5, 2]), true, &t()));
    d.recv("START_OK");
    let wait = d.s.poll_timeout().unwrap() - d.clock.now();
    assert_eq!(wait, Duration::from_secs(10));
    d.recv("RESULT status=OK func=add ret_i32=4294967293");
    let r =
        d.s.outcome()
            .unwrap()
            .as_ref()
            .unwrap()
            .result
            .clone()
            .unwrap();
    assert_eq!(r.ret_i32_signed(), Some(-3));
}

#[test]
fn start_result_timeout_and_exception() {
    let mut d = Driver::open(|now| StartSession::new(now, start("m", None, &[]), true, &t()));
    d.recv("START_OK");
    d.recv("some console text");
    // 10 s from START_OK; the console line came 10 ms later.
    assert_eq!(d.run_to_deadline(), Duration::from_millis(9990));
    match d.s.outcome().unwrap() {
        Err(SessionError::Timeout {
            phase: Phase::Result,
            last_line,
        }) => {
            assert_eq!(last_line.as_deref(), Some("some console text"))
        }
        other => panic!("{other:?}"),
    }
    let mut d = Driver::open(|now| StartSession::new(now, start("m", None, &[]), true, &t()));
    d.recv("START_OK");
    d.recv("RESULT status=EXCEPTION module_id=m func=app_main msg=\"Exception: unreachable\"");
    assert!(matches!(
        d.s.outcome(),
        Some(Err(SessionError::Rejected { .. }))
    ));
}

#[test]
fn stop_pending_then_result() {
    let mut d = Driver::open(|now| StopSession::new(now, ModuleRef { module_id: id("m") }, &t()));
    assert_eq!(d.sent, ["STOP module_id=m"]);
    d.recv("STOP_OK status=PENDING");
    d.recv("RESULT status=OK module_id=n func=x ret_i32=1");
    d.recv_after(
        Duration::from_millis(1200),
        "RESULT status=STOPPED forced=1 module_id=m func=loop",
    );
    let out = d.s.outcome().unwrap().as_ref().unwrap();
    assert_eq!(out.status, Some(StopStatus::Pending));
    assert!(out.result.as_ref().unwrap().forced);
    assert_eq!(
        d.unsolicited(),
        ["RESULT status=OK module_id=n func=x ret_i32=1"]
    );

    let mut d = Driver::open(|now| StopSession::new(now, ModuleRef { module_id: id("m") }, &t()));
    d.recv("STOP_OK status=IDLE");
    assert_eq!(
        d.s.outcome().unwrap().as_ref().unwrap().status,
        Some(StopStatus::Idle)
    );
}

#[test]
fn status_ignores_results_and_times_out_after_2s() {
    let mut d = Driver::open(|now| StatusSession::new(now, &t()));
    d.recv("RESULT status=OK module_id=m func=f");
    assert!(!d.s.is_done());
    assert_eq!(d.run_to_deadline(), Duration::from_millis(1990));
    assert!(matches!(
        d.s.outcome(),
        Some(Err(SessionError::Timeout {
            phase: Phase::Status,
            ..
        }))
    ));

    let mut d = Driver::open(|now| StatusSession::new(now, &t()));
    d.recv("STATUS_OK modules=\"none\" low_stack=\"none\" wamr_heap=NA");
    let out = d.s.outcome().unwrap().as_ref().unwrap();
    assert_eq!(out.status.pool, Some(Pool::NotAvailable));
}

#[test]
fn info_v1_fallback_and_v2() {
    let mut d = Driver::open(|now| InfoSession::new(now, &t()));
    d.recv("HELLO device_id=nucleo_f746zg rtos=Zephyr runtime=WAMR fw_version=1.0.0");
    d.recv("ERROR code=UNKNOWN_COMMAND");
    assert_eq!(d.s.outcome(), Some(&Ok(InfoOutcome::V1)));
    assert_eq!(d.unsolicited().len(), 1);

    let mut d = Driver::open(|now| InfoSession::new(now, &t()));
    d.recv("ERROR code=RX_OVERFLOW dropped=2");
    assert!(!d.s.is_done(), "an overflow report is not the answer");
    d.recv("INFO_OK proto=2 board=sim chunk_max=4096 natives=\"log:(ii),gpio_toggle:()\"");
    match d.s.outcome().unwrap() {
        Ok(InfoOutcome::V2 { info, .. }) => {
            assert_eq!(info.chunk_max, Some(4096));
            assert_eq!(info.natives[0].signature, "(ii)");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn info_after_a_v2_hello_waits_past_the_answer_to_a_cut_command() {
    // The agent got the end of the first INFO ("FO") as it switched its receiver on: its
    // UNKNOWN_COMMAND answers that, not this INFO, since its HELLO said proto=2.
    let v2 = Line::parse(
        "HELLO device_id=nucleo-f446re rtos=baremetal runtime=WAMR fw_version=0.2.0 proto=2",
    );
    let mut d = Driver::open(|now| InfoSession::after_hello(now, &t(), v2));
    assert_eq!(d.sent, ["INFO"]);
    d.recv("ERROR code=UNKNOWN_COMMAND");
    assert!(!d.s.is_done(), "not a v1 answer after a proto=2 HELLO");
    assert_eq!(d.unsolicited(), ["ERROR code=UNKNOWN_COMMAND"]);
    d.recv("INFO_OK proto=2 board=nucleo-f446re slots=1");
    assert!(matches!(d.s.outcome(), Some(Ok(InfoOutcome::V2 { .. }))));

    // Legacy firmware's HELLO has no proto=: UNKNOWN_COMMAND still means v1.
    let v1 = Line::parse("HELLO device_id=nucleo_f746zg rtos=Zephyr runtime=WAMR fw_version=1.0.0");
    let mut d = Driver::open(|now| InfoSession::after_hello(now, &t(), v1));
    d.recv("ERROR code=UNKNOWN_COMMAND");
    assert_eq!(d.s.outcome(), Some(&Ok(InfoOutcome::V1)));
}

const HELLO_V2: &str =
    "HELLO device_id=nucleo-f446re rtos=baremetal runtime=WAMR fw_version=0.2.0 proto=2";

#[test]
fn info_answered_right_after_a_hello_is_taken() {
    // The simulated board says HELLO on every connection, and answers the INFO after it.
    let mut d = Driver::open(|now| InfoSession::new(now, &t()));
    d.recv(HELLO_V2);
    assert!(!d.s.is_done());
    d.recv("INFO_OK proto=2 board=sim slots=2");
    assert!(matches!(d.s.outcome(), Some(Ok(InfoOutcome::V2 { .. }))));
    assert_eq!(d.unsolicited(), [HELLO_V2]);
}

#[test]
fn info_unanswered_after_a_hello_asks_again_after_the_settle_time_not_the_full_deadline() {
    let t = t();
    let settle = INFO_SETTLE + t.transfer(AGENT_LINE_MAX);
    assert!(settle < t.first_reply);
    // An STM32 image booted into the INFO: it lost it, or got it cut and answers the fragment.
    for fragment_answer in [None, Some("ERROR code=UNKNOWN_COMMAND")] {
        let mut d = Driver::open(|now| InfoSession::new(now, &t));
        d.recv(HELLO_V2);
        if let Some(a) = fragment_answer {
            d.recv(a);
            assert!(
                !d.s.is_done(),
                "{a}: the answer to a fragment, after a proto=2 HELLO"
            );
        }
        let waited = d.run_to_deadline();
        assert!(waited <= settle, "{waited:?}");
        match d.s.outcome() {
            Some(Ok(InfoOutcome::Rebooted { hello })) => assert_eq!(hello.raw, HELLO_V2),
            other => panic!("{other:?}"),
        }
        assert_eq!(d.sent, ["INFO"], "asking again is the caller's (it counts)");
    }

    // More HELLOs do not extend the wait: a board in a boot loop ends the session all the same.
    let mut d = Driver::open(|now| InfoSession::new(now, &t));
    d.recv(HELLO_V2);
    let deadline = d.s.poll_timeout().unwrap();
    d.recv_after(settle / 2, HELLO_V2);
    assert_eq!(d.s.poll_timeout(), Some(deadline));
    d.run_to_deadline();
    assert!(matches!(
        d.s.outcome(),
        Some(Ok(InfoOutcome::Rebooted { .. }))
    ));

    // Without a HELLO a silent device is still a plain timeout.
    let mut d = Driver::open(|now| InfoSession::new(now, &t));
    d.run_to_deadline();
    assert!(matches!(
        d.s.outcome(),
        Some(Err(SessionError::Timeout {
            phase: Phase::Info,
            ..
        }))
    ));
}

#[test]
fn unload_records_killed_job() {
    let mut d = Driver::open(|now| UnloadSession::new(now, ModuleRef { module_id: id("m") }, &t()));
    d.recv("RESULT status=STOPPED forced=1 module_id=m func=loop");
    d.recv("UNLOAD_OK module_id=m");
    let out = d.s.outcome().unwrap().as_ref().unwrap();
    assert!(out.stopped.as_ref().unwrap().forced);

    let mut d = Driver::open(|now| UnloadSession::new(now, ModuleRef { module_id: id("m") }, &t()));
    d.recv("UNLOAD_ERR code=NOT_FOUND module_id=m");
    assert!(matches!(
        d.s.outcome(),
        Some(Err(SessionError::Rejected { .. }))
    ));
}

#[test]
fn decoder_items_become_events() {
    let clock = Clock::new();
    let mut s = StatusSession::new(clock.now(), &t());
    s.handle_line(clock.now(), Item::Telnet { len: 12 });
    s.handle_line(
        clock.now(),
        Item::LineTooLong {
            len: 2000,
            head: "x".into(),
        },
    );
    assert_eq!(s.poll_event(), Some(Event::Telnet { len: 12 }));
    assert!(matches!(
        s.poll_event(),
        Some(Event::LineTooLong { len: 2000, .. })
    ));
    assert!(!s.is_done());
}

// ---- RESULT routing: immediate replies vs run-time results (contention mis-routing) ----

fn start_driver(module: &str, func: &str, args: &[i32], wait: bool) -> Driver<StartSession> {
    Driver::open(|now| StartSession::new(now, start(module, Some(func), args), wait, &t()))
}

#[test]
fn result_classes() {
    let class = |raw: &str| match Line::parse(raw).msg {
        AgentLine::Result(r) => r.class(),
        other => panic!("{other:?}"),
    };
    for raw in [
        "RESULT status=BUSY",
        "RESULT status=NO_MODULE",
        "RESULT status=NO_MODULE msg=\"module_id mismatch\"",
        "RESULT status=BAD_PARAMS msg=\"missing module_id\"",
        "RESULT status=NO_ENTRYPOINT msg=\"expected app_main\"",
        "RESULT status=NO_MEM msg=\"free=1 need>=4096 exec_env=yes\"",
        "RESULT status=NO_FUNC name=add",
        "RESULT status=WEIRD",
    ] {
        assert_eq!(class(raw), ResultClass::Immediate, "{raw}");
    }
    for raw in [
        "RESULT status=OK module_id=m func=add ret_i32=3",
        "RESULT status=OK func=add ret_i32=3",
        "RESULT status=EXCEPTION module_id=m func=f msg=\"Exception: unreachable\"",
        "RESULT status=STOPPED module_id=m func=f",
        "RESULT status=STOPPED forced=1 module_id=m func=f",
        "RESULT status=STOPPED func=f",
        "RESULT status=NO_EXEC_ENV",
        "RESULT status=NO_EXEC_ENV func=f",
        "RESULT status=NO_FUNC",
        "RESULT status=WEIRD module_id=m",
    ] {
        assert_eq!(class(raw), ResultClass::RunTime, "{raw}");
    }
}

/// Host A's START of `math` is on the link while host B's job of `math` ends: B's run-time
/// RESULT comes before A's immediate BUSY. A must get BUSY, B's RESULT is an event.
#[test]
fn start_reply_skips_earlier_job_result_of_same_module() {
    let mut d = start_driver("math", "add", &[1, 2], true);
    d.recv("RESULT status=OK module_id=math func=add ret_i32=7000");
    assert!(!d.s.is_done(), "another job's RESULT taken as the reply");
    d.recv("RESULT status=BUSY");
    match d.s.outcome().unwrap() {
        Err(SessionError::Rejected { line }) => assert_eq!(line.raw, "RESULT status=BUSY"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        d.unsolicited(),
        ["RESULT status=OK module_id=math func=add ret_i32=7000"]
    );
}

/// Same, the earlier job ended in a trap or a stop: still not this START's answer.
#[test]
fn start_reply_skips_earlier_job_exception_stop_and_bare_codes() {
    let mut d = start_driver("math", "add", &[1, 2], true);
    d.recv("RESULT status=EXCEPTION module_id=math func=f msg=\"Exception: unreachable\"");
    d.recv("RESULT status=STOPPED forced=1 module_id=math func=f");
    d.recv("RESULT status=NO_EXEC_ENV");
    d.recv("RESULT status=NO_FUNC");
    assert!(!d.s.is_done());
    d.recv("START_OK");
    assert_eq!(d.s.phase(), Phase::Result);
    d.recv("RESULT status=OK module_id=math func=add ret_i32=3");
    let out = d.s.outcome().unwrap().as_ref().unwrap();
    assert_eq!(out.result.as_ref().unwrap().ret_i32_signed(), Some(3));
    assert_eq!(d.unsolicited().len(), 4);
}

/// FW-A: no module ids anywhere. The earlier job's RESULT (run-time class) before START_OK is
/// not this START's answer; after START_OK it is.
#[test]
fn fw_a_start_reply_skips_earlier_result() {
    let mut d = start_driver("wasm_module", "add", &[2, 3], true);
    d.recv("RESULT status=OK func=add ret_i32=99");
    assert!(!d.s.is_done());
    d.recv("START_OK");
    d.recv("RESULT status=OK func=add ret_i32=5");
    let out = d.s.outcome().unwrap().as_ref().unwrap();
    assert_eq!(out.result.as_ref().unwrap().ret_i32_signed(), Some(5));
    // FW-A's export check is an immediate reply.
    let mut d = start_driver("wasm_module", "nope", &[], true);
    d.recv("RESULT status=NO_FUNC name=nope");
    assert!(matches!(
        d.s.outcome(),
        Some(Err(SessionError::Rejected { .. }))
    ));
}

/// A parked START (after START_OK) hears the BUSY answering another host's START of the same
/// module: not its result. It keeps waiting and takes its own run-time RESULT.
#[test]
fn start_result_skips_immediate_replies_of_other_starts() {
    let mut d = start_driver("math", "add", &[4, 5], true);
    d.recv("START_OK");
    for raw in [
        "RESULT status=BUSY",
        "RESULT status=NO_MODULE",
        "RESULT status=BAD_PARAMS msg=\"missing module_id\"",
        "RESULT status=NO_MEM msg=\"free=1 need>=4096 exec_env=yes\"",
        "RESULT status=NO_ENTRYPOINT msg=\"expected app_main\"",
        "RESULT status=NO_FUNC name=sum_to_n",
    ] {
        d.recv(raw);
        assert!(!d.s.is_done(), "{raw} taken as the job's result");
    }
    d.recv_after(
        Duration::from_millis(3000),
        "RESULT status=OK module_id=math func=add ret_i32=9",
    );
    let out = d.s.outcome().unwrap().as_ref().unwrap();
    assert_eq!(out.result.as_ref().unwrap().ret_i32_signed(), Some(9));
    assert_eq!(d.unsolicited().len(), 6);
}

/// FW-B's run-time NO_FUNC and NO_EXEC_ENV carry no module id and no name: they end the job.
#[test]
fn start_result_accepts_bare_runtime_codes() {
    for raw in [
        "RESULT status=NO_FUNC",
        "RESULT status=NO_EXEC_ENV msg=\"free=12\"",
    ] {
        let mut d = start_driver("math", "add", &[], true);
        d.recv("START_OK");
        d.recv(raw);
        match d.s.outcome() {
            Some(Err(SessionError::Rejected { line })) => assert_eq!(line.raw, raw),
            other => panic!("{raw}: {other:?}"),
        }
    }
}

/// A STOP (reply or result step) never takes an immediate RESULT of another START.
#[test]
fn stop_skips_immediate_replies() {
    let mut d = Driver::open(|now| StopSession::new(now, ModuleRef { module_id: id("m") }, &t()));
    d.recv("RESULT status=BUSY");
    assert!(!d.s.is_done());
    d.recv("STOP_OK status=PENDING");
    d.recv("RESULT status=BUSY");
    d.recv("RESULT status=NO_MODULE");
    assert!(!d.s.is_done());
    d.recv("RESULT status=STOPPED module_id=m func=loop msg=\"Exception: terminated by user\"");
    let out = d.s.outcome().unwrap().as_ref().unwrap();
    assert_eq!(out.status, Some(StopStatus::Pending));
    assert_eq!(out.result.as_ref().unwrap().status, ResultStatus::Stopped);
    assert_eq!(d.unsolicited().len(), 3);
}

/// A LOAD reports whether the agent cleared the slot (killing its job without a RESULT).
#[test]
fn load_reports_slot_cleared() {
    let p = payload(64);
    let crc = Crc32::of(&p);
    let mut d = load(p.clone(), LoadOptions::default());
    d.recv("LOAD_ERR code=BUSY msg=\"module running\"");
    assert!(!d.s.slot_cleared());
    let mut d = load(p.clone(), LoadOptions::default());
    d.recv("LOAD_ERR code=NO_MEM");
    assert!(d.s.slot_cleared());
    let mut d = load(p, LoadOptions::default());
    d.recv(&format!(
        "LOAD_READY module_id=math_ops size=64 crc32={crc}"
    ));
    assert!(d.s.slot_cleared());
}

const STATUS_V1: &str = "STATUS_OK modules=\"none\" low_stack=\"none\" wamr_total=1 wamr_free=1 wamr_used=0 wamr_highmark=0";

#[test]
fn resync_discards_late_replies_until_the_marker_pair() {
    let mut d = Driver::open(|now| ResyncSession::new(now, &t()));
    assert_eq!(d.sent, ["<16 bytes>", "STATUS"]);
    assert_eq!(d.payloads[0], b"\nWASMBED_RESYNC\n");
    d.recv("START_OK"); // the late answer to the command that timed out
    d.recv("ERROR code=UNKNOWN_COMMAND");
    d.recv("STOP_OK status=IDLE"); // another late reply: the pair is broken
    d.recv(STATUS_V1);
    assert!(
        !d.s.is_done(),
        "a STATUS_OK not right after the marker's answer"
    );
    d.recv("[A] hello"); // console text does not break a pair
    d.recv("ERROR code=UNKNOWN_COMMAND");
    d.recv("RESULT status=OK module_id=m func=f ret_i32=1"); // nor does a job's end
    d.recv(STATUS_V1);
    let out = d.s.outcome().unwrap().as_ref().unwrap();
    assert_eq!(out.attempts, 1);
    assert_eq!(out.discarded, 3, "START_OK, STOP_OK, the first STATUS_OK");
    assert_eq!(d.unsolicited().len(), 7);
}

#[test]
fn resync_resends_a_swallowed_marker_a_bounded_number_of_times() {
    let mut d = Driver::open(|now| ResyncSession::new(now, &t()));
    for attempt in 1..RESYNC_ATTEMPTS {
        assert_eq!(
            d.run_to_deadline(),
            Duration::from_secs(2),
            "attempt {attempt}"
        );
        assert!(!d.s.is_done());
    }
    assert_eq!(d.sent.len(), 2 * RESYNC_ATTEMPTS as usize);
    d.run_to_deadline();
    assert!(matches!(
        d.s.outcome(),
        Some(Err(SessionError::Timeout {
            phase: Phase::Resync,
            ..
        }))
    ));
}

#[test]
fn resync_after_a_resend_waits_for_late_answers_to_the_first_marker() {
    let mut d = Driver::open(|now| ResyncSession::new(now, &t()));
    d.run_to_deadline(); // the first marker got no answer in time: sent again
    d.recv("ERROR code=UNKNOWN_COMMAND"); // the first marker's, late
    d.recv(STATUS_V1);
    assert!(!d.s.is_done(), "settling");
    d.recv("ERROR code=UNKNOWN_COMMAND"); // the second marker's: the first pair was stale
    d.recv(STATUS_V1);
    assert!(!d.s.is_done());
    assert_eq!(d.run_to_deadline(), RESYNC_SETTLE);
    let out = d.s.outcome().unwrap().as_ref().unwrap();
    assert_eq!((out.attempts, out.discarded), (2, 2));
}

#[test]
fn an_info_asked_after_a_hello_and_never_answered_names_that_hello_as_the_last_line() {
    // The device rebooted (its HELLO) and then said nothing: the timeout must not read "last
    // line heard: none", which sends the user looking for firmware that is not the agent.
    let hello = Line::parse(HELLO_V2);
    let mut d = Driver::open(|now| InfoSession::after_hello(now, &t(), hello));
    d.run_to_deadline();
    match d.s.outcome() {
        Some(Err(SessionError::Timeout { last_line, .. })) => {
            assert_eq!(last_line.as_deref(), Some(HELLO_V2))
        }
        other => panic!("{other:?}"),
    }
}
