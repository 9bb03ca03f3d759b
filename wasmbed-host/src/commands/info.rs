//! `info`: one device's INFO fields.

use wasmbed_api::OpResult;

use super::{single, Ctx, Report};
use crate::error::HostError;
use crate::{output, requests};

/// Runs `info`.
pub(super) fn run(ctx: &Ctx) -> Result<Report, HostError> {
    let device = ctx.one_device("info")?;
    let out = ctx.call(&device, requests::info(&device), None, ctx.timeout(5.0));
    Ok(single("info", Some(&device), out, |r| match &r.result {
        OpResult::Info(i) => output::info_table(&device, i) + "\n",
        _ => String::new(),
    }))
}
