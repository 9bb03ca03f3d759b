//! `stop`: STOP a module's job and wait for its end (its RESULT); `--no-wait` returns at
//! `STOP_OK`. Stopping a module the device does not hold is an error (the gateway checks).

use wasmbed_api::OpResult;

use super::{single, Ctx, Report};
use crate::cli::StopArgs;
use crate::error::HostError;
use crate::{output, requests};

/// Runs `stop`.
pub(super) fn run(ctx: &Ctx, a: &StopArgs) -> Result<Report, HostError> {
    let device = ctx.one_device("stop")?;
    let req = requests::stop(&device, &a.module_id, !a.no_wait, a.result_timeout)?;
    let out = ctx.call(&device, req, None, ctx.timeout(a.result_timeout + 5.0));
    Ok(single("stop", Some(&device), out, |r| match &r.result {
        // A loaded module without a job has nothing to stop: say so instead of "stopped".
        OpResult::Stop(s) if matches!(s.status.as_str(), "IDLE" | "NO_JOB") => output::line_text(
            "nothing to stop for",
            &a.module_id,
            &s.line,
            Some(&s.status),
        ),
        OpResult::Stop(s) => output::line_text("stopped", &a.module_id, &s.line, Some(&s.status)),
        _ => String::new(),
    }))
}
