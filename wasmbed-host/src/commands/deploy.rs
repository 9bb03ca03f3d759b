//! `deploy` and `build-and-deploy`: upload a module (or C source to build) to one or more
//! devices, ending with one table.

use std::path::Path;
use std::time::Instant;

use wasmbed_api::OpResult;

use super::{daily, e2e, multi, per_device, read_file, Ctx, Report};
use crate::cli::{BuildArgs, DeployArgs, Mode, ReplaceArgs};
use crate::error::HostError;
use crate::{output, requests};

/// What is uploaded besides the bytes: built from source (`mode`), replacement options and a
/// signature made elsewhere.
struct UploadOpts<'a> {
    /// Built on the gateway in this mode from this source file (its diagnostics name it).
    build: Option<(Mode, &'a Path)>,
    replace: &'a ReplaceArgs,
    signature: Option<String>,
}

fn upload(
    ctx: &Ctx,
    command: &str,
    module_id: &str,
    data: &[u8],
    opts: UploadOpts<'_>,
    default_s: f64,
) -> Result<Report, HostError> {
    let UploadOpts {
        build,
        replace,
        signature,
    } = opts;
    let mode = build.map(|(m, _)| m);
    let source = build.map(|(_, p)| p);
    // Checked once before any device is asked.
    requests::upload("", module_id, data, mode, replace, signature.clone())?;
    let devices = ctx.devices(command)?;
    let timeout = ctx.timeout(default_s + data.len() as f64 / 5000.0);
    let started = Instant::now();
    let outs = per_device(&devices, |d| {
        let req = requests::upload(d, module_id, data, mode, replace, signature.clone())?;
        ctx.call(d, req, Some(data), timeout).map_err(|mut f| {
            f.error = daily::diagnose(ctx, d, source, f.error);
            f
        })
    });
    let wall = started.elapsed().as_secs_f64() * 1e3;
    let not_deploy =
        HostError::Protocol("the gateway answered a deploy with another result".into());
    let rows: Vec<output::DeployRow<'_>> = devices
        .iter()
        .zip(&outs)
        .map(|(d, out)| {
            let latency = match out {
                Ok(r) => r.latency,
                Err(f) => f.latency,
            };
            output::DeployRow {
                device: d,
                module_id,
                outcome: match out {
                    Ok(r) => match &r.result {
                        OpResult::Deploy(res) => Ok(res),
                        _ => Err(&not_deploy),
                    },
                    Err(f) => Err(&f.error),
                },
                transfer_ms: latency.transfer_ms,
                compile_ms: latency.compile_ms,
                e2e_ms: e2e(out),
            }
        })
        .collect();
    let text = output::deploy_table(&rows) + "\n";
    Ok(multi(command, &devices, outs, wall, text))
}

/// Runs `deploy`.
pub(super) fn deploy(ctx: &Ctx, a: &DeployArgs) -> Result<Report, HostError> {
    let data = read_file(&a.file)?;
    let signature = match &a.signature {
        Some(p) => Some(String::from_utf8_lossy(&read_file(p)?).trim().to_string()),
        None => None,
    };
    upload(
        ctx,
        "deploy",
        &a.module_id,
        &data,
        UploadOpts {
            build: None,
            replace: &a.replace,
            signature,
        },
        20.0,
    )
}

/// Runs `build-and-deploy`.
pub(super) fn build_and_deploy(ctx: &Ctx, a: &BuildArgs) -> Result<Report, HostError> {
    let data = read_file(&a.source)?;
    upload(
        ctx,
        "build-and-deploy",
        &a.module_id,
        &data,
        UploadOpts {
            build: Some((a.mode, &a.source)),
            replace: &a.replace,
            signature: None,
        },
        60.0,
    )
}
