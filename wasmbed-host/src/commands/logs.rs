//! `logs`: the device log; with `--follow`, lines as they arrive.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{json, Map};
use wasmbed_api::{Event, LogKind, OpResult};

use super::{single, Ctx, Report};
use crate::cli::LogsArgs;
use crate::error::HostError;
use crate::{output, requests};

/// Runs `logs`.
pub(super) fn run(ctx: &Ctx, a: &LogsArgs) -> Result<Report, HostError> {
    let device = ctx.one_device("logs")?;
    if !a.follow {
        let req = requests::logs(&device, a.since, false);
        let out = ctx.call(&device, req, None, ctx.timeout(5.0));
        return Ok(single("logs", Some(&device), out, |r| match &r.result {
            OpResult::Logs(l) => l
                .lines
                .iter()
                .map(|l| output::log_line(l.seq, "", l.kind.as_str(), &l.line) + "\n")
                .collect(),
            _ => String::new(),
        }));
    }
    follow(ctx, &device, a)
}

/// `logs --follow`: prints lines as they arrive (NDJSON with `--json`), until the gateway
/// closes the connection (exit 3) or `--timeout` passes (exit 0).
fn follow(ctx: &Ctx, device: &str, a: &LogsArgs) -> Result<Report, HostError> {
    let limit = ctx
        .globals
        .timeout
        .unwrap_or(Duration::from_secs(365 * 24 * 3600));
    let deadline = Instant::now() + limit;
    let json = ctx.globals.json;
    let mut last_seq: Option<u64> = None;
    let mut count = 0u64;
    // `seq` is `None` for a gateway note (lines a slow follower missed): always printed.
    let mut print = |seq: Option<u64>, dev: &str, kind: LogKind, line: &str| {
        if let Some(seq) = seq {
            if last_seq.is_some_and(|l| seq <= l) {
                return;
            }
            last_seq = Some(seq);
        }
        count += 1;
        let mut out = std::io::stdout().lock();
        let text = if json {
            json!({"seq": seq, "device": dev, "kind": kind, "line": line}).to_string()
        } else {
            output::log_line(seq.unwrap_or(0), "", kind.as_str(), line)
        };
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    };
    let mut conn = ctx.connect(limit)?;
    let req = requests::logs(device, a.since, true);
    let reply = conn.request(req, None, limit, &mut |ev| {
        if let Event::Log {
            seq,
            device,
            kind,
            line,
        } = ev
        {
            print(*seq, device, *kind, line);
        }
    });
    let ended = match reply {
        Ok(r) => {
            if let OpResult::Logs(l) = &r.result {
                for l in &l.lines {
                    print(Some(l.seq), device, l.kind, &l.line);
                }
            }
            loop {
                match conn.next_event(deadline, limit) {
                    Ok(Some(Event::Log {
                        seq,
                        device,
                        kind,
                        line,
                    })) => print(seq, &device, kind, &line),
                    Ok(_) => continue,
                    Err(e) => break e,
                }
            }
        }
        Err(f) => f.error,
    };
    match ended {
        HostError::Timeout { .. } if ctx.globals.timeout.is_some() => {
            tracing::info!(lines = count, "follow ended after --timeout");
            Ok(Report {
                doc: Map::new(),
                text: String::new(),
                e2e_ms: None,
                error: None,
                stderr: None,
            })
        }
        e => Err(e),
    }
}
