//! The commands, one file each: each turns its arguments into typed gateway requests
//! ([`crate::requests`]) and returns a [`Report`]. This file holds what they share: the context,
//! per-device fan-out and the `--json` document of an outcome.

pub mod apps;
mod bench;
mod daily;
mod deploy;
mod devices;
mod info;
mod keys;
mod logs;
mod ports;
mod run;
mod start;
mod status;
mod stop;
mod test;
mod unload;
mod watch;

pub use bench::Samples;

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use wasmbed_api::{OpResult, Request};

use crate::cli::{Command, Globals, Targets};
use crate::client::{Connection, Failure, Latency, Reply};
use crate::error::{ExitCode, HostError};
use crate::output;
use crate::progress::Ui;
use crate::requests;

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
pub(crate) type Outcome = Result<Reply, Box<Failure>>;

impl Ctx {
    pub(crate) fn timeout(&self, default_s: f64) -> Duration {
        self.globals
            .timeout
            .unwrap_or_else(|| Duration::from_secs_f64(default_s) + self.globals.default_slack)
    }

    pub(crate) fn connect(&self, timeout: Duration) -> Result<Connection, HostError> {
        Connection::connect_tls(
            &self.globals.gateway,
            timeout.min(Duration::from_secs(5)),
            self.globals.token.clone(),
            self.globals.tls.clone(),
        )
    }

    /// Connects and sends one request about `device`, drawing its progress.
    pub(crate) fn call(
        &self,
        device: &str,
        req: Request,
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

    pub(crate) fn devices(&self, command: &str) -> Result<Vec<String>, HostError> {
        match &self.globals.targets {
            Targets::Named(names) if names.is_empty() => Err(no_device(command)),
            Targets::Named(names) => Ok(names.clone()),
            Targets::All => {
                let reply = self
                    .call("", requests::devices(), None, self.timeout(5.0))
                    .map_err(|f| f.error)?;
                let names: Vec<String> = match reply.result {
                    OpResult::Devices(d) => d.devices.into_iter().map(|d| d.name).collect(),
                    other => return Err(unexpected("devices", &other)),
                };
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

/// A reply whose result is not of the op asked (a gateway bug).
pub(crate) fn unexpected(op: &str, got: &OpResult) -> HostError {
    HostError::Protocol(format!(
        "the reply to `{op}` carries another op's result: {got:?}"
    ))
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
            d.insert(
                "result".into(),
                serde_json::to_value(&r.result).expect("a result serializes"),
            );
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

pub(crate) fn round2(ms: f64) -> Value {
    json!((ms * 100.0).round() / 100.0)
}

pub(crate) fn e2e(out: &Outcome) -> f64 {
    match out {
        Ok(r) => r.e2e_ms,
        Err(f) => f.e2e_ms,
    }
}

/// A report for a single request: `text` renders the success case.
pub(crate) fn single(
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
        Command::Devices { action: None } => Ok(devices::run(ctx)),
        Command::Devices {
            action: Some(action),
        } => Ok(devices::enroll(ctx, action)),
        Command::Info => info::run(ctx),
        Command::Status => status::run(ctx),
        Command::Deploy(a) => deploy::deploy(ctx, a),
        Command::BuildAndDeploy(a) => deploy::build_and_deploy(ctx, a),
        Command::Start(a) => start::run(ctx, a),
        Command::Stop(a) => stop::run(ctx, a),
        Command::Unload(a) => unload::run(ctx, &a.module_id),
        Command::Logs(a) => logs::run(ctx, a),
        Command::Bench(a) => bench::run(ctx, a),
        Command::Run(a) => run::run(ctx, a),
        Command::Test(a) => test::run(ctx, a),
        Command::Watch(a) => watch::run(ctx, a),
        Command::Ports => Ok(ports::run(&wasmbed_ports::SystemPorts)),
        Command::Keys(a) => keys::run(a),
        Command::Completions { .. } => Err(HostError::Internal(
            "completions are handled by main".into(),
        )),
        Command::Apply(_)
        | Command::Get(_)
        | Command::Describe(_)
        | Command::Delete(_)
        | Command::Rollout(_) => Err(HostError::Internal(
            "application commands are handled by main".into(),
        )),
    };
    result.unwrap_or_else(|e| Report::from_error(name, e))
}

/// The canonical name of a command (used in JSON output).
pub fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Devices { action: None } => "devices",
        Command::Devices {
            action: Some(crate::cli::DevicesAction::Approve { .. }),
        } => "devices approve",
        Command::Devices {
            action: Some(crate::cli::DevicesAction::Forget { .. }),
        } => "devices forget",
        Command::Info => "info",
        Command::Status => "status",
        Command::Deploy(_) => "deploy",
        Command::BuildAndDeploy(_) => "build-and-deploy",
        Command::Start(_) => "start",
        Command::Stop(_) => "stop",
        Command::Unload(_) => "unload",
        Command::Logs(_) => "logs",
        Command::Bench(_) => "bench",
        Command::Run(_) => "run",
        Command::Test(_) => "test",
        Command::Watch(_) => "watch",
        Command::Ports => "ports",
        Command::Keys(_) => "keys",
        Command::Completions { .. } => "completions",
        Command::Apply(_) => "apply",
        Command::Get(_) => "get",
        Command::Describe(_) => "describe",
        Command::Delete(_) => "delete",
        Command::Rollout(_) => "rollout",
    }
}

/// The application command `command` is, if it is one (run by [`apps::run`] against the fleet,
/// without the bridge the device commands use).
pub fn app_command(command: &Command) -> Option<apps::AppCommand<'_>> {
    Some(match command {
        Command::Apply(a) => apps::AppCommand::Apply(a),
        Command::Get(a) => apps::AppCommand::Get(a),
        Command::Describe(a) => apps::AppCommand::Describe(a),
        Command::Delete(a) => apps::AppCommand::Delete(a),
        Command::Rollout(a) => apps::AppCommand::Rollout(a),
        _ => return None,
    })
}

/// Runs `request` for each device, in parallel when there are several, in the given order.
pub(crate) fn per_device<F>(devices: &[String], request: F) -> Vec<Outcome>
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
pub(crate) fn multi(
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

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, HostError> {
    let data = std::fs::read(path).map_err(|source| HostError::ReadFile {
        path: path.display().to_string(),
        source,
    })?;
    if data.is_empty() {
        return Err(HostError::Usage(format!("{} is empty", path.display())));
    }
    Ok(data)
}
