//! `unload`: free a module's slot.

use wasmbed_api::OpResult;

use super::{single, Ctx, Report};
use crate::error::HostError;
use crate::{output, requests};

/// Runs `unload`.
pub(super) fn run(ctx: &Ctx, module_id: &str) -> Result<Report, HostError> {
    let device = ctx.one_device("unload")?;
    let req = requests::unload(&device, module_id)?;
    let out = ctx.call(&device, req, None, ctx.timeout(10.0));
    Ok(single("unload", Some(&device), out, |r| match &r.result {
        OpResult::Unload(u) => output::line_text("unloaded", module_id, &u.line, None),
        _ => String::new(),
    }))
}
