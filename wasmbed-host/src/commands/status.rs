//! `status`: slots, memory and jobs of one or more devices.

use std::time::Instant;

use wasmbed_api::OpResult;

use super::{multi, per_device, Ctx, Report};
use crate::error::HostError;
use crate::{output, requests};

/// Runs `status`.
pub(super) fn run(ctx: &Ctx) -> Result<Report, HostError> {
    let devices = ctx.devices("status")?;
    let started = Instant::now();
    let outs = per_device(&devices, |d| {
        ctx.call(d, requests::status(d), None, ctx.timeout(5.0))
    });
    let text = devices
        .iter()
        .zip(&outs)
        .filter_map(|(d, out)| match out.as_ref().map(|r| &r.result) {
            Ok(OpResult::Status(s)) => Some(output::status_text(d, s)),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n");
    Ok(multi(
        "status",
        &devices,
        outs,
        started.elapsed().as_secs_f64() * 1e3,
        text,
    ))
}
