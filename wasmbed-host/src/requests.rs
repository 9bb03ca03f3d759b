//! The typed requests the commands send (`wasmbed-api`), built from command-line values after
//! checking them here, so a bad value is a usage error (exit 2) before anything is sent.

use wasmbed_api::{
    ApproveRequest, BuildMode, DeployRequest, DeviceRequest, LogsRequest, ModuleRequest, Request,
    StartRequest, StopRequest,
};

use crate::cli::{Mode, ReplaceArgs};
use crate::error::HostError;
use crate::validate;

fn ms(seconds: f64) -> u64 {
    (seconds * 1e3).round() as u64
}

/// `devices`.
pub fn devices() -> Request {
    Request::Devices {}
}

/// `approve` of `device`'s identity key.
pub fn approve(device: &str, fingerprint: Option<&str>) -> Request {
    Request::Approve(ApproveRequest {
        device: device.into(),
        fingerprint: fingerprint.map(str::to_string),
    })
}

/// `forget` of `device`'s identity key.
pub fn forget(device: &str) -> Request {
    Request::Forget(DeviceRequest {
        device: device.into(),
    })
}

/// `info` of `device`.
pub fn info(device: &str) -> Request {
    Request::Info(DeviceRequest {
        device: device.into(),
    })
}

/// `status` of `device`.
pub fn status(device: &str) -> Request {
    Request::Status(DeviceRequest {
        device: device.into(),
    })
}

/// An upload of `data` as `module_id` (`mode`: built from C source first) to `device`.
pub fn upload(
    device: &str,
    module_id: &str,
    data: &[u8],
    mode: Option<Mode>,
    replace: &ReplaceArgs,
    signature: Option<String>,
) -> Result<Request, HostError> {
    validate::module_id(module_id)?;
    if let Some(v) = &replace.replace_victim {
        validate::identifier("--replace-victim", v, validate::MAX_MODULE_ID)?;
    }
    let d = DeployRequest {
        device: device.into(),
        module_id: module_id.into(),
        mode: mode.map(|m| match m {
            Mode::Wasm => BuildMode::Wasm,
            Mode::Aot => BuildMode::Aot,
        }),
        size: data.len() as u64,
        crc32: format!("{:08x}", crc32fast::hash(data)),
        replace: replace.replace || replace.replace_victim.is_some(),
        replace_victim: replace.replace_victim.clone(),
        force: replace.force,
        strip: replace.strip,
        version: replace.module_version,
        signature,
    };
    Ok(match mode {
        None => Request::Deploy(d),
        Some(_) => Request::BuildAndDeploy(d),
    })
}

/// `start`; with `wait`, the reply is the job's RESULT (deadline `result_timeout` seconds).
pub fn start(
    device: &str,
    module_id: &str,
    func: Option<&str>,
    args: Option<&str>,
    wait: bool,
    result_timeout: f64,
) -> Result<Request, HostError> {
    validate::module_id(module_id)?;
    if let Some(f) = func {
        validate::func(f)?;
    }
    Ok(Request::Start(StartRequest {
        device: device.into(),
        module_id: module_id.into(),
        func: func.map(String::from),
        args: args
            .map(validate::parse_args)
            .transpose()?
            .unwrap_or_default(),
        wait_result: wait,
        result_timeout_ms: wait.then(|| ms(result_timeout)),
    }))
}

/// `stop`; with `wait`, the reply is the job's RESULT.
pub fn stop(
    device: &str,
    module_id: &str,
    wait: bool,
    result_timeout: f64,
) -> Result<Request, HostError> {
    validate::module_id(module_id)?;
    Ok(Request::Stop(StopRequest {
        device: device.into(),
        module_id: module_id.into(),
        wait,
        result_timeout_ms: wait.then(|| ms(result_timeout)),
    }))
}

/// `unload`.
pub fn unload(device: &str, module_id: &str) -> Result<Request, HostError> {
    validate::module_id(module_id)?;
    Ok(Request::Unload(ModuleRequest {
        device: device.into(),
        module_id: module_id.into(),
    }))
}

/// `logs` (with `follow`, log events keep coming).
pub fn logs(device: &str, since: Option<u64>, follow: bool) -> Request {
    Request::Logs(LogsRequest {
        device: device.into(),
        follow,
        since,
    })
}
