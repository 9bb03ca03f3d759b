//! The commands: each turns its arguments into gateway requests and returns a [`Report`].

use std::io::Write;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::cli::{
    BuildArgs, Command, DeployArgs, Globals, LogsArgs, ReplaceArgs, StartArgs, StopArgs, Targets,
};
use crate::client::{Connection, Event, Failure, Latency, Reply};
use crate::error::{ExitCode, GatewayError, HostError};
use crate::output;
use crate::progress::Ui;
use crate::validate;

/// What a command produced: the JSON document, the human text, and the error if it failed.
#[derive(Debug)]
pub struct Report {
    /// The `--json` document (always has `ok`).
    pub doc: Map<String, Value>,
    /// Human output for stdout, printed after the `e2e_latency_ms=` line.
    pub text: String,
    /// End-to-end latency, if a request was made.
    pub e2e_ms: Option<f64>,
    /// The failure that decides the exit code.
    pub error: Option<HostError>,
    /// Human error text for stderr (defaults to the rendering of `error`).
    pub stderr: Option<String>,
}

impl Report {
    /// The process exit code.
    pub fn exit_code(&self) -> ExitCode {
        self.error
            .as_ref()
            .map_or(ExitCode::Success, HostError::exit_code)
    }

    /// A report for an error raised before any request completed.
    pub fn from_error(command: &str, error: HostError) -> Report {
        let mut doc = Map::new();
        doc.insert("ok".into(), Value::Bool(false));
        doc.insert("command".into(), command.into());
        doc.insert("exit_code".into(), error.exit_code().code().into());
        doc.insert("error".into(), error.to_json());
        Report {
            doc,
            text: String::new(),
            e2e_ms: None,
            error: Some(error),
            stderr: None,
        }
    }
}

/// Everything a command needs besides its own arguments.
pub struct Ctx {
    /// Resolved global options.
    pub globals: Globals,
    /// Progress bars.
    pub ui: Ui,
}

/// Outcome of one request to one device.
type Outcome = Result<Reply, Box<Failure>>;

impl Ctx {
    pub(crate) fn timeout(&self, default_s: f64) -> Duration {
        self.globals
            .timeout
            .unwrap_or_else(|| Duration::from_secs_f64(default_s))
    }

    pub(crate) fn connect(&self, timeout: Duration) -> Result<Connection, HostError> {
        Connection::connect(
            &self.globals.gateway,
            timeout.min(Duration::from_secs(5)),
            self.globals.token.clone(),
        )
    }

    /// Connects and sends one request about `device`, drawing its progress.
    fn call(
        &self,
        device: &str,
        req: Map<String, Value>,
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Outcome {
        let started = Instant::now();
        let mut conn = self.connect(timeout).map_err(Box::<Failure>::from)?;
        let mut tracker = self.ui.tracker(device);
        let out = conn.request(req, body, timeout, &mut |ev| tracker.on_event(ev));
        tracker.finish();
        out.map_err(|mut f| {
            f.e2e_ms = started.elapsed().as_secs_f64() * 1e3;
            f
        })
    }

    pub(crate) fn one_device(&self, command: &str) -> Result<String, HostError> {
        match &self.globals.targets {
            Targets::Named(names) if names.len() == 1 => Ok(names[0].clone()),
            Targets::Named(names) if names.is_empty() => Err(no_device(command)),
            _ => Err(HostError::Usage(format!(
                "`{command}` takes exactly one device; give a single --device NAME"
            ))),
        }
    }

    fn devices(&self, command: &str) -> Result<Vec<String>, HostError> {
        match &self.globals.targets {
            Targets::Named(names) if names.is_empty() => Err(no_device(command)),
            Targets::Named(names) => Ok(names.clone()),
            Targets::All => {
                let reply = self
                    .call("", op("devices"), None, self.timeout(5.0))
                    .map_err(|f| f.error)?;
                let names: Vec<String> = reply
                    .result
                    .get("devices")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d.get("name").and_then(Value::as_str).map(String::from))
                    .collect();
                if names.is_empty() {
                    return Err(HostError::Usage("--all: the gateway has no devices".into()));
                }
                Ok(names)
            }
        }
    }
}

fn no_device(command: &str) -> HostError {
    HostError::Usage(format!(
        "`{command}` needs a device: pass --device NAME or set WASMBED_DEVICE (list them with `wasmbed-host devices`)"
    ))
}

fn op(name: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("op".into(), name.into());
    m
}

fn device_op(name: &str, device: &str) -> Map<String, Value> {
    let mut m = op(name);
    m.insert("device".into(), device.into());
    m
}

fn latency_json(l: &Latency) -> Value {
    serde_json::to_value(l).unwrap_or_default()
}

/// The JSON fields of one request's outcome: `ok`, `e2e_latency_ms`, `latency`, and `result`
/// or `error` + `exit_code`.
fn outcome_doc(out: &Outcome) -> Map<String, Value> {
    let mut d = Map::new();
    match out {
        Ok(r) => {
            d.insert("ok".into(), true.into());
            d.insert("e2e_latency_ms".into(), round2(r.e2e_ms));
            d.insert("latency".into(), latency_json(&r.latency));
            d.insert("result".into(), Value::Object(r.result.clone()));
        }
        Err(f) => {
            d.insert("ok".into(), false.into());
            d.insert("e2e_latency_ms".into(), round2(f.e2e_ms));
            d.insert("latency".into(), latency_json(&f.latency));
            d.insert("exit_code".into(), f.error.exit_code().code().into());
            d.insert("error".into(), f.error.to_json());
        }
    }
    d
}

fn round2(ms: f64) -> Value {
    json!((ms * 100.0).round() / 100.0)
}

fn e2e(out: &Outcome) -> f64 {
    match out {
        Ok(r) => r.e2e_ms,
        Err(f) => f.e2e_ms,
    }
}

/// A report for a single request: `text` renders the success case.
fn single(
    command: &str,
    device: Option<&str>,
    out: Outcome,
    text: impl FnOnce(&Reply) -> String,
) -> Report {
    let mut doc = Map::new();
    doc.insert("command".into(), command.into());
    if let Some(d) = device {
        doc.insert("device".into(), d.into());
    }
    doc.extend(outcome_doc(&out));
    let e2e_ms = Some(e2e(&out));
    match out {
        Ok(reply) => Report {
            doc,
            text: text(&reply),
            e2e_ms,
            error: None,
            stderr: None,
        },
        Err(f) => Report {
            doc,
            text: String::new(),
            e2e_ms,
            error: Some(f.error),
            stderr: None,
        },
    }
}

/// Runs `command` and returns its report.
pub fn run(command: &Command, ctx: &Ctx) -> Report {
    let name = command_name(command);
    let result = match command {
        Command::Devices => Ok(devices(ctx)),
        Command::Info => info(ctx),
        Command::Status => status(ctx),
        Command::Deploy(a) => deploy(ctx, a),
        Command::BuildAndDeploy(a) => build_and_deploy(ctx, a),
        Command::Start(a) => start(ctx, a),
        Command::Stop(a) => stop(ctx, a),
        Command::Unload(a) => unload(ctx, &a.module_id),
        Command::Logs(a) => logs(ctx, a),
        Command::Bench(a) => crate::bench_cmd::bench(ctx, a),
        Command::Ports => Ok(crate::ports::ports(&wasmbed_ports::SystemPorts)),
        Command::Completions { .. } => Err(HostError::Internal(
            "completions are handled by main".into(),
        )),
    };
    result.unwrap_or_else(|e| Report::from_error(name, e))
}

/// The canonical name of a command (used in JSON output).
pub fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Devices => "devices",
        Command::Info => "info",
        Command::Status => "status",
        Command::Deploy(_) => "deploy",
        Command::BuildAndDeploy(_) => "build-and-deploy",
        Command::Start(_) => "start",
        Command::Stop(_) => "stop",
        Command::Unload(_) => "unload",
        Command::Logs(_) => "logs",
        Command::Bench(_) => "bench",
        Command::Ports => "ports",
        Command::Completions { .. } => "completions",
    }
}

fn devices(ctx: &Ctx) -> Report {
    let out = ctx.call("", op("devices"), None, ctx.timeout(5.0));
    single("devices", None, out, |r| {
        let list = r
            .result
            .get("devices")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        output::devices_table(&list) + "\n"
    })
}

fn info(ctx: &Ctx) -> Result<Report, HostError> {
    let device = ctx.one_device("info")?;
    let out = ctx.call(&device, device_op("info", &device), None, ctx.timeout(5.0));
    Ok(single("info", Some(&device), out, |r| {
        output::info_table(&device, &r.result) + "\n"
    }))
}

/// Runs `request` for each device, in parallel when there are several, in the given order.
fn per_device<F>(devices: &[String], request: F) -> Vec<Outcome>
where
    F: Fn(&str) -> Outcome + Sync,
{
    if devices.len() == 1 {
        return vec![request(&devices[0])];
    }
    thread::scope(|s| {
        let handles: Vec<_> = devices.iter().map(|d| s.spawn(|| request(d))).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(HostError::Internal("worker thread panicked".into()).into())
                })
            })
            .collect()
    })
}

/// Combines per-device outcomes: one device gives the single-request document, several give
/// `{"ok", "command", "e2e_latency_ms", "devices": [...]}`.
fn multi(
    command: &str,
    devices: &[String],
    outs: Vec<Outcome>,
    wall_ms: f64,
    text: String,
) -> Report {
    let first_error = outs.iter().position(Result::is_err);
    let mut stderr = String::new();
    for (d, out) in devices.iter().zip(&outs) {
        if let Err(f) = out {
            if devices.len() > 1 {
                stderr.push_str(&format!("device {d}: "));
            }
            stderr.push_str(&output::error_text(&f.error));
        }
    }
    let mut doc = Map::new();
    let e2e_ms = if devices.len() == 1 {
        doc.insert("command".into(), command.into());
        doc.insert("device".into(), devices[0].clone().into());
        doc.extend(outcome_doc(&outs[0]));
        e2e(&outs[0])
    } else {
        doc.insert("ok".into(), first_error.is_none().into());
        doc.insert("command".into(), command.into());
        doc.insert("e2e_latency_ms".into(), round2(wall_ms));
        let list = devices
            .iter()
            .zip(&outs)
            .map(|(d, out)| {
                let mut m = Map::new();
                m.insert("device".into(), d.clone().into());
                m.extend(outcome_doc(out));
                Value::Object(m)
            })
            .collect();
        doc.insert("devices".into(), Value::Array(list));
        wall_ms
    };
    let error = first_error.map(|i| match outs.into_iter().nth(i) {
        Some(Err(f)) => f.error,
        _ => HostError::Internal("lost an error".into()),
    });
    if let Some(e) = &error {
        doc.insert("exit_code".into(), e.exit_code().code().into());
    }
    Report {
        doc,
        text,
        e2e_ms: Some(e2e_ms),
        error,
        stderr: (!stderr.is_empty()).then_some(stderr),
    }
}

fn status(ctx: &Ctx) -> Result<Report, HostError> {
    let devices = ctx.devices("status")?;
    let started = Instant::now();
    let outs = per_device(&devices, |d| {
        ctx.call(d, device_op("status", d), None, ctx.timeout(5.0))
    });
    let text = devices
        .iter()
        .zip(&outs)
        .filter_map(|(d, out)| out.as_ref().ok().map(|r| output::status_text(d, &r.result)))
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

fn read_file(path: &Path) -> Result<Vec<u8>, HostError> {
    let data = std::fs::read(path).map_err(|source| HostError::ReadFile {
        path: path.display().to_string(),
        source,
    })?;
    if data.is_empty() {
        return Err(HostError::Usage(format!("{} is empty", path.display())));
    }
    Ok(data)
}

/// An upload request without `device` (added per device).
pub(crate) fn upload_request(
    op_name: &str,
    module_id: &str,
    data: &[u8],
    name: &str,
    replace: &ReplaceArgs,
) -> Result<Map<String, Value>, HostError> {
    validate::module_id(module_id)?;
    let mut req = op(op_name);
    req.insert("module_id".into(), module_id.into());
    req.insert("size".into(), data.len().into());
    req.insert(
        "crc32".into(),
        format!("{:08x}", crc32fast::hash(data)).into(),
    );
    req.insert("name".into(), name.into());
    if let Some(v) = &replace.replace_victim {
        validate::identifier("--replace-victim", v, validate::MAX_MODULE_ID)?;
        req.insert("replace_victim".into(), v.clone().into());
    }
    for (flag, on) in [
        (
            "replace",
            replace.replace || replace.replace_victim.is_some(),
        ),
        ("force", replace.force),
        ("strip", replace.strip),
    ] {
        if on {
            req.insert(flag.into(), true.into());
        }
    }
    Ok(req)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn upload(
    ctx: &Ctx,
    command: &str,
    module_id: &str,
    req: Map<String, Value>,
    data: &[u8],
    default_s: f64,
) -> Result<Report, HostError> {
    let devices = ctx.devices(command)?;
    let timeout = ctx.timeout(default_s + data.len() as f64 / 5000.0);
    let started = Instant::now();
    let outs = per_device(&devices, |d| {
        let mut r = req.clone();
        r.insert("device".into(), d.into());
        ctx.call(d, r, Some(data), timeout)
    });
    let wall = started.elapsed().as_secs_f64() * 1e3;
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
                outcome: out.as_ref().map(|r| &r.result).map_err(|f| &f.error),
                transfer_ms: latency.transfer_ms,
                compile_ms: latency.compile_ms,
                e2e_ms: e2e(out),
            }
        })
        .collect();
    let text = output::deploy_table(&rows) + "\n";
    Ok(multi(command, &devices, outs, wall, text))
}

fn deploy(ctx: &Ctx, a: &DeployArgs) -> Result<Report, HostError> {
    let data = read_file(&a.file)?;
    let req = upload_request(
        "deploy",
        &a.module_id,
        &data,
        &file_name(&a.file),
        &a.replace,
    )?;
    upload(ctx, "deploy", &a.module_id, req, &data, 20.0)
}

fn build_and_deploy(ctx: &Ctx, a: &BuildArgs) -> Result<Report, HostError> {
    let data = read_file(&a.source)?;
    let mut req = upload_request(
        "build_and_deploy",
        &a.module_id,
        &data,
        &file_name(&a.source),
        &a.replace,
    )?;
    req.insert("mode".into(), a.mode.as_str().into());
    upload(ctx, "build-and-deploy", &a.module_id, req, &data, 60.0)
}

/// The signed return value of a RESULT: `ret`, else `ret_u32` reinterpreted, else `ret_i32=` in
/// the line (which the firmware prints unsigned).
pub fn signed_ret(result: &Map<String, Value>) -> Option<i32> {
    if let Some(r) = result.get("ret").and_then(Value::as_i64) {
        return i32::try_from(r)
            .ok()
            .or(u32::try_from(r).ok().map(|u| u as i32));
    }
    if let Some(u) = result.get("ret_u32").and_then(Value::as_u64) {
        return u32::try_from(u).ok().map(|u| u as i32);
    }
    let line = result.get("line").and_then(Value::as_str)?;
    let text = line.split(' ').find_map(|kv| kv.strip_prefix("ret_i32="))?;
    text.parse::<u32>()
        .map(|u| u as i32)
        .or_else(|_| text.parse::<i32>())
        .ok()
}

pub(crate) fn start_request(
    device: &str,
    module_id: &str,
    func: Option<&str>,
    args: Option<&str>,
    wait: bool,
    result_timeout: f64,
) -> Result<Map<String, Value>, HostError> {
    validate::module_id(module_id)?;
    let mut req = device_op("start", device);
    req.insert("module_id".into(), module_id.into());
    if let Some(f) = func {
        validate::func(f)?;
        req.insert("func".into(), f.into());
    }
    if let Some(a) = args {
        req.insert("args".into(), json!(validate::parse_args(a)?));
    }
    if wait {
        req.insert("wait_result".into(), true.into());
        req.insert(
            "result_timeout_ms".into(),
            ((result_timeout * 1e3).round() as u64).into(),
        );
    }
    Ok(req)
}

fn start(ctx: &Ctx, a: &StartArgs) -> Result<Report, HostError> {
    let device = ctx.one_device("start")?;
    let req = start_request(
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
    let mut report = single("start", Some(&device), out, |r| {
        output::start_text(&a.module_id, &r.result, a.wait_result)
    });
    if let Some(HostError::Gateway(g)) = &report.error {
        if let Some(status) = error_status(g) {
            report.text = format!("status={status}\n");
        }
    }
    if a.wait_result {
        finish_wait(&mut report);
    }
    Ok(report)
}

/// The RESULT status behind a gateway error: `status=` of the device line in `detail`, else
/// implied by the code (`MODULE_TRAPPED` → `EXCEPTION`, `MODULE_STOPPED` → `STOPPED`).
fn error_status(g: &GatewayError) -> Option<String> {
    let from_line = g
        .detail
        .as_ref()
        .and_then(|d| d.get("line"))
        .and_then(Value::as_str)
        .and_then(|l| l.split(' ').find_map(|kv| kv.strip_prefix("status=")))
        .map(String::from);
    from_line.or_else(|| match g.code.as_str() {
        "MODULE_TRAPPED" => Some("EXCEPTION".into()),
        "MODULE_STOPPED" => Some("STOPPED".into()),
        _ => None,
    })
}

/// Adds `status` and `ret` to a `start --wait-result` report, and fails it unless status is OK.
fn finish_wait(report: &mut Report) {
    let (status, ret) = match (&report.error, report.doc.get("result")) {
        (None, Some(Value::Object(r))) => (
            r.get("status")
                .and_then(Value::as_str)
                .unwrap_or("UNKNOWN")
                .to_string(),
            signed_ret(r),
        ),
        (Some(HostError::Gateway(g)), _) => {
            let status = error_status(g).unwrap_or_else(|| g.code.clone());
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

fn stop(ctx: &Ctx, a: &StopArgs) -> Result<Report, HostError> {
    let device = ctx.one_device("stop")?;
    validate::module_id(&a.module_id)?;
    let mut req = device_op("stop", &device);
    req.insert("module_id".into(), a.module_id.clone().into());
    if a.wait {
        req.insert("wait".into(), true.into());
        req.insert(
            "result_timeout_ms".into(),
            ((a.result_timeout * 1e3).round() as u64).into(),
        );
    }
    let out = ctx.call(&device, req, None, ctx.timeout(a.result_timeout + 5.0));
    Ok(single("stop", Some(&device), out, |r| {
        output::line_text("stopped", &a.module_id, &r.result)
    }))
}

fn unload(ctx: &Ctx, module_id: &str) -> Result<Report, HostError> {
    let device = ctx.one_device("unload")?;
    validate::module_id(module_id)?;
    let mut req = device_op("unload", &device);
    req.insert("module_id".into(), module_id.into());
    let out = ctx.call(&device, req, None, ctx.timeout(10.0));
    Ok(single("unload", Some(&device), out, |r| {
        output::line_text("unloaded", module_id, &r.result)
    }))
}

fn logs(ctx: &Ctx, a: &LogsArgs) -> Result<Report, HostError> {
    let device = ctx.one_device("logs")?;
    let mut req = device_op("logs", &device);
    if let Some(s) = a.since {
        req.insert("since".into(), s.into());
    }
    if !a.follow {
        let out = ctx.call(&device, req, None, ctx.timeout(5.0));
        return Ok(single("logs", Some(&device), out, |r| {
            let lines = r
                .result
                .get("lines")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            lines
                .iter()
                .map(|l| {
                    output::log_line(
                        l.get("seq").and_then(Value::as_u64).unwrap_or(0),
                        "",
                        l.get("kind").and_then(Value::as_str).unwrap_or("-"),
                        l.get("line").and_then(Value::as_str).unwrap_or(""),
                    ) + "\n"
                })
                .collect()
        }));
    }
    req.insert("follow".into(), true.into());
    follow(ctx, &device, req, a)
}

/// `logs --follow`: prints lines as they arrive (NDJSON with `--json`), until the gateway
/// closes the connection (exit 3) or `--timeout` passes (exit 0).
fn follow(
    ctx: &Ctx,
    device: &str,
    req: Map<String, Value>,
    _a: &LogsArgs,
) -> Result<Report, HostError> {
    let limit = ctx
        .globals
        .timeout
        .unwrap_or(Duration::from_secs(365 * 24 * 3600));
    let deadline = Instant::now() + limit;
    let json = ctx.globals.json;
    let mut last_seq: Option<u64> = None;
    let mut count = 0u64;
    let mut print = |seq: u64, dev: &str, kind: &str, line: &str| {
        if last_seq.is_some_and(|l| seq <= l) {
            return;
        }
        last_seq = Some(seq);
        count += 1;
        let mut out = std::io::stdout().lock();
        let text = if json {
            json!({"seq": seq, "device": dev, "kind": kind, "line": line}).to_string()
        } else {
            output::log_line(seq, "", kind, line)
        };
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    };
    let mut conn = ctx.connect(limit)?;
    let reply = conn.request(req, None, limit, &mut |ev| {
        if let Event::Log {
            seq,
            device,
            kind,
            line,
        } = ev
        {
            print(*seq, device, kind, line);
        }
    });
    let ended = match reply {
        Ok(r) => {
            for l in r
                .result
                .get("lines")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                print(
                    l.get("seq").and_then(Value::as_u64).unwrap_or(0),
                    device,
                    l.get("kind").and_then(Value::as_str).unwrap_or("-"),
                    l.get("line").and_then(Value::as_str).unwrap_or(""),
                );
            }
            loop {
                match conn.next_event(deadline, limit) {
                    Ok(Some(Event::Log {
                        seq,
                        device,
                        kind,
                        line,
                    })) => print(seq, &device, &kind, &line),
                    Ok(_) => continue,
                    Err(e) => break e,
                }
            }
        }
        Err(f) => f.error,
    };
    match ended {
        HostError::Timeout { .. } if ctx.globals.timeout.is_some() => {
            tracing::info!(lines = count, "follow ended after --timeout");
            Ok(Report {
                doc: Map::new(),
                text: String::new(),
                e2e_ms: None,
                error: None,
                stderr: None,
            })
        }
        e => Err(e),
    }
}
