//! Command-line definition (clap) and its resolution into validated settings.
//!
//! Legacy `host.py` spellings are accepted as hidden aliases: `--gw-host/--gw-port`,
//! `--func-name`, `--func-args`, `--wasm`, `build_and_load`/`load`, and `--device` before the
//! subcommand (all global options work in either position).

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::client::DEFAULT_PORT;
use crate::error::HostError;
use crate::validate;

/// Default gateway address.
pub const DEFAULT_GATEWAY: &str = "127.0.0.1:9000";

/// Deploy and run WebAssembly modules on microcontrollers through a Wasmbed gateway.
#[derive(Debug, Parser)]
#[command(name = "wasmbed-host", version, about, propagate_version = true)]
pub struct Cli {
    /// Gateway address HOST:PORT, or tls://HOST:PORT for TLS [env: WASMBED_GATEWAY]
    /// [default: 127.0.0.1:9000]
    #[arg(long, global = true, value_name = "ADDR", conflicts_with_all = ["gw_host", "gw_port"])]
    pub gateway: Option<String>,
    /// Legacy: gateway host name (use --gateway).
    #[arg(long = "gw-host", global = true, hide = true, value_name = "HOST")]
    pub gw_host: Option<String>,
    /// Legacy: gateway port (use --gateway).
    #[arg(long = "gw-port", global = true, hide = true, value_name = "PORT")]
    pub gw_port: Option<u16>,
    /// Target device(s), comma-separated where a command accepts several.
    #[arg(
        long,
        short = 'd',
        global = true,
        env = "WASMBED_DEVICE",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub device: Vec<String>,
    /// Target every device the gateway knows (deploy, build-and-deploy, status).
    #[arg(long, global = true)]
    pub all: bool,
    /// Print exactly one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output (repeatable).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// Less output: no progress bars, errors only.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub quiet: u8,
    /// Deadline in seconds for each request (default depends on the command; with --fleet,
    /// 30 s more, the fleet's acceptance window).
    #[arg(long, global = true, value_name = "SECONDS", value_parser = parse_seconds)]
    pub timeout: Option<f64>,
    /// File holding the gateway's access token (needed on non-loopback gateways).
    #[arg(long, global = true, env = "WASMBED_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// TLS: the CA certificate (PEM) that signed the gateway's certificate (tls:// gateways).
    #[arg(long, global = true, env = "WASMBED_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// TLS: this host's client certificate (PEM), for gateways that require one (mutual TLS).
    #[arg(
        long,
        global = true,
        env = "WASMBED_CERT",
        value_name = "FILE",
        requires = "key"
    )]
    pub cert: Option<PathBuf>,
    /// TLS: the private key (PEM) of --cert.
    #[arg(
        long,
        global = true,
        env = "WASMBED_KEY",
        value_name = "FILE",
        requires = "cert"
    )]
    pub key: Option<PathBuf>,
    /// Reach the devices of a fleet (NATS URL(s), comma-separated) instead of one gateway;
    /// credentials from WASMBED_FLEET_TOKEN_FILE or WASMBED_FLEET_CREDS (docs/FLEET.md).
    #[arg(
        long,
        global = true,
        env = "WASMBED_FLEET",
        value_name = "nats://HOST:PORT"
    )]
    pub fleet: Option<String>,
    /// With --fleet: target the devices whose labels match KEY=VALUE[,KEY=VALUE…].
    #[arg(long, global = true, value_name = "KEY=VALUE", requires = "fleet", conflicts_with_all = ["device", "all"])]
    pub selector: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `devices approve|forget`: device identity enrollment (docs/SECURITY.md "Device identity").
#[derive(Debug, Subcommand)]
pub enum DevicesAction {
    /// Approve (enroll) a device's identity key: the one it proved, or --fingerprint.
    Approve {
        /// The device.
        name: String,
        /// The key's fingerprint as `devices` shows it (12 to 32 hex digits). Needed to accept
        /// a device whose key differs from the approved one, and to approve a key before the
        /// device is first seen (all 32 digits).
        #[arg(long, value_name = "HEX")]
        fingerprint: Option<String>,
    },
    /// Forget a device's approved identity key (it is then pending again, or trusted on its
    /// next connect in the gateway's `tofu` mode).
    Forget {
        /// The device.
        name: String,
    },
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the devices the gateway knows (and manage their identity enrollment).
    Devices {
        /// `approve NAME` or `forget NAME`; none lists the devices.
        #[command(subcommand)]
        action: Option<DevicesAction>,
    },
    /// Show a device's INFO (protocol, board, AOT target, limits, natives).
    Info,
    /// Show the module slots and memory of a device.
    Status,
    /// Upload a .wasm or .aot module.
    #[command(alias = "load")]
    Deploy(DeployArgs),
    /// Compile a C source on the gateway and upload the result.
    #[command(name = "build-and-deploy", aliases = ["build_and_load", "build_and_deploy"])]
    BuildAndDeploy(BuildArgs),
    /// Run a function of a loaded module.
    Start(StartArgs),
    /// Stop a running module.
    Stop(StopArgs),
    /// Unload a module and free its slot.
    Unload(ModuleArg),
    /// Show the device's log lines (LOG, console output, RESULTs).
    Logs(LogsArgs),
    /// Measure latencies by repeating an operation.
    Bench(BenchArgs),
    /// Build (C source) if needed, deploy replacing the module of the same id, call a function
    /// and print the module's output as it runs; exits with the code of the function's result.
    Run(RunArgs),
    /// Run every exported `test_*` function of a module, each in a fresh instance, and print
    /// libtest-style results (`--junit FILE` for CI); exits 7 if any test failed.
    Test(TestArgs),
    /// Rebuild, redeploy and rerun one module slot every time its source is saved (other slots
    /// keep running); Ctrl-C ends it.
    Watch(WatchArgs),
    /// List the serial ports of this machine (USB ids, serial numbers, known debug probes) and
    /// the gateway endpoint of each; needs no gateway.
    Ports,
    /// Module-signing keys: make one, show its public key, sign a module; a bare-metal board's
    /// identity record (`keys provision`). Needs no gateway.
    Keys(KeysArgs),
    /// With --fleet: create or update an application from a file (docs/FLEET.md).
    Apply(crate::commands::apps::ApplyArgs),
    /// With --fleet: list applications, devices or gateways.
    Get(crate::commands::apps::GetArgs),
    /// With --fleet: an application's spec and its state on every device.
    Describe(crate::commands::apps::NamedApp),
    /// With --fleet: delete an application (its devices stop and unload it).
    Delete(crate::commands::apps::NamedApp),
    /// With --fleet: wait for an application's rollout.
    Rollout(crate::commands::apps::RolloutArgs),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `keys` arguments.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: KeysCommand,
}

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new Ed25519 key; the file is written with mode 0600 and never overwritten.
    Generate {
        /// The private key file to create (the gateway's `[signing] key_file`).
        key_file: PathBuf,
    },
    /// Print a key file's public key (what devices trust) and key id.
    Show {
        /// The private key file.
        key_file: PathBuf,
    },
    /// Make a bare-metal board's identity: a new Ed25519 seed in an identity record to flash at
    /// the board's identity page; prints the fingerprint the board will announce (docs/SECURITY.md
    /// "Device identity").
    Provision {
        /// The record file to create (44 bytes, mode 0600, never overwritten). It holds the
        /// board's secret key: flash it, then delete it or keep it offline.
        output: PathBuf,
    },
    /// Sign a module for `deploy --signature` (e.g. with a release key in CI).
    Sign {
        /// The private key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The module id it will be deployed as (the signature names it).
        #[arg(long, value_name = "ID")]
        module_id: String,
        /// The version (devices refuse versions below their minimum for the module id).
        #[arg(long, value_name = "N", default_value_t = 0)]
        module_version: u32,
        /// For an .aot file: the target of the devices it is for, as their INFO says,
        /// ARCH/CPU/FEATURES/ABI/AOT_VERSION (e.g. thumbv7em/cortex-m4/none/eabihf/6).
        #[arg(long, value_name = "TARGET")]
        aot_target: Option<String>,
        /// Where to write the signature.
        #[arg(long, short, value_name = "FILE")]
        output: PathBuf,
        /// The .wasm or .aot file, exactly as it will be uploaded.
        file: PathBuf,
    },
}

/// `--module-id`.
#[derive(Debug, Args)]
pub struct ModuleArg {
    /// Module id on the device (≤31 characters, no spaces, quotes or '=').
    #[arg(long, value_name = "ID")]
    pub module_id: String,
}

/// Options shared by the two upload commands.
#[derive(Debug, Args, Clone, Default)]
pub struct ReplaceArgs {
    /// Replace a module with the same id even if it is running.
    #[arg(long)]
    pub replace: bool,
    /// When all slots are used, evict this module (implies --replace).
    #[arg(long, value_name = "ID")]
    pub replace_victim: Option<String>,
    /// Upload even if the device already holds an identical module.
    #[arg(long)]
    pub force: bool,
    /// Remove custom sections before upload.
    #[arg(long)]
    pub strip: bool,
    /// Version the gateway signs the module with, for devices that check signatures (they
    /// refuse a version below their minimum for the module id; default 0).
    #[arg(long, value_name = "N")]
    pub module_version: Option<u32>,
}

/// `deploy` arguments.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Module id on the device.
    #[arg(long, value_name = "ID")]
    pub module_id: String,
    /// The .wasm or .aot file.
    #[arg(long, alias = "wasm", value_name = "FILE")]
    pub file: PathBuf,
    /// A signature made elsewhere (`wasmbed-host keys sign`), uploaded as-is instead of the
    /// gateway's: the file holds `key=… ver=… sig=…` for exactly these bytes and module id.
    #[arg(long, value_name = "FILE")]
    pub signature: Option<PathBuf>,
    /// Replacement options.
    #[command(flatten)]
    pub replace: ReplaceArgs,
}

/// How `build-and-deploy` compiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Mode {
    /// C → wasm (interpreted on the device).
    #[default]
    Wasm,
    /// C → wasm → AOT for the device's architecture.
    Aot,
}

impl Mode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Wasm => "wasm",
            Mode::Aot => "aot",
        }
    }
}

/// `build-and-deploy` arguments.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Module id on the device.
    #[arg(long, value_name = "ID")]
    pub module_id: String,
    /// The C source file.
    #[arg(long, value_name = "FILE")]
    pub source: PathBuf,
    /// Compile to interpreted wasm or to AOT.
    #[arg(long, value_enum, default_value_t = Mode::Wasm)]
    pub mode: Mode,
    /// Replacement options.
    #[command(flatten)]
    pub replace: ReplaceArgs,
}

/// The function a `start` (or `bench start`) calls, and its arguments.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// Exported function to call (the firmware defaults to `app_main`).
    #[arg(long, alias = "func-name", value_name = "NAME")]
    pub func: Option<String>,
    /// Up to 4 i32 arguments: `a=1,b=2` or `1,2` (names are ignored).
    #[arg(
        long,
        alias = "func-args",
        value_name = "LIST",
        allow_hyphen_values = true
    )]
    pub args: Option<String>,
}

/// What `run`, `test` and `watch` deploy: a file and the slot it goes to.
#[derive(Debug, Args, Clone)]
pub struct ModuleFileArgs {
    /// A C source (`.c`, built on the gateway) or a `.wasm` / `.aot` module.
    #[arg(value_name = "SOURCE|MODULE")]
    pub file: PathBuf,
    /// Module id on the device [default: the file name without extension].
    #[arg(long, value_name = "ID")]
    pub module_id: Option<String>,
    /// How a C source is compiled.
    #[arg(long, value_enum, default_value_t = Mode::Wasm)]
    pub mode: Mode,
    /// When all slots are used, evict this module to make room.
    #[arg(long, value_name = "ID")]
    pub replace_victim: Option<String>,
}

/// `run` arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The module and its slot.
    #[command(flatten)]
    pub module: ModuleFileArgs,
    /// The function and its arguments.
    #[command(flatten)]
    pub call: CallArgs,
    /// Seconds the function may run before the wait for its result ends (exit 6; it keeps
    /// running: `wasmbed-host stop`).
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = parse_seconds)]
    pub result_timeout: f64,
}

/// `test` arguments.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The module and its slot.
    #[command(flatten)]
    pub module: ModuleFileArgs,
    /// Only the tests whose name contains this text.
    #[arg(value_name = "FILTER")]
    pub filter: Option<String>,
    /// Also write the results as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Seconds each test may run.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = parse_seconds)]
    pub result_timeout: f64,
}

/// `watch` arguments.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The module and its slot.
    #[command(flatten)]
    pub module: ModuleFileArgs,
    /// The function and its arguments.
    #[command(flatten)]
    pub call: CallArgs,
    /// Seconds each run may take before watch goes back to waiting for a save.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = parse_seconds)]
    pub result_timeout: f64,
}

/// `start` arguments.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Module id on the device.
    #[arg(long, value_name = "ID")]
    pub module_id: String,
    /// The function and its arguments.
    #[command(flatten)]
    pub call: CallArgs,
    /// Wait for the RESULT and fail (exit 7) if the module trapped or was stopped.
    #[arg(long)]
    pub wait_result: bool,
    /// Seconds the gateway waits for the RESULT.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    pub result_timeout: f64,
}

/// `stop` arguments.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Module id on the device.
    #[arg(long, value_name = "ID")]
    pub module_id: String,
    /// Return at the device's STOP_OK instead of waiting for the job's end (its RESULT).
    #[arg(long, conflicts_with = "wait")]
    pub no_wait: bool,
    /// Wait for the job's end (the default; kept for scripts that say it).
    #[arg(long, hide = true)]
    pub wait: bool,
    /// Seconds the gateway waits for the RESULT.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    pub result_timeout: f64,
}

/// `logs` arguments.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing new lines (until Ctrl-C, or until --timeout if given).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only lines with a sequence number greater than this.
    #[arg(long, value_name = "SEQ")]
    pub since: Option<u64>,
}

/// What `bench` repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchOp {
    /// `status` round trips.
    Status,
    /// `start --wait-result` of a loaded module.
    Start,
    /// `deploy` of a module of `--size` bytes (or `--file`).
    Deploy,
}

/// `bench` arguments.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The operation to repeat.
    #[arg(value_enum)]
    pub op: BenchOp,
    /// How many measured repetitions.
    #[arg(long, short = 'n', default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub count: u32,
    /// Unmeasured repetitions before measuring.
    #[arg(long, default_value_t = 1)]
    pub warmup: u32,
    /// Module id (start: the loaded module; deploy: the id to upload as).
    #[arg(long, value_name = "ID", default_value = "bench")]
    pub module_id: String,
    /// start: the function and its arguments.
    #[command(flatten)]
    pub call: CallArgs,
    /// deploy: size in bytes of the generated module (a valid wasm padded by a custom section).
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    pub size: usize,
    /// deploy: upload this file instead of a generated module.
    #[arg(long, alias = "wasm", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// start: seconds the gateway waits for each RESULT.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    pub result_timeout: f64,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(v.is_finite() && v > 0.0 && v <= 86_400.0) {
        return Err(format!(
            "'{s}' must be more than 0 and at most 86400 seconds (e.g. 0.5 or 30)"
        ));
    }
    Ok(v)
}

/// Which devices a command addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// The listed devices, in order, without duplicates.
    Named(Vec<String>),
    /// Every device the gateway knows.
    All,
}

/// Settings that apply to every command, resolved from the global options.
#[derive(Debug, Clone)]
pub struct Globals {
    /// Gateway address `host:port`.
    pub gateway: String,
    /// Target devices.
    pub targets: Targets,
    /// JSON output.
    pub json: bool,
    /// Verbosity: negative is quieter.
    pub verbosity: i8,
    /// Per-request deadline override.
    pub timeout: Option<Duration>,
    /// Added to each command's default deadline (not to `--timeout`): with `--fleet`, the
    /// fleet's acceptance window, so a command sent while a claim changes hands waits for the
    /// new owner.
    pub default_slack: Duration,
    /// Access token.
    pub token: Option<String>,
    /// TLS settings for a `tls://` gateway (from --ca, --cert, --key).
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Cli {
    /// Resolves and validates the global options. `env_gateway` is `WASMBED_GATEWAY`.
    pub fn globals(&self, env_gateway: Option<String>) -> Result<Globals, HostError> {
        let gateway = match (&self.gateway, &self.gw_host, self.gw_port) {
            (Some(g), _, _) => g.clone(),
            (None, None, None) => env_gateway
                .filter(|g| !g.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_GATEWAY.into()),
            (None, host, port) => format!(
                "{}:{}",
                host.as_deref().unwrap_or("localhost"),
                port.unwrap_or(DEFAULT_PORT)
            ),
        };
        let targets = if self.all {
            Targets::All
        } else {
            let mut names: Vec<String> = Vec::new();
            for d in self
                .device
                .iter()
                .map(|d| d.trim())
                .filter(|d| !d.is_empty())
            {
                validate::device(d)?;
                if !names.iter().any(|n| n == d) {
                    names.push(d.to_string());
                }
            }
            Targets::Named(names)
        };
        let token = match &self.token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|source| HostError::ReadFile {
                        path: path.display().to_string(),
                        source,
                    })?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        let tls = match (crate::tls::split_scheme(&gateway).0, &self.ca) {
            (true, Some(ca)) => Some(crate::tls::client_config(
                ca,
                self.cert.as_deref().zip(self.key.as_deref()),
            )?),
            (true, None) => {
                return Err(HostError::Usage(format!(
                    "{gateway} is a TLS gateway: pass --ca FILE (or WASMBED_CA), the CA that \
                     signed its certificate"
                )))
            }
            (false, _) if self.ca.is_some() || self.cert.is_some() => {
                return Err(HostError::Usage(format!(
                    "--ca / --cert are for TLS gateways: write the address as \
                     tls://{gateway}"
                )))
            }
            (false, _) => None,
        };
        Ok(Globals {
            tls,
            gateway,
            targets,
            json: self.json,
            verbosity: (self.verbose.min(10) as i8) - (self.quiet.min(10) as i8),
            timeout: self.timeout.map(Duration::from_secs_f64),
            default_slack: Duration::ZERO,
            token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("wasmbed-host").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    fn globals(args: &[&str]) -> Globals {
        parse(args).globals(None).unwrap()
    }

    #[test]
    fn legacy_start_spelling() {
        let cli = parse(&[
            "--gw-host",
            "gw.local",
            "--gw-port",
            "9100",
            "--device",
            "nucleo",
            "start",
            "--module-id",
            "math_ops",
            "--func-name",
            "add",
            "--func-args",
            "a=200,b=26",
            "--wait-result",
            "--result-timeout",
            "2.5",
        ]);
        let g = cli.globals(Some("ignored:1".into())).unwrap();
        assert_eq!(g.gateway, "gw.local:9100");
        assert_eq!(g.targets, Targets::Named(vec!["nucleo".into()]));
        let Command::Start(s) = cli.command else {
            panic!("not start")
        };
        assert_eq!(s.call.func.as_deref(), Some("add"));
        assert_eq!(s.call.args.as_deref(), Some("a=200,b=26"));
        assert!(s.wait_result);
        assert_eq!(s.result_timeout, 2.5);
    }

    #[test]
    fn legacy_upload_spellings() {
        let cli = parse(&[
            "--device",
            "renode",
            "load",
            "--module-id",
            "m",
            "--wasm",
            "x.aot",
            "--replace-victim",
            "v",
        ]);
        let Command::Deploy(d) = cli.command else {
            panic!("not deploy")
        };
        assert_eq!(d.file, PathBuf::from("x.aot"));
        assert_eq!(d.replace.replace_victim.as_deref(), Some("v"));
        for name in ["build_and_load", "build_and_deploy", "build-and-deploy"] {
            let cli = parse(&[name, "--module-id", "m", "--source", "m.c", "--mode", "aot"]);
            let Command::BuildAndDeploy(b) = cli.command else {
                panic!("{name}")
            };
            assert_eq!(b.mode, Mode::Aot);
        }
    }

    #[test]
    fn gateway_precedence() {
        assert_eq!(globals(&["status"]).gateway, DEFAULT_GATEWAY);
        assert_eq!(
            parse(&["status"])
                .globals(Some("env:1".into()))
                .unwrap()
                .gateway,
            "env:1"
        );
        assert_eq!(
            parse(&["--gateway", "a:2", "status"])
                .globals(Some("env:1".into()))
                .unwrap()
                .gateway,
            "a:2"
        );
        assert_eq!(
            globals(&["status", "--gw-port", "9001"]).gateway,
            "localhost:9001"
        );
        assert_eq!(globals(&["--gw-host", "h", "status"]).gateway, "h:9000");
        let err = Cli::try_parse_from([
            "wasmbed-host",
            "--gateway",
            "a:1",
            "--gw-port",
            "2",
            "status",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn device_lists_and_all() {
        let g = globals(&[
            "deploy",
            "--module-id",
            "m",
            "--file",
            "f",
            "--device",
            "a,b",
            "-d",
            "a,c",
        ]);
        assert_eq!(
            g.targets,
            Targets::Named(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(globals(&["--all", "status"]).targets, Targets::All);
        let err = parse(&["--device", "bad name", "status"])
            .globals(None)
            .unwrap_err();
        assert!(matches!(err, HostError::Usage(_)));
    }

    #[test]
    fn seconds_out_of_range_say_which_range() {
        assert_eq!(parse_seconds("0.5"), Ok(0.5));
        for bad in ["0", "nan", "inf", "86401"] {
            let e = parse_seconds(bad).unwrap_err();
            assert!(e.contains("more than 0 and at most 86400"), "{bad}: {e}");
        }
        assert!(parse_seconds("soon").unwrap_err().contains("not a number"));
    }

    #[test]
    fn global_flags_anywhere_and_verbosity() {
        let g = globals(&["status", "--json", "-vv", "--timeout", "1.5"]);
        assert!(g.json);
        assert_eq!(g.verbosity, 2);
        assert_eq!(g.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(globals(&["-q", "devices"]).verbosity, -1);
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            &["--timeout", "0", "status"][..],
            &["--timeout", "soon", "status"],
            &["start"],
            &["deploy", "--module-id", "m"],
            &[
                "build-and-deploy",
                "--module-id",
                "m",
                "--source",
                "a.c",
                "--mode",
                "elf",
            ],
            &["bench", "status", "--count", "0"],
            &["frobnicate"],
        ] {
            let err =
                Cli::try_parse_from(std::iter::once("wasmbed-host").chain(args.iter().copied()))
                    .unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn negative_args_are_values_not_flags() {
        let cli = parse(&["start", "--module-id", "m", "--args", "-1,-2"]);
        let Command::Start(s) = cli.command else {
            panic!()
        };
        assert_eq!(s.call.args.as_deref(), Some("-1,-2"));
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
