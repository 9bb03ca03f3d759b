//! `devices`: the gateway's devices as a table.

use wasmbed_api::OpResult;

use super::{single, Ctx, Report};
use crate::{output, requests};

/// Runs `devices`.
pub(super) fn run(ctx: &Ctx) -> Report {
    let out = ctx.call("", requests::devices(), None, ctx.timeout(5.0));
    single("devices", None, out, |r| match &r.result {
        OpResult::Devices(d) => output::devices_table(&d.devices) + "\n",
        _ => String::new(),
    })
}
