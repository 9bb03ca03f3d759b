//! `start`: START a function; with `--wait-result`, its RESULT, typed by the gateway (the CLI
//! never reads the device's line).

use serde_json::Value;
use wasmbed_api::{ErrorCode, OpResult, RunStatus};

use super::{single, Ctx, Report};
use crate::cli::StartArgs;
use crate::error::{GatewayError, HostError};
use crate::{output, requests};

/// Runs `start`.
pub(super) fn run(ctx: &Ctx, a: &StartArgs) -> Result<Report, HostError> {
    let device = ctx.one_device("start")?;
    let req = requests::start(
        &device,
        &a.module_id,
        a.call.func.as_deref(),
        a.call.args.as_deref(),
        a.wait_result,
        a.result_timeout,
    )?;
    let default_s = if a.wait_result {
        a.result_timeout + 5.0
    } else {
        10.0
    };
    let out = ctx.call(&device, req, None, ctx.timeout(default_s));
    // The RESULT as the gateway typed it: (status, signed value).
    let result = match &out {
        Ok(r) => match &r.result {
            OpResult::Start(s) => Some((s.status.clone(), s.ret)),
            _ => None,
        },
        Err(_) => None,
    };
    let mut report = single("start", Some(&device), out, |r| match &r.result {
        OpResult::Start(s) => output::start_text(&a.module_id, s, a.wait_result),
        _ => String::new(),
    });
    if let Some(HostError::Gateway(g)) = &report.error {
        if let Some(status) = error_status(g) {
            report.text = format!("status={status}\n");
        }
    }
    if a.wait_result {
        finish_wait(&mut report, result);
    }
    Ok(report)
}

/// The RESULT status behind a gateway error: the typed `detail.status`, else implied by the code
/// (`MODULE_TRAPPED` → `EXCEPTION`, `MODULE_STOPPED` → `STOPPED`).
pub(super) fn error_status(g: &GatewayError) -> Option<RunStatus> {
    g.detail.status.clone().or(match g.code {
        ErrorCode::ModuleTrapped => Some(RunStatus::Exception),
        ErrorCode::ModuleStopped => Some(RunStatus::Stopped),
        _ => None,
    })
}

/// Adds `status` and `ret` to a `start --wait-result` report, and fails it unless status is OK.
pub(super) fn finish_wait(report: &mut Report, result: Option<(Option<RunStatus>, Option<i32>)>) {
    let (status, ret) = match (&report.error, result) {
        (None, Some((status, ret))) => (
            status.map_or_else(|| "UNKNOWN".to_string(), |s| s.to_string()),
            ret,
        ),
        (Some(HostError::Gateway(g)), _) => {
            let status = error_status(g).map_or_else(|| g.code.to_string(), |s| s.to_string());
            (status, None)
        }
        _ => return,
    };
    report.doc.insert("status".into(), status.clone().into());
    report
        .doc
        .insert("ret".into(), ret.map_or(Value::Null, Value::from));
    if report.error.is_none() && status != "OK" {
        let err = HostError::ModuleStatus { status };
        report.doc.insert("ok".into(), false.into());
        report
            .doc
            .insert("exit_code".into(), err.exit_code().code().into());
        report.doc.insert("error".into(), err.to_json());
        report.error = Some(err);
    }
}
