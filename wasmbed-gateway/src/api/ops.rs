//! Operations shared by both dialects: build, validate, deploy, start.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::sync::mpsc;

use super::framing;
use super::ApiError;
use super::Gateway;
use crate::device::{
    DeployRequest, DeviceHandle, Loaded, Outcome, Progress, StartRequest, StopRequest,
};
use crate::pipeline::{check_start, strip_custom_sections, validate, BuildMode};
use wasmbed_api::{ErrorCode, StartResult, StopResult};

/// Completes when the host's sending side ends (EOF or error) while a request waits: the host
/// went away. Bytes the host sent meanwhile (a next request) stay buffered, and the host is then
/// taken to be there.
pub async fn host_gone<R: AsyncBufRead + Unpin>(reader: &mut R) {
    match reader.fill_buf().await {
        Ok([]) | Err(_) => {}
        Ok(_) => std::future::pending().await,
    }
}

/// Where time went while serving one request (sent as the host API's `latency`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    /// C → wasm → AOT.
    pub compile: Option<Duration>,
    /// Sending payload bytes.
    pub transfer: Option<Duration>,
    /// Device round trips.
    pub device: Option<Duration>,
}

impl Latency {
    /// The host API's `latency`, with `total` as `total_ms`.
    pub fn to_api(&self, total: Duration) -> wasmbed_api::Latency {
        let ms = |d: Option<Duration>| d.map(wasmbed_api::Latency::ms);
        wasmbed_api::Latency {
            compile_ms: ms(self.compile),
            transfer_ms: ms(self.transfer),
            device_ms: ms(self.device),
            total_ms: ms(Some(total)),
        }
    }
}

/// What to upload.
pub enum Payload {
    /// A ready `.wasm` / `.aot` file.
    Binary(Vec<u8>),
    /// C source to build first.
    Source(Vec<u8>, BuildMode),
}

/// An upload request after parsing.
pub struct DeploySpec {
    /// Slot.
    pub module_id: String,
    /// Bytes.
    pub payload: Payload,
    /// `replace=1`.
    pub replace: bool,
    /// `replace_victim=`.
    pub replace_victim: Option<String>,
    /// Ignore an identical module on the device.
    pub force: bool,
    /// Strip custom sections.
    pub strip: bool,
    /// Version the gateway signs with.
    pub version: u32,
    /// A signature made elsewhere (text of a signature file), uploaded as-is.
    pub signature: Option<String>,
}

/// The result of [`Gateway::deploy`]: the device's reply and the bytes that were sent.
pub struct Deployed {
    /// Device reply.
    pub reply: Loaded,
    /// Size of the module as uploaded.
    pub size: usize,
    /// CRC-32 as uploaded.
    pub crc32: u32,
}

impl Gateway {
    /// Reads an upload body of `size` bytes after taking its bytes from the gateway-wide buffer
    /// budget (`limits.buffer_budget`): the returned charge gives them back when dropped, so the
    /// caller holds it while the body (or what is built from it) lives. A body that finds no room
    /// within `limits.body_wait_ms` is refused `BUSY` unread ([`ApiError::unread_body`]: the
    /// connection drops its bytes after answering).
    pub async fn read_body<R: AsyncBufRead + Unpin>(
        &self,
        reader: &mut R,
        size: u64,
    ) -> Result<(Vec<u8>, super::outbox::Charge), ApiError> {
        if size > self.limits.max_body as u64 {
            return Err(framing::too_large(size, self.limits.max_body));
        }
        let wait = Duration::from_millis(self.limits.body_wait_ms);
        let share = self.budget.upload_share();
        let charge = if size as usize > share {
            None
        } else {
            self.budget.charge_upload(size as usize, wait).await
        };
        let Some(charge) = charge else {
            let used = self.budget.used();
            tracing::warn!(
                "refusing a {size}-byte upload body: {used} bytes of uploads and replies held, \
                 {share} allowed for uploads (limits.buffer_budget)"
            );
            return Err(ApiError::new(
                ErrorCode::Busy,
                format!(
                    "the gateway has no room for a {size}-byte body: it holds {used} bytes of \
                     upload bodies and replies, and uploads may hold {share} \
                     (three quarters of limits.buffer_budget = {})",
                    self.budget.limit()
                ),
            )
            .help(
                "retry when other uploads are done, or raise limits.buffer_budget (or \
                 limits.body_wait_ms) in the gateway config",
            )
            .unread(size));
        };
        let body =
            framing::read_body(reader, size, self.limits.max_body, self.body_timeout).await?;
        Ok((body, charge))
    }

    /// Looks a device up.
    pub fn device(&self, name: &str) -> Result<&DeviceHandle, ApiError> {
        self.devices
            .get(name)
            .ok_or_else(|| ApiError::unknown_device(name))
    }

    /// Builds (if needed), validates and uploads a module.
    pub async fn deploy(
        &self,
        dev: &DeviceHandle,
        spec: DeploySpec,
        progress: Option<mpsc::UnboundedSender<(&'static str, Progress)>>,
        lat: &mut Latency,
    ) -> Result<Deployed, ApiError> {
        self.deploy_until(dev, spec, progress, lat, std::future::pending())
            .await
    }

    /// [`Gateway::deploy`]; when `host_gone` completes, a build still compiling is cancelled
    /// (its compiler's process group killed) and an upload still running is stopped with its
    /// partial module discarded.
    pub async fn deploy_until(
        &self,
        dev: &DeviceHandle,
        spec: DeploySpec,
        progress: Option<mpsc::UnboundedSender<(&'static str, Progress)>>,
        lat: &mut Latency,
        host_gone: impl Future<Output = ()>,
    ) -> Result<Deployed, ApiError> {
        tokio::pin!(host_gone);
        let state = dev.snapshot();
        let built = matches!(spec.payload, Payload::Source(..));
        let mut bytes = match spec.payload {
            Payload::Binary(b) => b,
            Payload::Source(src, mode) => {
                let t0 = Instant::now();
                if let Some(p) = &progress {
                    let total = src.len() as u64;
                    let _ = p.send(("compile", Progress { done: 0, total }));
                }
                // Over compiler.max_concurrent the build waits its turn: say so.
                let queued = || {
                    if let Some(p) = &progress {
                        let _ = p.send(("queued", Progress { done: 0, total: 0 }));
                    }
                };
                let built = tokio::select! {
                    built = self.compiler.build_notify(&src, mode, state.aot.as_ref(), &queued) => built,
                    _ = &mut host_gone => {
                        return Err(ApiError::bad_request(
                            "the host closed its sending side while its source compiled: build cancelled",
                        ))
                    }
                };
                lat.compile = Some(t0.elapsed());
                if let (Some(p), Ok(_)) = (&progress, &built) {
                    let total = src.len() as u64;
                    let _ = p.send(("compile", Progress { done: total, total }));
                }
                built?.bytes
            }
        };
        let signature = match &spec.signature {
            Some(text) => {
                if spec.strip || built {
                    return Err(ApiError::bad_request(
                        "a signature covers the exact bytes: upload the signed module as it is \
                         (no strip, no build)",
                    ));
                }
                Some(
                    text.parse::<wasmbed_agent_proto::ModuleSignature>()
                        .map_err(|e| ApiError::bad_request(e.to_string()))?,
                )
            }
            None => None,
        };
        if spec.strip {
            bytes = strip_custom_sections(&bytes)
                .map_err(|e| ApiError::new(ErrorCode::InvalidModule, e.0))?;
        }
        let summary = validate(&bytes, &state.caps).map_err(|e| {
            ApiError::new(ErrorCode::InvalidModule, e.0)
                .help("fix the module or build it for this device")
        })?;
        let size = bytes.len();
        let crc32 = crc32fast::hash(&bytes);
        let (ptx, forward) = match progress {
            Some(p) => {
                let (tx, mut rx) = mpsc::unbounded_channel::<Progress>();
                let f = tokio::spawn(async move {
                    while let Some(pr) = rx.recv().await {
                        let _ = p.send(("upload", pr));
                    }
                });
                (Some(tx), Some(f))
            }
            None => (None, None),
        };
        let request = DeployRequest {
            module_id: spec.module_id.clone(),
            bytes: Arc::new(bytes),
            replace: spec.replace,
            replace_victim: spec.replace_victim,
            force: spec.force,
            version: spec.version,
            signature,
        };
        let outcome = dev.deploy(request, ptx, host_gone).await;
        if let Some(f) = forward {
            let _ = f.await;
        }
        let reply = self.finish(outcome, lat)?;
        lat.transfer = Some(reply.transfer);
        self.modules
            .lock()
            .expect("modules lock")
            .insert((dev.name.clone(), spec.module_id), summary);
        Ok(Deployed { reply, size, crc32 })
    }

    /// Checks a START against what the gateway knows of the module, then sends it. With
    /// `wait_result`, the wait for the RESULT after `START_OK` ends early when `host_gone`
    /// completes (see [`host_gone`]).
    pub async fn start(
        &self,
        dev: &DeviceHandle,
        req: StartRequest,
        check: bool,
        host_gone: impl Future<Output = ()>,
        lat: &mut Latency,
    ) -> Result<StartResult, ApiError> {
        if check {
            let known = self
                .modules
                .lock()
                .expect("modules lock")
                .get(&(dev.name.clone(), req.module_id.clone()))
                .cloned();
            if let Some(summary) = known {
                let func = req.func.as_deref().unwrap_or("app_main");
                check_start(&summary, func, req.args.len())
                    .map_err(|e| ApiError::new(ErrorCode::InvalidModule, e.0))?;
            }
        }
        let outcome = dev.start(req, host_gone).await;
        self.finish(outcome, lat)
    }

    /// Sends a STOP. With `wait`, the wait for the RESULT after `STOP_OK status=PENDING` ends
    /// early when `host_gone` completes.
    pub async fn stop(
        &self,
        dev: &DeviceHandle,
        req: StopRequest,
        host_gone: impl Future<Output = ()>,
        lat: &mut Latency,
    ) -> Result<StopResult, ApiError> {
        let outcome = dev.stop(req, host_gone).await;
        self.finish(outcome, lat)
    }

    /// A device command's result; its device time is added to `lat`.
    pub fn finish<T>(&self, outcome: Outcome<T>, lat: &mut Latency) -> Result<T, ApiError> {
        lat.device = Some(lat.device.unwrap_or_default() + outcome.device_time);
        Ok(outcome.result?)
    }
}
