//! `devices`: the gateway's devices as a table; `devices approve|forget NAME`: identity
//! enrollment.

use wasmbed_api::OpResult;

use super::{single, Ctx, Report};
use crate::cli::DevicesAction;
use crate::{output, requests};

/// Runs `devices`.
pub(super) fn run(ctx: &Ctx) -> Report {
    let out = ctx.call("", requests::devices(), None, ctx.timeout(5.0));
    single("devices", None, out, |r| match &r.result {
        OpResult::Devices(d) => output::devices_table(&d.devices) + "\n",
        _ => String::new(),
    })
}

/// Runs `devices approve NAME [--fingerprint F]` or `devices forget NAME`.
pub(super) fn enroll(ctx: &Ctx, action: &DevicesAction) -> Report {
    let (command, name, req) = match action {
        DevicesAction::Approve { name, fingerprint } => (
            "devices approve",
            name,
            requests::approve(name, fingerprint.as_deref()),
        ),
        DevicesAction::Forget { name } => ("devices forget", name, requests::forget(name)),
    };
    let out = ctx.call(name, req, None, ctx.timeout(5.0));
    single(command, Some(name), out, |r| match &r.result {
        OpResult::Identity(i) => output::identity_text(&i.device, &i.identity) + "\n",
        _ => String::new(),
    })
}
